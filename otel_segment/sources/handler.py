"""
The logging bridge: :class:`SegmentHandler` turns annotated log records into Segment messages.

A record becomes a message only if it carries an annotation, ``extra={"segment": {...}}``
(:func:`annotate` builds one), mapped by the rules of :func:`annotation_fields`; any other
record is dropped at once, so the handler is safe on the root logger. Extra fields are
collected as python-json-logger collects them. structlog (through stdlib, with
``render_to_log_kwargs``) and loguru (``logger.add(handler, format="{message}")``, extras
nested in ``record.extra``) work the same way.
"""

from __future__ import annotations

import contextvars
import logging
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final

from otel_segment.errors import ClientClosedError
from otel_segment.pipeline.batching import in_pipeline
from otel_segment.pipeline.reporting import Throttle, log_throttled
from otel_segment.sources.clients import ClientRef
from otel_segment.sources.log_mapping import (
    ANNOTATION_KEY,
    annotate,
    annotation_fields,
    checked_fields,
    has_annotation,
    record_annotation,
)

if TYPE_CHECKING:
    from otel_segment.pipeline.client import Client

__all__ = [
    "ANNOTATION_KEY",
    "IGNORED_LOGGERS",
    "Mapper",
    "SegmentHandler",
    "annotate",
    "annotation_fields",
]

_logger = logging.getLogger("otel_segment")

IGNORED_LOGGERS: Final = frozenset({"otel_segment", "urllib3", "requests"})
"""Loggers (and their children) never forwarded: the pipeline's own and its HTTP stack's."""

Mapper = Callable[[logging.LogRecord], Mapping[str, Any] | None]
"""``mapper(record)``: the fields of one message (``type`` included), or ``None`` to skip."""

_IGNORED_PREFIXES: Final = tuple(f"{name}." for name in sorted(IGNORED_LOGGERS))

# Set while this thread emits: a record logged meanwhile (by a mapper, a __str__, the
# client) is never forwarded, whatever its logger.
_EMITTING: Final = contextvars.ContextVar("otel_segment_handler_emitting", default=False)


