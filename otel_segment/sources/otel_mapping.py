"""
The default mapping from OpenTelemetry spans and log records to Segment messages.

Pure functions, no I/O: each returns ``(type, fields)`` pairs for
:meth:`otel_segment.Client.message`; validation (a missing user, an unknown type) is the
client's. The rules are those of DESIGN.md, "Mapping rules":

- ``segment.type`` / ``segment.event`` mark a span, a span event or a log record; nothing
  else is looked at for an unmarked span, so an exporter on every span is cheap.
- ``segment.user_id``, ``segment.anonymous_id``, ``segment.name``, ``segment.category``,
  ``segment.group_id``, ``segment.previous_id`` fill the fields of the same name;
  ``segment.properties.<k>`` and ``segment.traits.<k>`` become key ``<k>`` (kept flat) of
  properties and traits.
- The user falls back to ``enduser.id``, then ``user.id``; the anonymous id to
  ``enduser.pseudo.id``, then ``session.id`` (a span event looks in its own attributes
  first, then its span's). With none of these, the client takes the identity in force
  where the span ends (:mod:`otel_segment.pipeline.identify`).
- A track made from a span gets ``duration_ms``, ``status`` (``"ok"``, ``"error"``,
  ``"unset"``), ``error`` (a bool) and, for an error with a description,
  ``error_message`` in its properties, under the span's own ``segment.properties.*``.
- Resource ``service.name`` / ``service.version`` become ``context.app``; the trace and
  span ids ``context.trace`` (as the client writes them for messages sent in a span).
- ``segment.message_id`` sets the messageId; without it, a span's message gets one derived
  from its trace and span ids (and, for a span event, the event's position), so the same
  span mapped twice (an exporter's retry through the gateway) is deduplicated by Segment.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

from opentelemetry.trace import StatusCode

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import Event, ReadableSpan

__all__ = [
    "EVENT_KEY",
    "TYPE_KEY",
    "Fields",
    "app",
    "derived_message_id",
    "is_marked",
    "log_messages",
    "log_record_messages",
    "plain",
    "span_is_marked",
    "span_messages",
    "trace_context",
]

Fields = dict[str, Any]
"""Keyword arguments of :meth:`otel_segment.Client.message`."""

_Attributes = Mapping[str, Any]

TYPE_KEY: Final = "segment.type"
"""Attribute naming the message type (``"track"`` when only ``segment.event`` is set)."""

EVENT_KEY: Final = "segment.event"
"""Attribute naming the track's event; it marks a span as a track on its own."""

_EVENT_NAME_KEY: Final = "otel.event.name"
_PREFIX: Final = "segment."
_PROPERTIES_PREFIX: Final = "segment.properties."
_PROPERTIES_LEN: Final = len(_PROPERTIES_PREFIX)
_TRAITS_PREFIX: Final = "segment.traits."
_TRAITS_LEN: Final = len(_TRAITS_PREFIX)
_SCALARS: Final = {
    "segment.name": "name",
    "segment.category": "category",
    "segment.group_id": "group_id",
    "segment.previous_id": "previous_id",
    "segment.message_id": "message_id",
}
_USER_KEYS: Final = ("segment.user_id", "enduser.id", "user.id")
_ANONYMOUS_KEYS: Final = ("segment.anonymous_id", "enduser.pseudo.id", "session.id")
_VIEW: Final = frozenset(
    {"user_id", "anonymous_id", "name", "category", "properties", "message_id"}
)
_ACCEPTS: Final[dict[object, frozenset[str]]] = {
    "track": frozenset({"user_id", "anonymous_id", "event", "properties", "message_id"}),
    "identify": frozenset({"user_id", "anonymous_id", "traits", "message_id"}),
    "page": _VIEW,
    "screen": _VIEW,
    "group": frozenset({"user_id", "anonymous_id", "group_id", "traits", "message_id"}),
    "alias": frozenset({"user_id", "previous_id", "message_id"}),
}
_STATUS: Final = {StatusCode.UNSET: "unset", StatusCode.OK: "ok", StatusCode.ERROR: "error"}
_UNKNOWN_SERVICE: Final = "unknown_service"
_NO_PREFIX: Final = hashlib.blake2b(digest_size=16)


def plain(attributes: _Attributes | None) -> _Attributes:
    """
    The plain dict inside the SDK's ``BoundedAttributes``, else *attributes* (or ``{}``).

    A lookup that misses in ``BoundedAttributes`` raises and catches ``KeyError``
    (about 0.6 us); in the dict inside it, 0.05 us. Every span pays for two lookups.
    """
    inner = getattr(attributes, "_dict", None)
    return inner if isinstance(inner, dict) else (attributes or {})


def is_marked(attributes: _Attributes | None) -> bool:
    """Whether *attributes* carry a ``segment.type`` or ``segment.event`` marker."""
    found = plain(attributes)
    return TYPE_KEY in found or EVENT_KEY in found


