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
import inspect
import logging
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final

from pythonjsonlogger.core import RESERVED_ATTRS, merge_record_extra

from otel_segment import _default
from otel_segment.errors import ClientClosedError
from otel_segment.pipeline.batching import in_pipeline
from otel_segment.pipeline.client import Client
from otel_segment.pipeline.messages import MESSAGE_TYPES
from otel_segment.pipeline.reporting import Throttle, log_throttled

if TYPE_CHECKING:
    import datetime as dt

    from otel_segment.pipeline.client import Id
    from otel_segment.pipeline.messages import MessageType

__all__ = [
    "ANNOTATION_KEY",
    "IGNORED_LOGGERS",
    "Mapper",
    "SegmentHandler",
    "annotate",
    "annotation_fields",
]

_logger = logging.getLogger("otel_segment")

ANNOTATION_KEY: Final = "segment"
"""The ``extra`` key (a record attribute) that marks a record for Segment."""

IGNORED_LOGGERS: Final = frozenset({"otel_segment", "urllib3", "requests"})
"""Loggers (and their children) never forwarded: the pipeline's own and its HTTP stack's."""

Mapper = Callable[[logging.LogRecord], Mapping[str, Any] | None]
"""``mapper(record)``: the fields of one message (``type`` included), or ``None`` to skip."""

_IGNORED_PREFIXES: Final = tuple(f"{name}." for name in sorted(IGNORED_LOGGERS))
_RESERVED: Final = frozenset({*RESERVED_ATTRS, "taskName", ANNOTATION_KEY})
_LOGURU_EXTRA: Final = "extra"  # loguru's handler sink nests the extras in record.extra
_EXTRAS_FIELD: Final = dict.fromkeys(("track", "page", "screen"), "properties") | dict.fromkeys(
    ("identify", "group"), "traits"
)
_ANNOTATION_NAME: Final = f"extra[{ANNOTATION_KEY!r}]"
# A record with no more attributes than a plain one plus the annotation has no extras.
_PLAIN_ATTRIBUTES: Final = len(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) + 1
_NAMED_BY_MESSAGE: Final = {"track": "event", "page": "name", "screen": "name"}

# Set while this thread emits: a record logged meanwhile (by a mapper, a __str__, the
# client) is never forwarded, whatever its logger.
_EMITTING: Final = contextvars.ContextVar("otel_segment_handler_emitting", default=False)


def annotate(
    type: MessageType = "track",
    *,
    user_id: Id = None,
    anonymous_id: Id = None,
    event: str | None = None,
    name: str | None = None,
    category: str | None = None,
    properties: Mapping[str, Any] | None = None,
    traits: Mapping[str, Any] | None = None,
    group_id: Id = None,
    previous_id: Id = None,
    context: Mapping[str, Any] | None = None,
    integrations: Mapping[str, Any] | None = None,
    message_id: str | None = None,
    timestamp: dt.datetime | float | None = None,
    **values: Any,
) -> dict[str, Any]:
    """
    Build the ``extra`` mapping that marks a log record for :class:`SegmentHandler`.

    The fields are those of the :class:`~otel_segment.Client` call of *type*; ``None``
    means "not given" (the handler's defaults apply). Any other keyword is a value that
    joins ``properties`` (track, page, screen) or ``traits`` (identify, group); entries of
    an explicit *properties* / *traits* mapping win. It never raises and never validates:
    a bad annotation is counted and reported by the handler, not by the logging call::

        log.info("Signed Up", extra=annotate(user_id="u1", plan="pro"))
        log.info("u1 changed", extra=annotate("identify", user_id="u1", plan="pro"))
        structlog_logger.info("Signed Up", **annotate(user_id="u1"))
        loguru_logger.bind(**annotate(user_id="u1")).info("Signed Up")

    Returns:
        ``{"segment": {...}}``, for ``extra=`` (stdlib) or ``**`` (structlog, loguru).

    .. versionadded:: 0.1.0
    """
    given = {
        "user_id": user_id,
        "anonymous_id": anonymous_id,
        "event": event,
        "name": name,
        "category": category,
        "properties": properties,
        "traits": traits,
        "group_id": group_id,
        "previous_id": previous_id,
        "context": context,
        "integrations": integrations,
        "message_id": message_id,
        "timestamp": timestamp,
    }
    annotation: dict[str, Any] = {"type": type}
    annotation.update((key, value) for key, value in given.items() if value is not None)
    if values:
        target = _EXTRAS_FIELD.get(type, "properties")
        _merge_into(annotation, target, values)
    return {ANNOTATION_KEY: annotation}


# The names an annotation may hold: annotate()'s, so the two never disagree.
_FIELDS: Final = frozenset(inspect.signature(annotate).parameters) - {"values"}