class SegmentHandler(logging.Handler):
    """
    A :class:`logging.Handler` that sends annotated log records as Segment messages.

    Args:
        client: The client to feed. Without it (and without *client_kwargs*), the
            process-wide default client, looked up at each record, so it may be
            configured after the handler is made.
        level: The handler's level, as for any handler.
        mapper: ``mapper(record) -> fields | None`` replacing the default mapping: the
            returned fields (``type`` included, default ``"track"``) are sent as given,
            with ``timestamp`` defaulting to ``record.created``; ``None`` skips the
            record. It sees every record not from an ignored logger, so keep it cheap.
        client_kwargs: :class:`~otel_segment.Client` arguments (``write_key``, ``host``,
            ``flush_at`` ...), the way ``logging.config.dictConfig`` passes them: the
            handler owns a client built from them and shuts it down in :meth:`close`.

    Records from :data:`IGNORED_LOGGERS`, and any record logged while the pipeline
    itself delivers (its worker threads, ``sync_mode`` sends), are never forwarded.
    Logging never raises because of this handler: a record that cannot become a message
    is counted in ``client.stats()["rejected"]`` and reported under the ``otel_segment``
    logger (at most one warning every 10 s per handler from the handler itself).

    Raises:
        TypeError: *client* is not a :class:`~otel_segment.Client`, *mapper* is not
            callable, both *client* and *client_kwargs* are given, or a client argument
            is wrong.
        ValueError: A client argument is out of range.

    .. versionadded:: 0.1.0
    """

    def __init__(
        self,
        client: Client | None = None,
        level: int | str = logging.NOTSET,
        *,
        mapper: Mapper | None = None,
        **client_kwargs: Any,
    ) -> None:
        if mapper is not None and not callable(mapper):
            raise TypeError(f"mapper must be callable, got {type(mapper).__name__}")
        ref = ClientRef(client, client_kwargs)
        super().__init__(level)
        self._ref = ref
        self._last: Client | None = ref.fixed
        self._mapper = mapper
        self._closed = False
        self._close_lock = threading.Lock()
        self._throttle = Throttle()

    def __repr__(self) -> str:
        """Show the level and which client is fed (never the write key)."""
        return f"<{type(self).__name__} ({logging.getLevelName(self.level)}) {self._ref!r}>"

    @property
    def client(self) -> Client | None:
        """The client fed, or ``None`` when it is the process-wide default client."""
        return self._ref.fixed

    def handle(self, record: logging.LogRecord) -> bool:
        """
        Filter and emit *record* if it is annotated (or a mapper is set); else drop it.

        Unlike the base class, no lock is taken: the client is thread-safe.

        Returns:
            Whether the record was passed to :meth:`emit`.
        """
        if self._mapper is None and not has_annotation(record):
            return False
        name = record.name
        if (
            self._closed
            or name in IGNORED_LOGGERS
            or name.startswith(_IGNORED_PREFIXES)
            or in_pipeline()
            or _EMITTING.get()
        ):
            return False
        if self.filters:
            passed: object = self.filter(record)  # Python 3.12+ may return a new record
            if not passed:
                return False
            if isinstance(passed, logging.LogRecord):
                record = passed
        self.emit(record)
        return True

    def emit(self, record: logging.LogRecord) -> None:
        """Send *record* as a message, if it maps to one; never raises."""
        token = _EMITTING.set(True)
        try:
            self._emit(record)
        except Exception:  # noqa: BLE001 - a bug, or the record's own formatting: logging's way
            self.handleError(record)
        finally:
            _EMITTING.reset(token)

    def flush(self) -> None:
        """Wait until the client delivered what is queued (at most its ``exit_timeout``)."""
        client = self._last
        if client is not None and not client.closed:
            client.flush(client.config.exit_timeout)

    def close(self) -> None:
        """Detach; an owned client is shut down (within its ``exit_timeout``). Idempotent."""
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
        try:
            self._ref.close()
        finally:
            super().close()

    # -- mapping -------------------------------------------------------------------

    def _emit(self, record: logging.LogRecord) -> None:
        try:
            client = self._ref.get()
        except (TypeError, ValueError) as error:  # no default client can be built
            self._warn(record, f"no client: {error}")
            return
        self._last = client
        try:
            mapped = self._fields(record)
        except Exception as error:  # noqa: BLE001 - a bad annotation or a failing mapper
            client.reject(error)  # counted and reported under otel_segment
            return
        if mapped is None:
            return
        kind, fields = mapped
        try:
            client.message(kind, **fields)
        except (TypeError, ValueError) as error:  # counted as rejected by the client
            self._warn(record, f"message rejected: {error}")
        except ClientClosedError as error:
            self._warn(record, str(error))

    def _fields(self, record: logging.LogRecord) -> tuple[str, dict[str, Any]] | None:
        """``(type, fields)`` of the message *record* maps to, or ``None`` to skip it."""
        if self._mapper is not None:
            result = self._mapper(record)
            if result is None:
                return None
            fields = checked_fields(result, "the mapper's result")
            kind = fields.pop("type", None)
            fields.setdefault("timestamp", _created(record))
            return ("track" if kind is None else kind), fields
        found = record_annotation(record)
        if found is None:
            return None
        annotation, extras = found
        return annotation_fields(
            annotation, message=record.getMessage(), timestamp=_created(record), extras=extras
        )

    def _warn(self, record: logging.LogRecord, problem: str) -> None:
        """Report a dropped record under ``otel_segment``, rate-limited like every loss."""
        line = "log record from %r dropped: %s"
        log_throttled(self._throttle, logging.WARNING, line, record.name, problem)


def _created(record: logging.LogRecord) -> float:
    return record.created  # POSIX seconds: the cheapest form the client formats
