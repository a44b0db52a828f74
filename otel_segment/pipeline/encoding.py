"""
JSON bytes for the wire.

Every message is encoded once, at the call, into compact strict JSON. Values JSON cannot
hold are converted, never dropped: Decimal -> string (no precision lost), datetime/date ->
ISO-8601 (a naive datetime is UTC), UUID -> string, set/frozenset/tuple -> list, bytes ->
UTF-8 text (else base64), Enum -> its value, dataclass -> dict, NaN/Infinity -> null, and
anything else -> ``str()``. A circular structure raises :class:`EncodingError`.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import enum
import json
import math
import uuid
import zoneinfo
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Final

import orjson

from otel_segment.errors import EncodingError
from otel_segment.pipeline.messages import describe_error

__all__ = ["BatchEnvelope", "dumps"]

# Datetimes pass through to _default: orjson 3.13 crashes the interpreter (SIGSEGV) on a
# tzinfo whose utcoffset() raises, and writes a wrong offset for one returning a value
# datetime itself refuses. _default hands those with no zone or a stdlib zone back to
# orjson (+0.6 us per datetime value against +2 us for isoformat(); timeit, this machine)
# and writes the caller's own tzinfo classes in Python. Messages without datetimes pay
# nothing.
_OPTIONS: Final = (
    orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_PASSTHROUGH_DATETIME
)
_ZONES: Final[tuple[type, ...]] = (type(None), dt.timezone, zoneinfo.ZoneInfo)


_SENT_AT_SAMPLE: Final = "2026-01-01T00:00:00.000+00:00"


def dumps(value: Any) -> bytes:
    """
    Encode *value* as compact, strict JSON bytes.

    Raises:
        EncodingError: If *value* contains a circular reference, is nested too deeply, or
            holds a value that cannot be converted (its ``__str__`` raises); the message
            names where, e.g. ``properties.cart[2]``.
    """
    try:
        encoded = orjson.dumps(value, default=_default, option=_OPTIONS)
    except orjson.JSONEncodeError:
        # Rare: integers beyond 64 bits, non-string keys orjson refuses, lone surrogates
        # (written "?": UTF-8 cannot hold them), very deep nesting, a cycle, or a value
        # whose conversion raised. Convert the whole tree by hand, then let the stdlib
        # encode it (it writes integers of any size digit for digit).
        return _dumps_converted(value)
    # orjson returns its output in a buffer of at least 4 KiB; a queued message would keep
    # all of it. A right-sized copy costs ~60 ns and cuts a full queue's memory by ~10x.
    return b"".join((encoded, b""))


def _dumps_converted(value: Any) -> bytes:
    try:
        converted = _convert(value, set())
        text = json.dumps(converted, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except RecursionError:
        raise EncodingError("a structure is nested too deeply for JSON") from None
    except _Unconvertible as exc:
        raise EncodingError(f"{exc.where()}: {exc.reason}") from exc.__cause__
    except ValueError as exc:  # the stdlib's own limit: an int of more than 4300 digits
        raise EncodingError(f"a value cannot be written as JSON: {describe_error(exc)}") from exc
    return text.encode(errors="replace")


class _Unconvertible(Exception):  # noqa: N818 - internal, never leaves this module
    """A value the fallback cannot convert; :attr:`path` is filled in on the way out."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.path: list[str | int] = []

    def where(self) -> str:
        """The path of the value, ``properties.cart[2]``-style."""
        text = ""
        for part in reversed(self.path):
            text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else part
        return text or "the value"


def _default(value: Any) -> Any:  # noqa: PLR0911 - one branch per kind
    """Convert one value orjson does not handle natively."""
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return _temporal(value)
    if isinstance(value, Decimal):
        return _decimal(value)
    if isinstance(value, (set, frozenset)):
        return list(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return _text(bytes(value))
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, enum.Enum):
        return value.value
    try:
        return str(value)
    except Exception as exc:
        reason = f"a {type(value).__name__} cannot be converted: str() raised {describe_error(exc)}"
        raise _Unconvertible(reason) from exc


