"""
A large protobuf export request, parsed a slice of records at a time.

Parsed, an OTLP record takes several times its wire size (a 20 MiB body of minimal log
records: about 200 MB), so a large body is not parsed whole. :class:`Sliced` walks the
outer levels of the protobuf wire format itself (request → resource logs or spans →
scope logs or spans, the same field numbers for both signals), cuts each scope's records
into runs of about :data:`SLICE_BYTES`, and parses one small request per run: the
run's records under their resource. The mapping then sees the same records with the
same resource, and holds the parsed objects of one slice at a time.

What is dropped on the way cannot change a message: the instrumentation scope, schema
URLs and unknown fields above the record level. A broken body is found while its
slices are parsed and raises protobuf's ``DecodeError`` then (the intake answers 400),
before anything of the request is queued.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from google.protobuf.message import DecodeError

if TYPE_CHECKING:
    from collections.abc import Iterator

    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

__all__ = ["SLICE_BYTES", "Sliced"]

SLICE_BYTES: Final = 512 * 1024
"""Wire bytes of records parsed at once (and the body size from which a body is sliced)."""

_LENGTH_DELIMITED: Final = 2
_RESOURCE: Final = 1  # in ResourceLogs / ResourceSpans, and the request's field of them
_SCOPES: Final = 2  # ScopeLogs / ScopeSpans in ResourceLogs / ResourceSpans
_RECORDS: Final = 2  # LogRecord / Span in ScopeLogs / ScopeSpans
_RESOURCE_TAG: Final = b"\x0a"  # field 1, length-delimited
_SCOPE_TAG: Final = b"\x12"  # field 2, length-delimited


class Sliced:
    """
    An export request kept as its bytes, parsed as a series of smaller requests.

    Args:
        request: The export request class (logs or traces).
        body: The serialized request.
        slice_bytes: Wire bytes of records per slice.
    """

    __slots__ = ("_body", "_request", "_slice_bytes")

    def __init__(
        self,
        request: type[ExportLogsServiceRequest | ExportTraceServiceRequest],
        body: bytes,
        slice_bytes: int = SLICE_BYTES,
    ) -> None:
        self._request = request
        self._body = body
        self._slice_bytes = slice_bytes

    @property
    def request_type(self) -> type[ExportLogsServiceRequest | ExportTraceServiceRequest]:
        """The export request class."""
        return self._request

    def __iter__(self) -> Iterator[ExportLogsServiceRequest | ExportTraceServiceRequest]:
        """
        The slices, in order, each parsed.

        Raises:
            DecodeError: The body is not a valid request.
        """
        body = memoryview(self._body)
        for number, start, end in _fields(body, 0, len(body)):
            if number == _RESOURCE:
                yield from self._resource_slices(body, start, end)

    def _resource_slices(
        self, body: memoryview, start: int, end: int
    ) -> Iterator[ExportLogsServiceRequest | ExportTraceServiceRequest]:
        resource: list[bytes] = []
        scopes: list[tuple[int, int]] = []
        for number, value_start, value_end in _fields(body, start, end):
            if number == _RESOURCE:  # repeated: protobuf merges them, as concatenation does
                resource.append(_entry(body, _RESOURCE_TAG, value_start, value_end))
            elif number == _SCOPES:
                scopes.append((value_start, value_end))
        head = b"".join(resource)
        for scope_start, scope_end in scopes:
            for records in self._runs(body, scope_start, scope_end):
                yield self._parse(head, records)

    def _runs(self, body: memoryview, start: int, end: int) -> Iterator[bytes]:
        """The scope's record entries (tag, length, bytes), about slice_bytes at a time."""
        parts: list[memoryview] = []
        run_start = run_end = size = 0
        for number, value_start, value_end in _fields(body, start, end, tags=True):
            if number != _RECORDS:
                continue
            entry_start = value_start  # with tags=True, the entry's own start
            if entry_start != run_end:  # another field came between: close the run
                if run_end > run_start:
                    parts.append(body[run_start:run_end])
                run_start = entry_start
            run_end = value_end
            size += value_end - entry_start
            if size >= self._slice_bytes:
                parts.append(body[run_start:run_end])
                yield b"".join(parts)
                parts, run_start, size = [], run_end, 0
        if run_end > run_start:
            parts.append(body[run_start:run_end])
        if parts:
            yield b"".join(parts)

    def _parse(
        self, head: bytes, records: bytes
    ) -> ExportLogsServiceRequest | ExportTraceServiceRequest:
        # records: the entries of a ScopeLogs / ScopeSpans, i.e. its serialized form
        resource = head + _SCOPE_TAG + _varint_bytes(len(records)) + records
        data = _RESOURCE_TAG + _varint_bytes(len(resource)) + resource
        return self._request.FromString(data)


def _entry(body: memoryview, tag: bytes, start: int, end: int) -> bytes:
    """A length-delimited field's whole entry, its value at body[start:end]."""
    return tag + _varint_bytes(end - start) + body[start:end]


def _fields(
    body: memoryview, start: int, end: int, *, tags: bool = False
) -> Iterator[tuple[int, int, int]]:
    """
    ``(field number, start, end)`` of each length-delimited field in body[start:end].

    Other wire types are skipped. With *tags*, start is the entry's (its tag's) start.
    """
    position = start
    while position < end:
        entry = position
        key, position = _varint(body, position, end)
        kind = key & 7
        if kind == _LENGTH_DELIMITED:
            length, position = _varint(body, position, end)
            value_start, position = position, position + length
        else:
            value_start, position = position, _skip(body, kind, position, end)
        if position > end:
            raise _invalid("truncated field")
        if kind == _LENGTH_DELIMITED:
            yield key >> 3, entry if tags else value_start, position


def _skip(body: memoryview, kind: int, position: int, end: int) -> int:
    if kind == 0:
        return _varint(body, position, end)[1]
    if kind == 1:
        return position + 8
    if kind == 5:  # noqa: PLR2004 - the 32-bit wire type
        return position + 4
    raise _invalid(f"wire type {kind} where OTLP has none")


def _varint(body: memoryview, position: int, end: int) -> tuple[int, int]:
    result = shift = 0
    while position < end and shift < 64:  # noqa: PLR2004 - ten bytes at most
        byte = body[position]
        position += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:  # noqa: PLR2004 - no continuation bit
            return result, position
        shift += 7
    raise _invalid("truncated or overlong varint")


def _varint_bytes(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:  # noqa: PLR2004 - continuation
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _invalid(reason: str) -> DecodeError:
    return DecodeError(f"invalid protobuf request: {reason}")
