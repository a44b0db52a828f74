"""
Segment Spec messages: build and validate one, with no I/O.

The camelCase wire keys live here and nowhere else. Each builder returns the message as
it goes on the wire (before value conversion by :mod:`otel_segment.pipeline.encoding`) and raises
``TypeError`` / ``ValueError`` naming the field that is wrong.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import random
import time
from collections.abc import Callable, Mapping
from typing import Any, Final, Literal, TypedDict

from otel_segment._version import __version__

__all__ = [
    "LIBRARY",
    "MESSAGE_TYPES",
    "Message",
    "alias",
    "describe_error",
    "format_timestamp",
    "group",
    "identify",
    "merge_context",
    "new_message_id",
    "now_timestamp",
    "page",
    "screen",
    "track",
    "unreadable",
]

LIBRARY: Final = {"name": "otel-segment", "version": __version__}
"""``context.library`` of every message."""

MESSAGE_TYPES: Final = ("track", "identify", "page", "screen", "group", "alias")
"""The six Segment Spec calls."""

MessageType = Literal["track", "identify", "page", "screen", "group", "alias"]


class Message(TypedDict, total=False):
    """A Segment Spec message as it goes on the wire."""

    type: MessageType
    messageId: str
    timestamp: str
    userId: str | None
    anonymousId: str | None
    context: dict[str, Any]
    integrations: dict[str, Any]
    event: str
    properties: dict[str, Any]
    traits: dict[str, Any]
    name: str | None
    category: str | None
    groupId: str
    previousId: str


# A private generator, seeded from os.urandom and reseeded in a forked child: ids stay
# unique whatever the application does to the global `random` seed, and making one
# costs no system call (os.urandom releases the GIL on every call, which lets a busy
# worker thread take it from the caller).
_RNG: Final = random.Random(os.urandom(32))  # noqa: S311 - uniqueness, not secrecy
os.register_at_fork(after_in_child=lambda: _RNG.seed(os.urandom(32)))

_UUID4_CLEAR: Final = ~((0xF << 76) | (0x3 << 62))
_UUID4_SET: Final = (0x4 << 76) | (0x2 << 62)


# The POSIX seconds a timestamp may hold: 0001-01-01T00:00:00 .. 9999-12-31T23:59:59.999 UTC.
_MIN_EPOCH_SECONDS: Final = -62_135_596_800
_MAX_EPOCH_SECONDS: Final = 253_402_300_799.999


def new_message_id() -> str:
    """Return a random UUID4 string."""
    h = f"{_RNG.getrandbits(128) & _UUID4_CLEAR | _UUID4_SET:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


_MILLISECONDS: Final = tuple(f".{ms:03d}+00:00" for ms in range(1000))
"""A timestamp's tail by its milliseconds: a lookup, not a format, per message."""


@functools.lru_cache(maxsize=4)
def _second_prefix(epoch_second: int) -> str:
    # isoformat, not strftime("%Y"): glibc writes year 1 as "1", not "0001"
    return dt.datetime.fromtimestamp(epoch_second, dt.UTC).isoformat(timespec="seconds")[:19]


def now_timestamp() -> str:
    """The current UTC time, ISO-8601 with milliseconds: ``2026-01-31T12:00:00.123+00:00``."""
    return _epoch_timestamp(time.time())


