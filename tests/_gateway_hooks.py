"""A ``before_send`` hook the gateway tests load with ``--before-send _gateway_hooks:tag``."""

from __future__ import annotations

from typing import Any


def tag(message: dict[str, Any]) -> dict[str, Any] | None:
    """Drop tracks whose ``seq`` is odd; mark the others ``hooked``."""
    properties = message.get("properties", {})
    if properties.get("seq", 0) % 2:
        return None
    properties["hooked"] = True
    return message
