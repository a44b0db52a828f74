"""
Request bodies to OTLP messages: content types, gzip within a bound, protobuf and OTLP JSON.

Pure functions over bytes, no I/O. A body that cannot be taken raises :class:`BodyError`
with the HTTP status the OTLP specification prescribes: 400 undecodable, 413 too large
(also once inflated: a gzip bomb stops at the limit), 415 an unsupported media type or
content encoding.

OTLP JSON differs from the protobuf JSON mapping in one place: trace and span ids are
hex strings, not base64. :func:`decode` turns them into bytes before the protobuf parser
sees them, and refuses an id that is not hex of the right length (e.g. base64). Unknown
fields are ignored, as receivers must; enums may be integers or names.
"""

from __future__ import annotations

import binascii
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import orjson
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from otel_segment.gateway.wire import SLICE_BYTES, Sliced

if TYPE_CHECKING:
    from google.protobuf.message import Message

__all__ = [
    "JSON",
    "PROTOBUF",
    "BodyError",
    "Signal",
    "decode",
    "inflate",
    "media_type",
]

PROTOBUF: Final = "application/x-protobuf"
JSON: Final = "application/json"
_GZIP_WBITS: Final = 16 + zlib.MAX_WBITS
_ID_HEX_DIGITS: Final = {"traceId": 32, "spanId": 16, "parentSpanId": 16}


@dataclass(frozen=True, slots=True)
class Signal:
    """
    One OTLP signal: its HTTP path, gRPC service and request message.

    Attributes:
        name: ``"logs"`` or ``"traces"`` (metric labels, logs).
        path: The OTLP/HTTP path, e.g. ``"/v1/logs"``.
        service: The gRPC service's full name.
        request: The request message class.
    """

    name: str
    path: str
    service: str
    request: type[ExportLogsServiceRequest | ExportTraceServiceRequest]


LOGS: Final = Signal(
    "logs",
    "/v1/logs",
    "opentelemetry.proto.collector.logs.v1.LogsService",
    ExportLogsServiceRequest,
)
TRACES: Final = Signal(
    "traces",
    "/v1/traces",
    "opentelemetry.proto.collector.trace.v1.TraceService",
    ExportTraceServiceRequest,
)


class BodyError(Exception):
    """
    A request body the gateway cannot take.

    Attributes:
        status: The HTTP status to answer with (400, 413 or 415).
    """

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def media_type(content_type: str | None) -> str:
    """
    The media type of a ``Content-Type`` value, lower case, parameters dropped.

    Raises:
        BodyError: 415 unless it is OTLP's protobuf or JSON type.
    """
    kind = (content_type or "").split(";", 1)[0].strip().lower()
    if kind not in {PROTOBUF, JSON}:
        raise BodyError(
            415, f"unsupported content type {kind or '(none)'!r}; use {PROTOBUF} or {JSON}"
        )
    return kind


def inflate(body: bytes, encoding: str | None, limit: int) -> bytes:
    """
    The body without its ``Content-Encoding`` (``gzip`` or none), at most *limit* bytes.

    Raises:
        BodyError: 415 for another encoding, 400 for a broken gzip stream, 413 when the
            inflated body would exceed *limit* (inflation stops there).
    """
    coding = (encoding or "identity").strip().lower()
    if coding == "identity":
        return body
    if coding != "gzip":
        raise BodyError(415, f"unsupported content encoding {coding!r}; use gzip or none")
    inflater = zlib.decompressobj(_GZIP_WBITS)
    try:
        data = inflater.decompress(body, limit + 1)
    except zlib.error as error:
        raise BodyError(400, f"invalid gzip body: {error}") from None
    if len(data) > limit or inflater.unconsumed_tail:
        raise BodyError(413, f"the body inflates to more than {limit} bytes")
    if not inflater.eof:
        raise BodyError(400, "invalid gzip body: truncated")
    return data


def decode(signal: Signal, body: bytes, kind: str) -> Message | Sliced:
    """
    Parse *body* of media type *kind* as *signal*'s export request.

    A protobuf body over :data:`~otel_segment.gateway.wire.SLICE_BYTES` is not parsed
    here but slice by slice as it is mapped (:class:`~otel_segment.gateway.wire.Sliced`).

    Raises:
        BodyError: 400 when it is not a valid request.
    """
    if kind == PROTOBUF:
        if len(body) > SLICE_BYTES:
            return Sliced(signal.request, body)
        try:
            return signal.request.FromString(body)
        except DecodeError as error:
            raise BodyError(400, f"invalid protobuf {signal.name} request: {error}") from None
    try:
        document = orjson.loads(body)
        if not isinstance(document, dict):
            raise BodyError(400, "an OTLP JSON request must be a JSON object")
        _hex_ids_to_base64(document)
        return json_format.ParseDict(document, signal.request(), ignore_unknown_fields=True)
    except (orjson.JSONDecodeError, json_format.ParseError, RecursionError) as error:
        raise BodyError(400, f"invalid OTLP JSON {signal.name} request: {error}") from None


def _hex_ids_to_base64(node: Any) -> None:
    """Rewrite OTLP JSON's hex ids in place as the base64 the protobuf JSON parser reads."""
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key, value in item.items():
                digits = _ID_HEX_DIGITS.get(key)
                if digits is not None and isinstance(value, str):
                    item[key] = _base64_id(key, value, digits)
                elif isinstance(value, (dict, list)):
                    stack.append(value)
        elif isinstance(item, list):
            stack.extend(value for value in item if isinstance(value, (dict, list)))


def _base64_id(key: str, value: str, digits: int) -> str:
    if not value:
        return ""
    if len(value) != digits:
        raise BodyError(400, f"{key} must be {digits} hex digits, got {value!r}")
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raise BodyError(400, f"{key} must be {digits} hex digits, got {value!r}") from None
    return binascii.b2a_base64(raw, newline=False).decode("ascii")
