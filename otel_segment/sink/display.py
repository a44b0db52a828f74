"""One readable line per message, for ``otel-segment sink`` and the demo."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

__all__ = ["format_message"]

_LINE_CHARS: Final = 160
_VALUE_CHARS: Final = 40
_ENVELOPE: Final = frozenset({"type", "userId", "anonymousId", "messageId", "timestamp"})


def format_message(msg: Mapping[str, Any]) -> str:
    """
    Render one message as a single readable line.

    Args:
        msg: A Segment Spec message, e.g. one of :attr:`Sink.messages`.

    Returns:
        The type, the user and anonymous ids and the type's key fields, such as
        ``track     user=u1 anon=-  "Order Completed" {total=42.5, currency=EUR}``;
        long values are cut so the line stays within 160 characters.
    """
    kind = str(msg.get("type", "?"))
    match kind:
        case "track":
            fields = [_quoted(msg.get("event")), _mapping(msg.get("properties"))]
        case "identify":
            fields = [_mapping(msg.get("traits"))]
        case "page" | "screen":
            fields = [_short(msg.get("category")), _quoted(msg.get("name"))]
            fields.append(_mapping(msg.get("properties")))
        case "group":
            fields = [f"group={_short(msg.get('groupId'), '-')}", _mapping(msg.get("traits"))]
        case "alias":
            fields = [f"{_short(msg.get('previousId'), '-')} -> {_short(msg.get('userId'), '-')}"]
        case _:
            fields = [_mapping({k: v for k, v in msg.items() if k not in _ENVELOPE})]
    user, anonymous = _short(msg.get("userId"), "-"), _short(msg.get("anonymousId"), "-")
    line = f"{kind:<9} user={user} anon={anonymous}  {' '.join(f for f in fields if f)}".rstrip()
    return line if len(line) <= _LINE_CHARS else f"{line[: _LINE_CHARS - 3]}..."


def _short(value: object, missing: str = "") -> str:
    if value is None:
        return missing
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    text = text.replace("\r", "\\r").replace("\n", "\\n")
    return text if len(text) <= _VALUE_CHARS else f"{text[: _VALUE_CHARS - 3]}..."


def _quoted(value: object) -> str:
    return "" if value is None else f'"{_short(value)}"'


def _mapping(value: object) -> str:
    if not isinstance(value, Mapping) or not value:
        return ""
    return "{" + ", ".join(f"{key}={_short(item, 'null')}" for key, item in value.items()) + "}"
