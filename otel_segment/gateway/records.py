"""
OTLP spans and log records, mapped by the in-process bridges' own rules.

The gateway has no mapping of its own. It turns each OTLP span into a small read-only
view with the fields an SDK ``ReadableSpan`` offers the mapping (name, ids, times,
attributes as plain Python values, events, status, resource) for
:func:`~otel_segment.sources.otel_mapping.span_messages`, and hands the parts of each
log record, as an SDK log record holds them, to
:func:`~otel_segment.sources.otel_mapping.log_messages`. A log record whose
``segment`` attribute is a map (a ``logging`` record written as JSON, e.g. by
python-json-logger, and parsed by a Collector's filelog receiver) is mapped by the
logging rules instead, :func:`~otel_segment.sources.handler.annotation_fields`, like
``otel-segment import``: its ``message`` attribute is the default event, its time the
timestamp, and its other attributes the extras.

``AnyValue`` becomes the Python value the SDK would hold: str, bool, int (all 64 bits),
float, bytes, list (arrays) or dict (key-value lists); an empty value ``None``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final, NamedTuple, cast

from opentelemetry.trace import StatusCode
from pythonjsonlogger.core import RESERVED_ATTRS

from otel_segment.sources.handler import ANNOTATION_KEY, annotation_fields
from otel_segment.sources.otel_mapping import (
    app,
    derived_message_id,
    log_messages,
    span_messages,
    trace_context,
)

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
    from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord
    from opentelemetry.proto.trace.v1.trace_pb2 import Span
    from opentelemetry.sdk.trace import ReadableSpan

    from otel_segment.sources.otel_mapping import Fields

__all__ = ["Mapped", "attributes", "log_record_id", "log_records", "spans", "value"]

Mapped = list[tuple[object, "Fields"]] | Exception
"""One record's ``(type, fields)`` pairs (none: not marked), or why it could not be mapped."""

_EPOCH: Final = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_STATUS: Final = {0: StatusCode.UNSET, 1: StatusCode.OK, 2: StatusCode.ERROR}
# Fields of a JSON log line that are not extras: the LogRecord's own attributes (as
# python-json-logger and otel-segment import skip them), the annotation, the formatted
# time, and what a Collector's filelog receiver adds (log.file.name, log.iostream ...).
_NOT_EXTRAS: Final = frozenset({*RESERVED_ATTRS, "taskName", "timestamp", ANNOTATION_KEY})
_COLLECTOR_PREFIX: Final = "log."
_TRACE_ID_BYTES: Final = 16
_SPAN_ID_BYTES: Final = 8
_NO_TRACE_ID: Final = bytes(_TRACE_ID_BYTES)
_NO_SPAN_ID: Final = bytes(_SPAN_ID_BYTES)


def value(any_value: AnyValue) -> Any:
    """The Python value of an OTLP ``AnyValue``."""
    kind = any_value.WhichOneof("value")
    if kind is None:
        return None
    return _CONVERTERS[kind](any_value)


def attributes(pairs: Iterable[KeyValue]) -> dict[str, Any]:
    """OTLP key-value pairs as a dict (a repeated key: the last one wins, as in the SDK)."""
    found: dict[str, Any] = {}
    for pair in pairs:  # strings inline: most attributes are, and a call costs 0.3 us
        any_value = pair.value
        kind = any_value.WhichOneof("value")
        if kind == "string_value":
            found[pair.key] = any_value.string_value
        else:
            found[pair.key] = None if kind is None else _CONVERTERS[kind](any_value)
    return found


_CONVERTERS: Final[dict[str, Callable[[AnyValue], Any]]] = {
    "string_value": lambda v: v.string_value,
    "bool_value": lambda v: v.bool_value,
    "int_value": lambda v: v.int_value,
    "double_value": lambda v: v.double_value,
    "bytes_value": lambda v: v.bytes_value,
    "array_value": lambda v: [value(item) for item in v.array_value.values],
    "kvlist_value": lambda v: attributes(v.kvlist_value.values),
}


class _Resource(NamedTuple):
    attributes: dict[str, Any]


# The views are named tuples: built once per record, and a tuple is the cheapest
# immutable value to build (a frozen dataclass sets each field through object.__setattr__).


class _Ids(NamedTuple):
    trace_id: int
    span_id: int


class _Status(NamedTuple):
    status_code: StatusCode
    description: str | None


class _Event(NamedTuple):
    name: str
    attributes: dict[str, Any]
    timestamp: int


class _SpanView(NamedTuple):
    """The parts of a ``ReadableSpan`` the span mapping reads."""

    name: str
    context: _Ids
    resource: _Resource
    attributes: dict[str, Any]
    events: list[_Event]
    start_time: int
    end_time: int
    status: _Status