def _epoch_timestamp(seconds: float) -> str:
    # Round to microseconds first, as datetime.fromtimestamp() does, then truncate to ms.
    whole, micros = divmod(round(seconds * 1_000_000), 1_000_000)
    return _second_prefix(whole) + _MILLISECONDS[micros // 1000]


def format_timestamp(value: dt.datetime | float | None, field: str = "timestamp") -> str:
    """
    Write *value* as ISO-8601 with milliseconds and offset.

    Args:
        value: A datetime (naive means UTC; an offset is kept), POSIX seconds in UTC
            (as ``LogRecord.created`` holds them), or ``None`` for now.
        field: The name to give in an error.

    Raises:
        TypeError: If *value* is neither.
        ValueError: If *value* is NaN or infinite.
    """
    given: object = value  # callers outside the type checker pass anything
    if given is None:
        return now_timestamp()
    if isinstance(given, dt.datetime):
        return _datetime_timestamp(given, field)
    if isinstance(given, bool) or not isinstance(given, (int, float)):
        raise TypeError(f"{field} must be a datetime or POSIX seconds, got {type(given).__name__}")
    # One comparison pair also refuses NaN and infinities (every comparison is False).
    if not _MIN_EPOCH_SECONDS <= given <= _MAX_EPOCH_SECONDS:
        raise ValueError(
            f"{field} must be POSIX seconds in years 1..9999 "
            f"({_MIN_EPOCH_SECONDS}..{_MAX_EPOCH_SECONDS}), got {given!r}"
        )
    return _epoch_timestamp(given)


def _datetime_timestamp(value: dt.datetime, field: str) -> str:
    try:
        if value.tzinfo is None or value.utcoffset() is None:
            value = value.replace(tzinfo=dt.UTC)
        return value.isoformat(timespec="milliseconds")
    except Exception as exc:  # a tzinfo of the caller's that raises, or an offset out of range
        raise ValueError(f"{field} cannot be written as ISO-8601: {describe_error(exc)}") from exc


def describe_error(exc: BaseException) -> str:
    """``Type: message`` of *exc*, even when its ``__str__`` raises (for error messages)."""
    try:
        text = str(exc)
    except Exception:  # noqa: BLE001 - the reason is a courtesy; the type is enough
        text = ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def unreadable(exc: Exception) -> ValueError:
    """The error for a message a caller's value broke in a way no field check caught."""
    return ValueError(f"the message cannot be built: a value raised {describe_error(exc)}")


def merge_context(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Merge *override* over *base*, mapping by mapping; *override* wins at the leaves."""
    merged = dict(base)
    for key, value in override.items():
        below = merged.get(key)
        # `below is not None` first: most keys are new, and an ABC check costs 0.2 us
        if below is not None and isinstance(value, Mapping) and isinstance(below, Mapping):
            merged[key] = merge_context(below, value)
        else:
            merged[key] = value
    return merged


# The builders take the fields in segment-analytics-python's positional order (after the
# base context), so the client passes its arguments on as a tuple: no keyword dicts are
# built on the hot path.


def track(
    base_context: Mapping[str, Any],
    user_id: object = None,
    event: object = None,
    properties: object = None,
    context: object = None,
    timestamp: object = None,
    anonymous_id: object = None,
    integrations: object = None,
    message_id: object = None,
) -> Message:
    """Build a ``track`` message: *event* done by a user or anonymous visitor."""
    msg = _header(
        "track", base_context, user_id, anonymous_id, context, timestamp, integrations, message_id
    )
    msg["event"] = _required_text("event", event)
    msg["properties"] = _mapping("properties", properties)
    return msg


def identify(
    base_context: Mapping[str, Any],
    user_id: object = None,
    traits: object = None,
    context: object = None,
    timestamp: object = None,
    anonymous_id: object = None,
    integrations: object = None,
    message_id: object = None,
) -> Message:
    """Build an ``identify`` message: who the user is (*traits*)."""
    msg = _header(
        "identify",
        base_context,
        user_id,
        anonymous_id,
        context,
        timestamp,
        integrations,
        message_id,
    )
    msg["traits"] = _mapping("traits", traits)
    return msg


def _view_builder(kind: MessageType, doc: str) -> Callable[..., Message]:
    """Make the builder of ``page`` or ``screen``: the same fields, another type."""

    def build(
        base_context: Mapping[str, Any],
        user_id: object = None,
        category: object = None,
        name: object = None,
        properties: object = None,
        context: object = None,
        timestamp: object = None,
        anonymous_id: object = None,
        integrations: object = None,
        message_id: object = None,
    ) -> Message:
        msg = _header(
            kind, base_context, user_id, anonymous_id, context, timestamp, integrations, message_id
        )
        msg["name"] = _optional_text("name", name)
        msg["category"] = _optional_text("category", category)
        msg["properties"] = _mapping("properties", properties)
        return msg

    build.__name__ = build.__qualname__ = kind
    build.__doc__ = doc
    return build


page: Final = _view_builder("page", "Build a ``page`` message: a web page viewed.")
screen: Final = _view_builder("screen", "Build a ``screen`` message: an app screen viewed.")


def group(
    base_context: Mapping[str, Any],
    user_id: object = None,
    group_id: object = None,
    traits: object = None,
    context: object = None,
    timestamp: object = None,
    anonymous_id: object = None,
    integrations: object = None,
    message_id: object = None,
) -> Message:
    """Build a ``group`` message: the user belongs to *group_id* (with its *traits*)."""
    msg = _header(
        "group", base_context, user_id, anonymous_id, context, timestamp, integrations, message_id
    )
    msg["groupId"] = _required_id("group_id", group_id)
    msg["traits"] = _mapping("traits", traits)
    return msg


def alias(
    base_context: Mapping[str, Any],
    previous_id: object = None,
    user_id: object = None,
    context: object = None,
    timestamp: object = None,
    integrations: object = None,
    message_id: object = None,
) -> Message:
    """Build an ``alias`` message: *previous_id* and *user_id* are the same person."""
    previous = _required_id("previous_id", previous_id)
    user = _required_id("user_id", user_id)
    msg = _header(
        "alias", base_context, user, None, context, timestamp, integrations, message_id,
        require_actor=False,
    )  # fmt: skip
    del msg["anonymousId"]
    msg["previousId"] = previous
    return msg


def _header(
    kind: MessageType,
    base_context: Mapping[str, Any],
    user_id: object,
    anonymous_id: object,
    context: object,
    timestamp: object,
    integrations: object,
    message_id: object,
    *,
    require_actor: bool = True,
) -> Message:
    user = _optional_id("user_id", user_id)
    anonymous = _optional_id("anonymous_id", anonymous_id)
    if require_actor and user is None and anonymous is None:
        raise ValueError(f"{kind} needs a user_id or an anonymous_id; both are missing")
    if context is None:
        merged = dict(base_context)
    else:
        merged = _merged_context(base_context, _mapping("context", context))
    merged["library"] = LIBRARY
    return {
        "type": kind,
        "messageId": new_message_id() if message_id is None else _message_id(message_id),
        "timestamp": format_timestamp(timestamp),  # type: ignore[arg-type]
        "userId": user,
        "anonymousId": anonymous,
        "context": merged,
        "integrations": _mapping("integrations", integrations),
    }


def _merged_context(base: Mapping[str, Any], context: Mapping[str, Any]) -> dict[str, Any]:
    try:
        return merge_context(base, context)
    except RecursionError:
        raise ValueError("context is nested too deeply") from None
    except Exception as exc:  # a nested mapping of the caller's whose reads raise
        raise ValueError(f"context cannot be read: {describe_error(exc)}") from exc


def _optional_id(field: str, value: object) -> str | None:
    # isinstance before any comparison: a caller's object may define a raising __eq__
    if isinstance(value, str):
        return value or None
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            return str(value)
        except Exception as exc:  # a subclass's __str__, or an int past str()'s digit limit
            raise ValueError(f"{field} cannot be written as text: {describe_error(exc)}") from exc
    raise TypeError(f"{field} must be a string or a number, got {type(value).__name__}")


def _required_id(field: str, value: object) -> str:
    ident = _optional_id(field, value)
    if ident is None:
        raise ValueError(f"{field} is required")
    return ident


def _message_id(value: object) -> str:
    ident = _optional_id("message_id", value)
    return new_message_id() if ident is None else ident


def _optional_text(field: str, value: object) -> str | None:
    if isinstance(value, str):
        return value or None
    if value is None:
        return None
    raise TypeError(f"{field} must be a string, got {type(value).__name__}")


def _required_text(field: str, value: object) -> str:
    text = _optional_text(field, value)
    if text is None:
        raise ValueError(f"{field} is required and must be a non-empty string")
    return text


def _mapping(field: str, value: object) -> dict[str, Any]:
    if value is None:
        return {}
    if isinstance(value, dict):
        return value
    if isinstance(value, Mapping):
        try:
            return dict(value)
        except Exception as exc:  # a mapping of the caller's whose iteration raises
            raise ValueError(f"{field} cannot be read as a mapping: {describe_error(exc)}") from exc
    raise TypeError(f"{field} must be a mapping (dict), got {type(value).__name__}")
