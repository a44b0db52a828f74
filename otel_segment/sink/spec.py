"""
What the Segment Spec forbids in a message, checked by the sink so it catches bad producers.

The rules of the Segment Tracking API's documentation: a known ``type``; a ``userId`` or
an ``anonymousId`` (an alias needs ``userId`` and ``previousId``); a track's ``event``; a
group's ``groupId``; and at most 32 KiB of JSON per message.
"""

from __future__ import annotations

import json
from typing import Any, Final

import orjson

__all__ = ["MESSAGE_TYPES", "spec_problem"]

MESSAGE_TYPES: Final = ("track", "identify", "page", "screen", "group", "alias")
"""The six Segment calls."""

_REQUIRED: Final = {"track": ("event",), "group": ("groupId",), "alias": ("previousId", "userId")}


def spec_problem(message: dict[str, Any], max_message_bytes: int) -> str:
    """
    Why the Spec forbids *message*, or ``""`` if it does not.

    Args:
        message: One message of a batch (a JSON object).
        max_message_bytes: The largest message allowed, as compact JSON.
    """
    kind = message.get("type")
    if kind not in MESSAGE_TYPES:
        return f"type must be one of {', '.join(MESSAGE_TYPES)}, got {kind!r}"
    article = "an" if kind[0] in "aeiou" else "a"
    for field in _REQUIRED.get(kind, ()):
        if not _given(message.get(field)):
            return f"{article} {kind} needs {field}"
    if kind != "alias" and not (
        _given(message.get("userId")) or _given(message.get("anonymousId"))
    ):
        return f"{article} {kind} needs userId or anonymousId"
    size = _size(message)
    if size > max_message_bytes:
        return f"a message of {size} bytes exceeds {max_message_bytes}"
    return ""


def _given(value: object) -> bool:
    """An id or name is given if it is a non-empty string or a number."""
    if isinstance(value, str):
        return bool(value.strip())
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _size(message: dict[str, Any]) -> int:
    """The size of *message* as compact JSON."""
    try:
        return len(orjson.dumps(message))
    except TypeError:  # nested deeper than orjson encodes (254 levels): the slow way
        return len(json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode())