def annotation_fields(
    annotation: object,
    *,
    message: str | None = None,
    timestamp: dt.datetime | float | None = None,
    extras: Mapping[str, Any] | None = None,
) -> tuple[str, dict[str, Any]]:
    """
    Apply the default mapping rules to an annotation: ``(type, fields)`` for ``message()``.

    The rules :class:`SegmentHandler` follows, for other sources of annotated records
    (e.g. JSON lines written by python-json-logger): ``type`` defaults to ``"track"``,
    *message* is the default track ``event`` (page/screen ``name``), *timestamp* the
    default ``timestamp``, and *extras* join ``properties`` (track, page, screen) or
    ``traits`` (identify, group), the annotation's own entries winning. The values are
    not checked here; :meth:`Client.message <otel_segment.Client.message>` checks them.

    Args:
        annotation: The ``segment`` mapping: ``type`` and the fields of the call.
        message: The record's message.
        timestamp: When the record was made.
        extras: The record's other fields.

    Returns:
        The message type and the keyword fields for
        :meth:`Client.message <otel_segment.Client.message>`.

    Raises:
        TypeError: *annotation* is not a mapping, or has fields no call takes.
        ValueError: Its ``type`` is not one of the six Segment calls.

    .. versionadded:: 0.1.0
    """
    fields = _checked(annotation, _ANNOTATION_NAME)
    kind = fields.pop("type", None)
    if kind is None:
        kind = "track"
    named = _NAMED_BY_MESSAGE.get(kind)
    if named is not None and message is not None and fields.get(named) is None:
        fields[named] = message
    if timestamp is not None and fields.get("timestamp") is None:
        fields["timestamp"] = timestamp
    target = _EXTRAS_FIELD.get(kind)
    if target is not None and extras:
        _merge_into(fields, target, extras)
    return kind, fields


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
        if client is not None and not isinstance(client, Client):
            raise TypeError(f"client must be an otel_segment.Client, got {type(client).__name__}")
        if client is not None and client_kwargs:
            names = ", ".join(sorted(client_kwargs))
            raise TypeError(f"pass client= or client keyword arguments ({names}), not both")
        if mapper is not None and not callable(mapper):
            raise TypeError(f"mapper must be callable, got {type(mapper).__name__}")
        super().__init__(level)
        owned = Client(**client_kwargs) if client_kwargs else None
        self._client = owned if owned is not None else client
        self._owns = owned is not None
        self._last: Client | None = self._client
        self._mapper = mapper
        self._closed = False
        self._close_lock = threading.Lock()
        self._throttle = Throttle()

    def __repr__(self) -> str:
        """Show the level and which client is fed (never the write key)."""
        client = "default client" if self._client is None else repr(self._client)
        return f"<{type(self).__name__} ({logging.getLevelName(self.level)}) {client}>"

    @property
    def client(self) -> Client | None:
        """The client fed, or ``None`` when it is the process-wide default client."""
        return self._client

    def handle(self, record: logging.LogRecord) -> bool:
        """
        Filter and emit *record* if it is annotated (or a mapper is set); else drop it.

        Unlike the base class, no lock is taken: the client is thread-safe.

        Returns:
            Whether the record was passed to :meth:`emit`.
        """
        attributes = record.__dict__
        if ANNOTATION_KEY not in attributes and self._mapper is None:
            nested = attributes.get(_LOGURU_EXTRA)  # loguru's extras
            if type(nested) is not dict or ANNOTATION_KEY not in nested:
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
            if self._owns and self._client is not None:
                self._client.shutdown(self._client.config.exit_timeout)
        finally:
            super().close()

    # -- mapping -------------------------------------------------------------------

    def _emit(self, record: logging.LogRecord) -> None:
        try:
            client = _default.get_client() if self._client is None else self._client
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
            fields = _checked(result, "the mapper's result")
            kind = fields.pop("type", None)
            fields.setdefault("timestamp", _created(record))
            return ("track" if kind is None else kind), fields
        found = _annotation(record)
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


def _annotation(record: logging.LogRecord) -> tuple[object, dict[str, Any]] | None:
    """
    ``(annotation, extras)`` of *record* (stdlib, structlog or loguru), else ``None``.

    An annotation of ``None`` (e.g. ``segment=None`` bound in structlog) means none.
    """
    attributes = record.__dict__
    annotation = attributes.get(ANNOTATION_KEY)
    if annotation is not None:
        if len(attributes) <= _PLAIN_ATTRIBUTES:  # nothing but the standard attributes
            return annotation, {}
        return annotation, merge_record_extra(record, {}, _RESERVED)
    nested = attributes.get(_LOGURU_EXTRA)
    if type(nested) is dict and nested.get(ANNOTATION_KEY) is not None:
        extras = {
            key: value
            for key, value in nested.items()
            if key != ANNOTATION_KEY and not (isinstance(key, str) and key.startswith("_"))
        }
        return nested[ANNOTATION_KEY], extras
    return None


def _checked(fields: object, what: str) -> dict[str, Any]:
    """A copy of *fields*, checked to be a mapping of known field names and a known type."""
    if type(fields) is not dict and not isinstance(fields, Mapping):
        raise TypeError(f"{what} must be a mapping (dict), got {type(fields).__name__}")
    if not fields.keys() <= _FIELDS:
        unknown = sorted(map(repr, fields.keys() - _FIELDS))
        known = ", ".join(sorted(_FIELDS))
        raise TypeError(f"{what} has unknown fields {', '.join(unknown)}; known: {known}")
    kind = fields.get("type")
    if kind is not None and kind not in MESSAGE_TYPES:
        raise ValueError(f"{what} type must be one of {', '.join(MESSAGE_TYPES)}, got {kind!r}")
    return dict(fields)


def _merge_into(fields: dict[str, Any], target: str, values: Mapping[str, Any]) -> None:
    """Put *values* under *fields[target]*, whose own entries win."""
    explicit = fields.get(target)
    if explicit is None:
        fields[target] = dict(values)
    elif isinstance(explicit, Mapping):
        fields[target] = {**values, **explicit}
    # else: leave the wrong value for the client to reject, naming the field


def _created(record: logging.LogRecord) -> float:
    return record.created  # POSIX seconds: the cheapest form the client formats