def span_is_marked(span: ReadableSpan) -> bool:
    """
    Whether the span or one of its events is marked: the test every span pays for.

    The same reads as :func:`_unwrapped`, inlined: about 0.1 us for an unmarked span.
    """
    internals: Any = span
    try:
        attributes = internals._attributes._dict  # noqa: SLF001 - see _unwrapped()
        if TYPE_KEY in attributes or EVENT_KEY in attributes:
            return True
        events: Sequence[Event] = internals._events  # noqa: SLF001
    except AttributeError:
        attributes, events = _unwrapped(span)
        if TYPE_KEY in attributes or EVENT_KEY in attributes:
            return True
    return bool(events) and any(is_marked(event.attributes) for event in events)


def span_messages(span: ReadableSpan) -> list[tuple[object, Fields]]:
    """
    Map a finished span, and its marked span events, to ``(type, fields)`` pairs.

    Returns:
        Nothing for a span with no marker on it or on its events.
    """
    attributes, all_events = _unwrapped(span)
    marked = TYPE_KEY in attributes or EVENT_KEY in attributes
    events = (
        [(n, event) for n, event in enumerate(all_events, 1) if is_marked(event.attributes)]
        if all_events
        else []
    )
    if not marked and not events:
        return []
    ids = span.context
    trace_id, span_id = (ids.trace_id, ids.span_id) if ids else (0, 0)
    context = _context(app(span.resource.attributes), trace_context(trace_id, span_id))
    found: list[tuple[object, Fields]] = []
    if marked:
        kind, fields = _fields(attributes, span.name, None, context, span.end_time)
        if kind == "track":
            fields["properties"] = {**_span_outcome(span), **fields["properties"]}
        _identify_span_message(fields, trace_id, span_id, 0)
        found.append((kind, fields))
    for number, event in events:
        event_attributes = plain(event.attributes)
        pair = _fields(event_attributes, event.name, attributes, context, event.timestamp)
        _identify_span_message(pair[1], trace_id, span_id, number)
        found.append(pair)
    return found


def derived_message_id(identity: bytes, prefix: hashlib.blake2b | None = None) -> str:
    """
    A messageId derived from *identity*, UUID-shaped.

    120 bits of the BLAKE2b of *prefix*'s input (a hasher prepared once, e.g. with a
    resource's digest: copying it is cheaper than hashing that again) and *identity*,
    written as a version 8 (custom) UUID. The same input always gives the same id, so a
    record sent twice is deduplicated by Segment.
    """
    hasher = (prefix or _NO_PREFIX).copy()
    hasher.update(identity)
    h = hasher.hexdigest()
    return f"{h[:8]}-{h[8:12]}-8{h[13:16]}-a{h[17:20]}-{h[20:]}"


def _identify_span_message(fields: Fields, trace_id: int, span_id: int, number: int) -> None:
    """Give the message of a span (*number* 0) or of its *number*-th event its derived id."""
    if not fields.get("message_id") and trace_id and span_id:
        identity = (trace_id << 96 | span_id << 32 | number).to_bytes(28, "big")
        fields["message_id"] = derived_message_id(identity)


def _unwrapped(span: ReadableSpan) -> tuple[_Attributes, Sequence[Event]]:
    """
    The span's attributes as a plain dict, and its events, read cheaply.

    The SDK's ``ReadableSpan`` keeps a ``BoundedAttributes`` and a ``BoundedList`` of
    events; its ``attributes`` and ``events`` properties wrap or copy them (0.1 and
    0.4 us, and each missed lookup through the wrapper 0.6 us). This reads them
    directly, and takes the public route for spans of another implementation.
    """
    internals: Any = span
    try:
        return internals._attributes._dict, internals._events  # noqa: SLF001 - see above
    except AttributeError:
        return plain(span.attributes), span.events


def log_record_messages(item: object) -> list[tuple[object, Fields]]:
    """
    Map an OTel log record with an event name, or a ``segment.*`` marker, to messages.

    *item* is what the SDK hands a log exporter: a ``ReadableLogRecord`` (SDK 1.39+) or
    a ``LogData`` (older), both with the API record in ``log_record``.
    """
    record: Any = getattr(item, "log_record", item)
    attributes = plain(record.attributes)
    event_name = getattr(record, "event_name", None)
    if not _log_is_marked(event_name, attributes):
        return []  # the test every unmarked record pays for: no resource or ids are read
    resource = getattr(item, "resource", None) or getattr(record, "resource", None)
    return log_messages(
        attributes,
        event_name,
        record.body,
        app(resource.attributes if resource is not None else None),
        trace_context(record.trace_id or 0, record.span_id or 0),
        record.timestamp or record.observed_timestamp,
    )


