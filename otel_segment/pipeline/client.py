"""
The client: the six Segment calls, configuration, and the wiring of one pipeline.

A call builds and validates a message (:mod:`.messages`), encodes it once
(:mod:`.encoding`) and queues the bytes (:mod:`.batching`); the
caller's thread never touches the network unless ``sync_mode`` asks for it.
"""

from __future__ import annotations

import asyncio
import atexit
import functools
import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final, Self

from opentelemetry import trace as otel_trace

from otel_segment.errors import ClientClosedError, MessageTooLargeError
from otel_segment.pipeline import identify, messages, tracking
from otel_segment.pipeline import options as _options
from otel_segment.pipeline.assembly import build_processor
from otel_segment.pipeline.batching import ErrorCallback, in_pipeline
from otel_segment.pipeline.config import (
    MAX_SEGMENT_BATCH_BYTES,
    MAX_SEGMENT_MESSAGE_BYTES,
    ClientConfig,
)
from otel_segment.pipeline.encoding import dumps
from otel_segment.pipeline.lifecycle import deadline_after, remaining
from otel_segment.pipeline.options import DEFAULT_HOST, ENV_HOST, ENV_WRITE_KEY
from otel_segment.pipeline.periodic import Periodic
from otel_segment.pipeline.spool import DEFAULT_SPOOL_MAX_BYTES

if TYPE_CHECKING:
    import datetime as dt
    import os
    from collections.abc import Sequence
    from types import TracebackType

    from otel_segment.pipeline.retry import RetryPolicy

__all__ = [
    "DEFAULT_HOST",
    "ENV_HOST",
    "ENV_WRITE_KEY",
    "Client",
    "in_pipeline",
]

_logger = logging.getLogger("otel_segment")


Id = str | int | float | None
JSONMapping = Mapping[str, Any] | None
Result = tuple[bool, messages.Message]


