"""
The client: the six Segment calls, configuration, and the wiring of one pipeline.

A call builds and validates a message (:mod:`.messages`), encodes it once
(:mod:`.encoding`) and queues the bytes (:mod:`.batching`); the
caller's thread never touches the network unless ``sync_mode`` asks for it (OAuth tokens,
:mod:`.oauth`, are fetched by the worker too). The constructor takes segment-analytics-python
2.4's arguments in its positional order; :mod:`.config` resolves them into one value.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Self

from opentelemetry import trace as otel_trace

from otel_segment.errors import ClientClosedError, MessageTooLargeError
from otel_segment.pipeline import capture as _capture
from otel_segment.pipeline import identify, messages, tracking
from otel_segment.pipeline import options as _options
from otel_segment.pipeline.assembly import build_processor
from otel_segment.pipeline.awaiting import Awaiting
from otel_segment.pipeline.batching import ErrorCallback, in_pipeline
from otel_segment.pipeline.calls import Id, JSONMapping, Result, SegmentCalls
from otel_segment.pipeline.config import MAX_SEGMENT_BATCH_BYTES, ClientConfig
from otel_segment.pipeline.encoding import dumps
from otel_segment.pipeline.hooks import message_hooks
from otel_segment.pipeline.intake import RequestIntake
from otel_segment.pipeline.lifecycle import (
    deadline_after,
    drain_at_exit,
    forget_at_exit,
    remaining,
)
from otel_segment.pipeline.oauth import DEFAULT_AUTH_SERVER, DEFAULT_SCOPE
from otel_segment.pipeline.options import DEFAULT_HOST, ENV_HOST, ENV_WRITE_KEY
from otel_segment.pipeline.periodic import Periodic
from otel_segment.pipeline.spool import DEFAULT_SPOOL_MAX_BYTES

if TYPE_CHECKING:
    import os
    from collections.abc import Callable, Mapping, Sequence
    from types import TracebackType

    from otel_segment.pipeline.config import OnViolation
    from otel_segment.pipeline.retry import RetryPolicy
    from otel_segment.plans import TrackingPlan

__all__ = [
    "DEFAULT_HOST",
    "ENV_HOST",
    "ENV_WRITE_KEY",
    "Client",
    "Id",
    "JSONMapping",
    "Result",
    "in_pipeline",
]

_logger = logging.getLogger("otel_segment")


class Client(SegmentCalls, RequestIntake, Awaiting):
    """
    Sends Segment Spec messages through one batching pipeline.

    The first 22 arguments are segment-analytics-python 2.4's, in its positional order;
    the others are keyword-only.

    Args:
        write_key: Segment source write key; default ``$SEGMENT_WRITE_KEY``.
        host: API base URL; default ``$SEGMENT_HOST``, else ``https://api.segment.io``.
        debug: Log the pipeline's work at DEBUG (to stderr unless a handler is set).
        max_queue_size: Messages held at most; beyond, calls return ``(False, msg)``.
        send: ``False`` builds and returns messages but sends nothing.
        on_error: ``callable(exception, messages)`` for messages that will not arrive.
        gzip: Compress request bodies.
        max_retries: Retries after the first attempt (sets ``retry.max_attempts``).
        sync_mode: Send each message on the calling thread, with retries (serverless).
        timeout: Seconds for connecting and for each read of one request.
        proxies: As for ``requests``.
        thread: segment-analytics-python's consumer threads: here the requests under
            way at once (= *max_in_flight*).
        upload_size: = *flush_at*.
        upload_interval: = *flush_interval*.
        log_handler: A ``logging.Handler`` added to the ``otel_segment`` logger.
        oauth_client_id: OAuth app id; with *oauth_client_key* and *oauth_key_id*,
            requests carry a bearer token instead of the write key (the ``oauth`` extra).
        oauth_client_key: The app's RSA private key (PEM); never logged or shown.
        oauth_key_id: The id of the app's public key (the JWT's ``kid``).
        oauth_auth_server: The token server (``{server}/token``).
        oauth_scope: The scope asked for.
        max_total_backoff_duration: Seconds a batch may be retried in all
            (sets ``retry.max_elapsed``).
        max_rate_limit_duration: The longest ``Retry-After`` honoured, in seconds
            (sets ``retry.max_retry_after``).
        flush_at: Send once this many messages wait (a backlog is sent in larger
            batches, up to *max_batch_bytes*).
        flush_interval: A queued message waits at most this many seconds before its
            batch is sent.
        max_batch_bytes: No request body is larger (Segment's limit is 500 KiB).
        max_message_bytes: A larger message is rejected; default Segment's 32 KiB, or
            what *max_batch_bytes* leaves room for when that is less.
        retry: The :class:`~otel_segment.RetryPolicy` (not with *max_retries* or the
            two durations).
        default_context: Merged under every message's own context.
        verify: TLS verification: ``True``, ``False`` or a CA bundle path.
        cert: Client certificate path or ``(cert, key)`` pair for mutual TLS.
        spool: Path of an SQLite spool file (durable delivery): messages are kept there
            until the server accepted them, and a later client with the same spool
            delivers what is left. One process per file. ``None``: in memory only.
        spool_max_bytes: Message bytes the spool holds at most (default 64 MiB); beyond,
            the oldest spooled messages are dropped, counted and reported.
        max_in_flight: Requests under way at once.
        exit_timeout: Seconds the queue may take to drain at interpreter exit.
        before_send: ``callable(message) -> message | None``, called on the caller's
            thread with each complete message before the plan check and encoding;
            ``None`` drops it (``stats()["filtered"]``); an exception rejects it.
        super_properties: Merged under every track's, page's and screen's properties.
        plan: A :class:`~otel_segment.TrackingPlan` every message is checked against.
        on_violation: What a violation does: ``"report"`` (count, ``on_error``, send),
            ``"drop"`` (also do not send) or ``"raise"`` (also raise
            :class:`~otel_segment.PlanViolation` from direct calls; sources drop).
        identity_from_baggage: When nothing else gives a message ids, take them from
            OpenTelemetry Baggage (``enduser.id``, ``enduser.pseudo.id``), as an upstream
            service's ``identity(..., baggage=True)`` put them. Off by default: Baggage
            comes from the caller, so trust it only inside your own services.

    Raises:
        TypeError: An option has the wrong type.
        ValueError: An option is out of range, or no write key is given or set.
        ImportError: OAuth options are given but the ``oauth`` extra is not installed.

    .. versionadded:: 0.1.0
    .. versionchanged:: 0.2.0 segment-analytics-python 2.4's positional order and options.
    """

    def __init__(
        self,
        write_key: str | None = None,
        host: str | None = None,
        debug: bool = False,
        max_queue_size: int = 10_000,
        send: bool = True,
        on_error: ErrorCallback | None = None,
        gzip: bool = False,
        max_retries: int | None = None,
        sync_mode: bool = False,
        timeout: float = 15.0,
        proxies: dict[str, str] | None = None,
        thread: int | None = None,
        upload_size: int | None = None,
        upload_interval: float | None = None,
        log_handler: logging.Handler | None = None,
        oauth_client_id: str | None = None,
        oauth_client_key: str | None = None,
        oauth_key_id: str | None = None,
        oauth_auth_server: str = DEFAULT_AUTH_SERVER,
        oauth_scope: str = DEFAULT_SCOPE,
        max_total_backoff_duration: float | None = None,
        max_rate_limit_duration: float | None = None,
        *,
        flush_at: int = 100,
        flush_interval: float = 0.5,
        max_batch_bytes: int = MAX_SEGMENT_BATCH_BYTES,
        max_message_bytes: int | None = None,
        retry: RetryPolicy | None = None,
        default_context: Mapping[str, Any] | None = None,
        verify: bool | str = True,
        cert: str | tuple[str, str] | None = None,
        spool: str | os.PathLike[str] | None = None,
        spool_max_bytes: int = DEFAULT_SPOOL_MAX_BYTES,
        max_in_flight: int = 2,
        exit_timeout: float = 5.0,
        before_send: Callable[[dict[str, Any]], dict[str, Any] | None] | None = None,
        super_properties: Mapping[str, Any] | None = None,
        plan: TrackingPlan | None = None,
        on_violation: OnViolation = "report",
        identity_from_baggage: bool = False,
    ) -> None:
        # segment-analytics-python 2.4's arguments come first, in its positional order
        # (README, "Migrating"); the resolution of every option lives in ClientConfig.
        config = ClientConfig.resolve(**{k: v for k, v in locals().items() if k != "self"})
        self.config = config
        # segment-analytics-python's client attributes, echoing what was passed.
        self.write_key = config.write_key
        self.host = config.host
        self.gzip = config.gzip
        self.sync_mode = config.sync_mode
        self.timeout = config.timeout
        self.send = config.send
        self.debug = config.debug
        self.on_error = config.on_error
        self._base_context = messages.merge_context(
            dict(config.default_context), {"library": messages.LIBRARY}
        )
        self._processor = build_processor(config)
        self._hooks = message_hooks(config, self._processor)  # None: no hooks configured
        self._periodic = Periodic()
        self._closed = False
        drain_at_exit(self, config.exit_timeout)

    def __repr__(self) -> str:
        """Show the endpoint and batching settings, never the write key."""
        return (
            f"Client(host={self.host!r}, flush_at={self.config.flush_at}, "
            f"flush_interval={self.config.flush_interval}, sync_mode={self.sync_mode}, "
            f"send={self.send}, closed={self._closed})"
        )

    # -- the pipeline ----------------------------------------------------------------

    def _send(  # noqa: C901, PLR0912 - the hot path, kept in one frame
        self,
        builder: Callable[..., messages.Message],
        fields: tuple[Any, ...],
        *,
        raising: bool = True,
    ) -> Result:
        """Build a message from the call's *fields* (positional), encode it and queue it."""
        if self._closed:
            raise ClientClosedError("this client was shut down; create a new one")
        hooks = self._hooks
        try:
            # Identity (scope, span, Baggage) before the builder validates the ids. A call
            # that gives its user outside every scope pays one ContextVar.get() for it.
            base: Mapping[str, Any] = self._base_context
            scope = identify.SCOPE.get()
            if (  # the common case, inlined: the scope's user for a call with no ids
                scope is not None
                and (found := scope.merged) is not None
                and (fill := identify.FILLERS.get(builder)) is not None
                and found.user_id is not None
                and not found.context
                and fields[fill[0]] is None
                and (fill[1] is None or fields[fill[1]] is None)
            ):
                fields = fill[2](fields, found.user_id, found.anonymous_id)
            elif scope is not None or not fields or not fields[0] or builder is messages.alias:
                builder, fields, base = identify.complete(
                    builder, fields, base, self.config.identity_from_baggage, scope
                )
            msg = builder(base, *fields)
            span = otel_trace.get_current_span().get_span_context()
            if span.is_valid and "trace" not in msg["context"]:
                msg["context"]["trace"] = {
                    "trace_id": format(span.trace_id, "032x"),
                    "span_id": format(span.span_id, "016x"),
                }
            if hooks is None:
                data = dumps(msg)
        except (TypeError, ValueError):
            self._processor.reporter.count("rejected")  # the caller is told: it raises
            raise
        except Exception as exc:  # a caller's object raised where no field check caught it
            self._processor.reporter.count("rejected")
            raise messages.unreadable(exc) from exc
        if hooks is not None:  # super_properties, before_send, the plan: pipeline/hooks.py
            msg, encoded = hooks(msg, raising)
            if encoded is None:
                return False, msg
            data = encoded
        if len(data) > self.config.max_message_bytes:
            error = MessageTooLargeError(
                f"{msg['type']} message is {len(data)} bytes encoded; "
                f"max_message_bytes is {self.config.max_message_bytes}"
            )
            self._processor.reporter.rejected(error, msg)
            return False, msg
        if _capture.active and not _capture.record(data):  # testing.capture(): not sent
            return True, msg
        if not self.send:
            return True, msg
        if self.sync_mode:
            return self._processor.send_now(data), msg
        return self._processor.enqueue(data), msg

    def reject(self, error: Exception) -> None:
        """
        Count a message a source could not build (shows in ``stats()["rejected"]``).

        Logged like every loss: one line per 10 s at most, with the number held back.
        """
        self._processor.reporter.rejected(error)

    def flush(self, timeout: float | None = None) -> bool:
        """
        Block until every message queued so far is delivered or failed.

        With a spool, everything queued is committed to it first, and a batch whose
        retries ran out stays there for a later retry instead of failing.

        Returns:
            Whether that happened within *timeout* seconds (``None``: no limit).
        """
        return self._processor.flush(timeout)

    def shutdown(self, timeout: float | None = None) -> bool:
        """
        Deliver what is queued (within *timeout*), then stop; later calls are refused.

        Returns:
            Whether everything queued was delivered or failed before the deadline.
        """
        if self._closed:
            return self._processor.shutdown(timeout)
        deadline = deadline_after(timeout)
        self._periodic.stop(timeout)
        self._closed = True
        forget_at_exit(self)
        return self._processor.shutdown(remaining(deadline))

    def every(self, seconds: float, callback: Callable[[], object]) -> Callable[[], None]:
        """
        Call *callback* every *seconds* on the client's timer thread, and once at shutdown.

        Exceptions from *callback* are logged under ``otel_segment`` and the schedule
        goes on. Returns a function that cancels it.

        Raises:
            ClientClosedError: The client was shut down.
        """
        seconds = _options.seconds("seconds", seconds)
        if self._closed:
            raise ClientClosedError("this client was shut down; create a new one")
        return self._periodic.add(seconds, callback)

    def tracked(
        self,
        event: str,
        *,
        user_id: str | Callable[[dict[str, Any]], object] | None = None,
        anonymous_id: str | Callable[[dict[str, Any]], object] | None = None,
        properties: Sequence[str]
        | Mapping[str, str]
        | Callable[[dict[str, Any], Any], Mapping[str, object]]
        | None = None,
        track_errors: bool = True,
    ) -> Callable[[tracking.Decoratable], tracking.Decoratable]:
        """:func:`otel_segment.tracked` sending through this client."""
        return tracking.decorator(
            event,
            user_id=user_id,
            anonymous_id=anonymous_id,
            properties=properties,
            client=lambda: self,
            track_errors=track_errors,
        )

    def join(self, timeout: float | None = None) -> bool:
        """segment-analytics-python's name for :meth:`shutdown`."""
        return self.shutdown(timeout)

    @property
    def closed(self) -> bool:
        """Whether :meth:`shutdown` was called."""
        return self._closed

    def stats(self) -> dict[str, int]:
        """
        Counters of the pipeline.

        Keys: ``enqueued``, ``delivered``, ``dropped`` (queue full or closed),
        ``rejected`` (invalid or oversize), ``failed`` (given up), ``retried``
        (requests sent again), ``batches`` and ``bytes`` (delivered), ``filtered``
        (dropped by ``before_send``), ``violations`` (broke the tracking plan), and
        ``queued`` (waiting now); with a spool also ``spooled`` (messages in the spool file).
        """
        return self._processor.stats()

    def __enter__(self) -> Self:
        """Use the client in a ``with`` block; it shuts down on exit."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Shut down, delivering what is queued."""
        self.shutdown()