def log_messages(
    attributes: _Attributes,
    event_name: str | None,
    body: object,
    app_context: Fields,
    trace: dict[str, str] | None,
    time_unix_nano: int | None,
) -> list[tuple[object, Fields]]:
    """
    Map the parts of a log record to messages: the one log mapping, for every reader.

    The event name is the record's *event_name*, else its ``otel.event.name``
    attribute; it is the default event of the track (``segment.event`` overrides it).
    A mapping *body* adds to the properties, under the record's ``segment.properties.*``.
    *app_context* is :func:`app` of the record's resource, *trace* the
    :func:`trace_context` of its ids.

    Returns:
        Nothing for a record with no event name and no marker.
    """
    if not _log_is_marked(event_name, attributes):
        return []
    event_name = event_name or attributes.get(_EVENT_NAME_KEY)
    default_name = event_name or (body if isinstance(body, str) else None)
    context = _context(app_context, trace)
    kind, fields = _fields(attributes, default_name, None, context, time_unix_nano)
    if body is not None and isinstance(body, Mapping) and "properties" in fields:
        fields["properties"] = {**body, **fields["properties"]}
    return [(kind, fields)]


def _log_is_marked(event_name: str | None, attributes: _Attributes) -> bool:
    """Whether a log record has an event name (field or attribute) or a marker (plain dict)."""
    return (
        bool(event_name or attributes.get(_EVENT_NAME_KEY))
        or TYPE_KEY in attributes
        or EVENT_KEY in attributes
    )


def trace_context(trace_id: int, span_id: int) -> dict[str, str] | None:
    """``context.trace`` for these ids, as the client writes it; ``None`` when invalid."""
    if not trace_id or not span_id:
        return None
    return {"trace_id": format(trace_id, "032x"), "span_id": format(span_id, "016x")}


def _fields(
    attributes: _Attributes,
    default_name: str | None,
    fallback: _Attributes | None,
    context: dict[str, Any],
    time_unix_nano: int | None,
) -> tuple[object, Fields]:
    """The type and the fields this type accepts, from marked *attributes*."""
    kind = attributes.get(TYPE_KEY) or "track"
    accepts = _ACCEPTS.get(kind, _ACCEPTS["track"])
    fields = _segment_fields(attributes, accepts)
    fields["context"] = context
    if "event" in accepts:
        fields["event"] = attributes.get(EVENT_KEY) or default_name
    if "name" in accepts:
        fields.setdefault("name", default_name)
    fields["user_id"] = _first(_USER_KEYS, attributes, fallback)
    if "anonymous_id" in accepts:
        fields["anonymous_id"] = _first(_ANONYMOUS_KEYS, attributes, fallback)
    if time_unix_nano:
        # POSIX seconds, cheaper to write than a datetime; whole microseconds first, so
        # the float's rounding cannot carry into the next millisecond.
        fields["timestamp"] = time_unix_nano // 1000 / 1_000_000
    return kind, fields


def _segment_fields(attributes: _Attributes, accepts: frozenset[str]) -> Fields:
    """Properties, traits and the scalar fields of ``segment.*`` attributes that *accepts* lists."""
    properties: Fields = {}
    traits: Fields = {}
    fields: Fields = {}
    for key, value in attributes.items():
        if not key.startswith(_PREFIX):
            continue
        if key.startswith(_PROPERTIES_PREFIX):
            properties[key[_PROPERTIES_LEN:]] = value
        elif key.startswith(_TRAITS_PREFIX):
            traits[key[_TRAITS_LEN:]] = value
        elif (name := _SCALARS.get(key)) in accepts:
            fields[name] = value
    if "properties" in accepts:
        fields["properties"] = properties
    if "traits" in accepts:
        fields["traits"] = traits
    return fields


def _first(keys: tuple[str, ...], attributes: _Attributes, fallback: _Attributes | None) -> Any:
    for key in keys:
        value = attributes.get(key)
        if value is not None and value != "":
            return value
    if fallback:
        for key in keys:
            value = fallback.get(key)
            if value is not None and value != "":
                return value
    return None


def _span_outcome(span: ReadableSpan) -> Fields:
    """``duration_ms``, ``status``, ``error`` (and ``error_message``) of a finished span."""
    outcome: Fields = {}
    if span.start_time is not None and span.end_time is not None:
        outcome["duration_ms"] = round((span.end_time - span.start_time) / 1e6, 3)
    code = span.status.status_code
    outcome["status"] = _STATUS.get(code, "unset")
    outcome["error"] = code is StatusCode.ERROR
    if code is StatusCode.ERROR and span.status.description:
        outcome["error_message"] = span.status.description
    return outcome


def _context(app_context: Fields, trace: dict[str, str] | None) -> dict[str, Any]:
    context: dict[str, Any] = {}
    if trace is not None:
        context["trace"] = trace
    if app_context:
        context["app"] = app_context
    return context


def app(resource_attributes: _Attributes | None) -> Fields:
    """
    ``context.app`` from a resource's attributes (``service.name``, ``service.version``).

    The SDK's ``unknown_service`` default name is left out.
    """
    attributes = plain(resource_attributes)
    found: Fields = {}
    name = attributes.get("service.name")
    if isinstance(name, str) and name and not name.startswith(_UNKNOWN_SERVICE):
        found["name"] = name
    version = attributes.get("service.version")
    if version:
        found["version"] = version
    return found