def spans(request: ExportTraceServiceRequest) -> Iterator[Mapped]:
    """Each span of *request*, mapped (in order)."""
    for resource_spans in request.resource_spans:
        resource = _Resource(attributes(resource_spans.resource.attributes))
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                try:
                    view = _span_view(span, resource)
                    # The view offers what span_messages reads of a ReadableSpan
                    # (tests/test_gateway_records.py proves the results equal).
                    yield span_messages(cast("ReadableSpan", view))
                except Exception as error:  # noqa: BLE001 - a bad span costs that span only
                    yield error


def _span_view(span: Span, resource: _Resource) -> _SpanView:
    status = span.status
    return _SpanView(
        name=span.name,
        context=_Ids(_int(span.trace_id), _int(span.span_id)),
        resource=resource,
        attributes=attributes(span.attributes),
        events=[
            _Event(event.name, attributes(event.attributes), event.time_unix_nano)
            for event in span.events
        ],
        start_time=span.start_time_unix_nano,
        end_time=span.end_time_unix_nano,
        status=_Status(_STATUS.get(status.code, StatusCode.UNSET), status.message or None),
    )


def log_records(request: ExportLogsServiceRequest) -> Iterator[Mapped]:
    """Each log record of *request*, mapped (in order)."""
    for resource_logs in request.resource_logs:
        app_context = app(attributes(resource_logs.resource.attributes))
        # A log record's messageId hashes its resource's bytes with its own.
        prefix = hashlib.blake2b(digest_size=16)
        prefix.update(
            hashlib.blake2b(resource_logs.resource.SerializeToString(), digest_size=16).digest()
        )
        for scope_logs in resource_logs.scope_logs:
            for record in scope_logs.log_records:
                try:
                    mapped = _log_record(record, app_context)
                    for _kind, fields in mapped:
                        if not fields.get("message_id"):
                            fields["message_id"] = log_record_id(prefix, record)
                    yield mapped
                except Exception as error:  # noqa: BLE001 - a bad record costs that record only
                    yield error


def log_record_id(prefix: hashlib.blake2b, record: LogRecord) -> str:
    """
    The messageId of a log record with no ``segment.message_id``: from its content.

    A hash of the record's protobuf bytes (its times, trace and span ids, severity, body,
    attributes, flags and event name) after its resource's digest (in *prefix*). The same
    record sent again, as protobuf or as OTLP JSON, gets the same id; records that differ
    in anything get different ids; two records identical in everything, the same
    nanosecond included, get the same id (Segment keeps one of them).
    """
    return derived_message_id(record.SerializeToString(), prefix)


def _log_record(record: LogRecord, app_context: Fields) -> list[tuple[object, Fields]]:
    found = attributes(record.attributes)
    annotation = found.get(ANNOTATION_KEY)
    if annotation is not None and isinstance(annotation, Mapping):  # None: no ABC check
        return [_logging_record(found, annotation, record)]
    # The parts an SDK log record offers log_record_messages, as the SDK holds them
    # (tests/test_gateway_records.py proves the results equal).
    return log_messages(
        found,
        record.event_name,
        value(record.body),
        app_context,
        _trace(record.trace_id, record.span_id),
        record.time_unix_nano or record.observed_time_unix_nano,
    )


def _logging_record(
    found: dict[str, Any], annotation: Mapping[str, Any], record: LogRecord
) -> tuple[object, Fields]:
    """A JSON ``logging`` record's message, by the logging bridge's rules."""
    message = found.get("message")
    time_unix_nano = record.time_unix_nano or record.observed_time_unix_nano
    extras = {
        key: item
        for key, item in found.items()
        if key not in _NOT_EXTRAS and not key.startswith(("_", _COLLECTOR_PREFIX))
    }
    return annotation_fields(
        annotation,
        message=message if isinstance(message, str) else None,
        timestamp=_EPOCH + dt.timedelta(microseconds=time_unix_nano // 1000)
        if time_unix_nano
        else None,
        extras=extras,
    )


def _trace(trace_id: bytes, span_id: bytes) -> dict[str, str] | None:
    """:func:`trace_context` of OTLP's id bytes, written straight from them when well-formed."""
    if len(trace_id) == _TRACE_ID_BYTES and len(span_id) == _SPAN_ID_BYTES:
        if trace_id == _NO_TRACE_ID or span_id == _NO_SPAN_ID:
            return None
        return {"trace_id": trace_id.hex(), "span_id": span_id.hex()}
    return trace_context(_int(trace_id), _int(span_id))


def _int(raw: bytes) -> int:
    return int.from_bytes(raw, "big")