class Client:
    """
    Sends Segment Spec messages through one batching pipeline.

    Args:
        write_key: Segment source write key; default ``$SEGMENT_WRITE_KEY``.
        host: API base URL; default ``$SEGMENT_HOST``, else ``https://api.segment.io``.
        flush_at: Send once this many messages wait (a backlog is sent in larger
            batches, up to *max_batch_bytes*). Alias: ``upload_size``.
        flush_interval: A queued message waits at most this many seconds before its
            batch is sent. Alias: ``upload_interval``.
        max_queue_size: Messages held at most; beyond, calls return ``(False, msg)``.
        max_batch_bytes: No request body is larger (Segment's limit is 500 KiB).
        max_message_bytes: A larger message is rejected (Segment's limit is 32 KiB).
        retry: The :class:`~otel_segment.RetryPolicy`.
        max_retries: segment-analytics-python's name: retries after the first attempt.
        default_context: Merged under every message's own context.
        gzip: Compress request bodies.
        timeout: Seconds for connecting and for each read of one request.
        send: ``False`` builds and returns messages but sends nothing.
        sync_mode: Send each message on the calling thread, with retries (serverless).
        on_error: ``callable(exception, messages)`` for messages that will not arrive.
        debug: Log the pipeline's work at DEBUG to stderr.
        proxies: As for ``requests``.
        verify: TLS verification: ``True``, ``False`` or a CA bundle path.
        cert: Client certificate path or ``(cert, key)`` pair for mutual TLS.
        spool: Path of an SQLite spool file (durable delivery): messages are kept there
            until the server accepted them, and a later client with the same spool
            delivers what is left. One process per file. ``None``: in memory only.
        spool_max_bytes: Message bytes the spool holds at most (default 64 MiB); beyond,
            the oldest spooled messages are dropped, counted and reported.
        max_in_flight: Requests under way at once.
        exit_timeout: Seconds the queue may take to drain at interpreter exit.
        identity_from_baggage: When nothing else gives a message ids, take them from
            OpenTelemetry Baggage (``enduser.id``, ``enduser.pseudo.id``), as an upstream
            service's ``identity(..., baggage=True)`` put them. Off by default: Baggage
            comes from the caller, so trust it only inside your own services.

    Raises:
        TypeError: An option has the wrong type.
        ValueError: An option is out of range, or no write key is given or set.

    .. versionadded:: 0.1.0
    """

    def __init__(
        self,
        write_key: str | None = None,
        host: str | None = None,
        *,
        flush_at: int = 100,
        flush_interval: float = 0.5,
        max_queue_size: int = 10_000,
        max_batch_bytes: int = MAX_SEGMENT_BATCH_BYTES,
        max_message_bytes: int = MAX_SEGMENT_MESSAGE_BYTES,
        retry: RetryPolicy | None = None,
        default_context: Mapping[str, Any] | None = None,
        gzip: bool = False,
        timeout: float = 15.0,
        send: bool = True,
        sync_mode: bool = False,
        on_error: ErrorCallback | None = None,
        debug: bool = False,
        proxies: dict[str, str] | None = None,
        verify: bool | str = True,
        cert: str | tuple[str, str] | None = None,
        spool: str | os.PathLike[str] | None = None,
        spool_max_bytes: int = DEFAULT_SPOOL_MAX_BYTES,
        max_in_flight: int = 2,
        exit_timeout: float = 5.0,
        identity_from_baggage: bool = False,
        upload_size: int | None = None,
        upload_interval: float | None = None,
        max_retries: int | None = None,
    ) -> None:
        config = ClientConfig.resolve(
            write_key=write_key,
            host=host,
            flush_at=flush_at,
            flush_interval=flush_interval,
            max_queue_size=max_queue_size,
            max_batch_bytes=max_batch_bytes,
            max_message_bytes=max_message_bytes,
            retry=retry,
            default_context=default_context,
            gzip=gzip,
            timeout=timeout,
            send=send,
            sync_mode=sync_mode,
            on_error=on_error,
            debug=debug,
            proxies=proxies,
            verify=verify,
            cert=cert,
            spool=spool,
            spool_max_bytes=spool_max_bytes,
            max_in_flight=max_in_flight,
            exit_timeout=exit_timeout,
            identity_from_baggage=identity_from_baggage,
            upload_size=upload_size,
            upload_interval=upload_interval,
            max_retries=max_retries,
        )
        self.config: Final = config
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
        self._periodic = Periodic()
        self._closed = False
        _LIVE.add(self)

    def __repr__(self) -> str:
        """Show the endpoint and batching settings, never the write key."""
        return (
            f"Client(host={self.host!r}, flush_at={self.config.flush_at}, "
            f"flush_interval={self.config.flush_interval}, sync_mode={self.sync_mode}, "
            f"send={self.send}, closed={self._closed})"
        )

    # -- the six calls ---------------------------------------------------------------

    def track(
        self,
        user_id: Id = None,
        event: str | None = None,
        properties: JSONMapping = None,
        context: JSONMapping = None,
        timestamp: dt.datetime | float | None = None,
        anonymous_id: Id = None,
        integrations: JSONMapping = None,
        message_id: str | None = None,
    ) -> Result:
        """
        Record that a user did *event*.

        Returns:
            ``(accepted, message)``: whether the message was queued (or, in
            ``sync_mode``, delivered), and the message as it goes on the wire
            (values JSON cannot hold appear as given; the wire has them converted).

        Raises:
            TypeError: A field has the wrong type.
            ValueError: *event* is empty, or neither *user_id* nor *anonymous_id* is given.
            ClientClosedError: The client was shut down.
        """
        return self._send(
            messages.track,
            (
                user_id,
                event,
                properties,
                context,
                timestamp,
                anonymous_id,
                integrations,
                message_id,
            ),
        )

    def identify(
        self,
        user_id: Id = None,
        traits: JSONMapping = None,
        context: JSONMapping = None,
        timestamp: dt.datetime | float | None = None,
        anonymous_id: Id = None,
        integrations: JSONMapping = None,
        message_id: str | None = None,
    ) -> Result:
        """Tie a user to their *traits*; returns ``(accepted, message)`` like :meth:`track`."""
        return self._send(
            messages.identify,
            (user_id, traits, context, timestamp, anonymous_id, integrations, message_id),
        )

    def page(
        self,
        user_id: Id = None,
        category: str | None = None,
        name: str | None = None,
        properties: JSONMapping = None,
        context: JSONMapping = None,
        timestamp: dt.datetime | float | None = None,
        anonymous_id: Id = None,
        integrations: JSONMapping = None,
        message_id: str | None = None,
    ) -> Result:
        """Record a web page view; returns ``(accepted, message)`` like :meth:`track`."""
        return self._send(
            messages.page,
            (
                user_id,
                category,
                name,
                properties,
                context,
                timestamp,
                anonymous_id,
                integrations,
                message_id,
            ),
        )

    def screen(
        self,
        user_id: Id = None,
        category: str | None = None,
        name: str | None = None,
        properties: JSONMapping = None,
        context: JSONMapping = None,
        timestamp: dt.datetime | float | None = None,
        anonymous_id: Id = None,
        integrations: JSONMapping = None,
        message_id: str | None = None,
    ) -> Result:
        """Record an app screen view; returns ``(accepted, message)`` like :meth:`track`."""
        return self._send(
            messages.screen,
            (
                user_id,
                category,
                name,
                properties,
                context,
                timestamp,
                anonymous_id,
                integrations,
                message_id,
            ),
        )

    def group(
        self,
        user_id: Id = None,
        group_id: Id = None,
        traits: JSONMapping = None,
        context: JSONMapping = None,
        timestamp: dt.datetime | float | None = None,
        anonymous_id: Id = None,
        integrations: JSONMapping = None,
        message_id: str | None = None,
    ) -> Result:
        """Put a user in *group_id*; returns ``(accepted, message)`` like :meth:`track`."""
        return self._send(
            messages.group,
            (user_id, group_id, traits, context, timestamp, anonymous_id, integrations, message_id),
        )

    def alias(
        self,
        previous_id: Id = None,
        user_id: Id = None,
        context: JSONMapping = None,
        timestamp: dt.datetime | float | None = None,
        integrations: JSONMapping = None,
        message_id: str | None = None,
    ) -> Result:
        """Merge *previous_id* into *user_id*; returns ``(accepted, message)``."""
        return self._send(
            messages.alias,
            (previous_id, user_id, context, timestamp, integrations, message_id),
        )

    def message(self, type: str, **fields: Any) -> Result:
        """
        Send a message of *type* (``"track"``, ``"identify"`` ...) from keyword *fields*.

        The entry point for sources that decide the type at run time (log records,
        spans); the fields are those of the matching call.

        Raises:
            ValueError: *type* is not one of the six Segment calls.
        """
        builder = _BUILDERS.get(type)
        if builder is None:
            raise ValueError(
                f"type must be one of {', '.join(messages.MESSAGE_TYPES)}, got {type!r}"
            )
        return self._send(functools.partial(builder, **fields), ())

    # -- the pipeline ----------------------------------------------------------------

    def _send(self, builder: Callable[..., messages.Message], fields: tuple[Any, ...]) -> Result:
        """Build a message from the call's *fields* (positional), encode it and queue it."""
        if self._closed:
            raise ClientClosedError("this client was shut down; create a new one")
        try:
            # Identity (scope, span, Baggage) before the builder validates the ids. A call
            # that gives its user outside every scope pays one ContextVar.get() for it.
            base: Mapping[str, Any] = self._base_context
            if not fields or not fields[0] or builder is messages.alias or identify.SCOPE.get():
                builder, fields, base = identify.complete(
                    builder, fields, base, self.config.identity_from_baggage
                )
            msg = builder(base, *fields)
            span = otel_trace.get_current_span().get_span_context()
            if span.is_valid and "trace" not in msg["context"]:
                msg["context"]["trace"] = {
                    "trace_id": format(span.trace_id, "032x"),
                    "span_id": format(span.span_id, "016x"),
                }
            data = dumps(msg)
        except (TypeError, ValueError):
            self._processor.count_rejected()
            raise
        if len(data) > self.config.max_message_bytes:
            error = MessageTooLargeError(
                f"{msg['type']} message is {len(data)} bytes encoded; "
                f"max_message_bytes is {self.config.max_message_bytes}"
            )
            self._processor.reject(msg, error)
            return False, msg
        if not self.send:
            return True, msg
        if self.sync_mode:
            return self._processor.send_now(data), msg
        return self._processor.enqueue(data), msg

    def reject(self, error: Exception) -> None:
        """Count a message a source could not build (shows in ``stats()["rejected"]``)."""
        self._processor.count_rejected()
        _logger.warning("message rejected: %s", error)

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
        _LIVE.discard(self)
        return self._processor.shutdown(remaining(deadline))

    # -- asyncio: the same, awaited without blocking the event loop --------------------

    async def aflush(self, timeout: float | None = None) -> bool:  # noqa: ASYNC109 - the promised name
        """
        :meth:`flush`, awaited: the event loop runs on while the queue drains.

        The wait happens on a thread of the loop's default executor; cancelling the
        awaiting task stops the wait, not the delivery.

        .. versionadded:: 0.2.0
        """
        return await asyncio.get_running_loop().run_in_executor(None, self.flush, timeout)

    async def ashutdown(self, timeout: float | None = None) -> bool:  # noqa: ASYNC109 - as aflush
        """
        :meth:`shutdown`, awaited without blocking the event loop (as :meth:`aflush`).

        .. versionadded:: 0.2.0
        """
        return await asyncio.get_running_loop().run_in_executor(None, self.shutdown, timeout)

    async def __aenter__(self) -> Self:
        """Use the client in an ``async with`` block; it shuts down on exit."""
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Shut down (as :meth:`ashutdown`), delivering what is queued."""
        await self.ashutdown()

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
        (requests sent again), ``batches`` and ``bytes`` (delivered), and ``queued``
        (waiting now); with a spool also ``spooled`` (messages in the spool file).
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


_BUILDERS: Final[dict[str, Callable[..., messages.Message]]] = {
    "track": messages.track,
    "identify": messages.identify,
    "page": messages.page,
    "screen": messages.screen,
    "group": messages.group,
    "alias": messages.alias,
}


# Every client not yet shut down, so that one exit hook drains them all. Held strongly:
# a client the program dropped may still have messages queued (its workers outlive it).
_LIVE: Final[set[Client]] = set()


def _shutdown_all_at_exit() -> None:
    for client in list(_LIVE):
        try:
            client.shutdown(timeout=client.config.exit_timeout)
        except Exception:
            _logger.exception("draining at exit failed")


atexit.register(_shutdown_all_at_exit)