def _temporal(value: dt.datetime | dt.date | dt.time) -> Any:
    """A datetime or date as orjson writes it when that is safe, else in Python."""
    kind = type(value)
    if kind is dt.date or (
        kind is dt.datetime and isinstance(value, dt.datetime) and type(value.tzinfo) in _ZONES
    ):
        # ~0.5 us: orjson writes it (naive as UTC), the Fragment puts the bytes in place
        return orjson.Fragment(orjson.dumps(value, option=orjson.OPT_NAIVE_UTC))
    return _iso(value)


def _iso(value: dt.datetime | dt.date | dt.time) -> str:
    """ISO-8601 text; a naive datetime is UTC (a naive time stays as it is)."""
    try:
        if isinstance(value, dt.datetime) and value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC).isoformat()
        return value.isoformat()
    except Exception as exc:  # a caller's tzinfo that raises or gives an impossible offset
        reason = f"a {type(value).__name__} cannot be written: {describe_error(exc)}"
        raise _Unconvertible(reason) from exc


def _decimal(value: Decimal) -> str | None:
    return str(value) if value.is_finite() else None


def _text(value: bytes) -> str:
    try:
        return value.decode()
    except UnicodeDecodeError:
        return base64.b64encode(value).decode("ascii")


def _convert(value: Any, seen: set[int]) -> Any:  # noqa: PLR0911 - one branch per kind
    """Return *value* as plain JSON types, detecting cycles."""
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return _iso(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, enum.Enum):
        return _convert(value.value, seen)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = dataclasses.fields(value)  # not asdict(): it recurses past our cycle check
        return _nested(value, seen, lambda: {f.name: getattr(value, f.name) for f in fields})
    if isinstance(value, Mapping):
        return _nested(value, seen, lambda: {_key(k): v for k, v in value.items()})
    if isinstance(value, (list, tuple, set, frozenset)):
        return _nested(value, seen, lambda: list(value))
    return _default(value)


def _nested(value: Any, seen: set[int], unpack: Any) -> Any:
    marker = id(value)
    if marker in seen:
        raise _Unconvertible(f"circular reference in a {type(value).__name__}: JSON cannot hold it")
    seen.add(marker)
    try:
        try:
            inner = unpack()
        except (_Unconvertible, RecursionError):
            raise
        except Exception as exc:  # a caller's mapping, sequence or field that raises
            reason = f"a {type(value).__name__} cannot be read: {describe_error(exc)}"
            raise _Unconvertible(reason) from exc
        pairs = inner.items() if isinstance(inner, dict) else enumerate(inner)
        converted = {}
        for key, item in pairs:
            try:
                converted[key] = _convert(item, seen)
            except _Unconvertible as exc:
                exc.path.append(key)
                raise
        return converted if isinstance(inner, dict) else list(converted.values())
    finally:
        seen.discard(marker)


def _key(key: Any) -> str:
    if isinstance(key, str):
        return key
    converted = _convert(key, set())
    return converted if isinstance(converted, str) else json.dumps(converted)


class BatchEnvelope:
    """
    The ``/v1/batch`` body around already-encoded messages, with exact sizes.

    Args:
        write_key: Carried in the body as ``writeKey``.
    """

    __slots__ = ("_head", "_tail", "overhead")

    def __init__(self, write_key: str) -> None:
        self._head = b'{"batch":['
        key = orjson.dumps(write_key).replace(b"%", b"%%")  # a literal "%" for body()'s "%"
        self._tail = b'],"sentAt":"%s","writeKey":' + key + b"}"
        #: Bytes of a body holding no message (one comma per message comes on top).
        self.overhead = len(self.body([], _SENT_AT_SAMPLE))

    def __repr__(self) -> str:
        """Never show the write key."""
        return f"BatchEnvelope(overhead={self.overhead})"

    def body(self, messages: list[bytes], sent_at: str) -> bytes:
        """Join encoded *messages* into one body stamped *sent_at*."""
        tail = self._tail % sent_at.encode()
        if not messages:
            return self._head + tail
        # One join, one copy of the body: each fresh 500 KB buffer costs its page faults
        # (about 1 ms on a VM), with the GIL held.
        parts = messages.copy()
        parts[0] = self._head + parts[0]
        parts[-1] += tail
        return b",".join(parts)
