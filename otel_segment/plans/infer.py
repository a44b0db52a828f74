"""
A draft tracking plan from observed messages: types, required fields, small enums.

:class:`PlanInference` sees messages one at a time and keeps only counts (bounded: at
most :data:`MAX_EVENTS` events, :data:`MAX_FIELDS` fields each, and ``enum_max + 1``
distinct values per field), so a log of any length fits in memory. The draft is the plain
format (``{"events": {...}, "identify": ..., "group": ...}``) that
:meth:`TrackingPlan.load <otel_segment.TrackingPlan.load>` reads.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["MAX_EVENTS", "MAX_FIELDS", "PlanInference"]

MAX_EVENTS: Final = 10_000
"""Distinct events a draft describes at most (more are counted in ``skipped_events``)."""
MAX_FIELDS: Final = 1_000
"""Fields per event a draft describes at most."""
_ENUM_MIN_SEEN_PER_VALUE: Final = 3
"""A field becomes an enum only when each of its values was seen this often on average:
a few samples of an id must not look like a closed set."""

_JSON_TYPES: Final = {
    bool: "boolean",
    int: "integer",
    float: "number",
    str: "string",
    type(None): "null",
    list: "array",
    dict: "object",
}


class _Field:
    __slots__ = ("seen", "types", "values")

    def __init__(self) -> None:
        self.seen = 0
        self.types: set[str] = set()
        self.values: dict[str, int] | None = {}

    def observe(self, value: object, enum_max: int) -> None:
        self.seen += 1
        self.types.add(_JSON_TYPES.get(type(value), "string"))
        if self.values is None:
            return
        if not isinstance(value, str) or (
            value not in self.values and len(self.values) >= enum_max
        ):
            self.values = None  # not a small closed set of strings: stop counting
        else:
            self.values[value] = self.values.get(value, 0) + 1

    def schema(self) -> dict[str, Any]:
        types = self.types
        if {"integer", "number"} <= types:
            types = types - {"integer"}
        names = sorted(types)
        schema: dict[str, Any] = {"type": names[0] if len(names) == 1 else names}
        values = self.values
        if values and types == {"string"} and self.seen >= _ENUM_MIN_SEEN_PER_VALUE * len(values):
            schema["enum"] = sorted(values)
        return schema


class _Payload:
    __slots__ = ("fields", "seen")

    def __init__(self) -> None:
        self.seen = 0
        self.fields: dict[str, _Field] = {}

    def observe(self, payload: Mapping[str, Any], enum_max: int) -> None:
        self.seen += 1
        fields = self.fields
        for name, value in payload.items():
            field = fields.get(name)
            if field is None:
                if len(fields) >= MAX_FIELDS:
                    continue
                field = fields[name] = _Field()
            field.observe(value, enum_max)

    def schema(self) -> dict[str, Any]:
        names = sorted(self.fields)
        schema: dict[str, Any] = {
            "type": "object",
            "properties": {name: self.fields[name].schema() for name in names},
        }
        required = [name for name in names if self.fields[name].seen == self.seen]
        if required:
            schema["required"] = required
        return schema


class PlanInference:
    """
    Build a draft tracking plan from the messages it is shown.

    Args:
        enum_max: A string field with at most this many distinct values (each seen
            at least three times on average) is drafted as an ``enum``.

    Attributes:
        seen: Messages observed (track, identify and group).
        skipped_events: Track messages of events beyond :data:`MAX_EVENTS`.

    .. versionadded:: 0.2.0
    """

    def __init__(self, *, enum_max: int = 10) -> None:
        self.enum_max = enum_max
        self.seen = 0
        self.skipped_events = 0
        self._events: dict[str, _Payload] = {}
        self._traits: dict[str, _Payload] = {}

    def observe(self, message: Mapping[str, Any]) -> None:
        """Learn from one wire message (other types than track/identify/group are ignored)."""
        kind = message.get("type")
        if kind == "track":
            payload, table, key = message.get("properties"), self._events, message.get("event")
        elif kind in {"identify", "group"}:
            payload, table, key = message.get("traits"), self._traits, kind
        else:
            return
        if not isinstance(key, str) or not isinstance(payload, dict):
            return
        entry = table.get(key)
        if entry is None:
            if len(self._events) >= MAX_EVENTS:
                self.skipped_events += 1
                return
            entry = table[key] = _Payload()
        self.seen += 1
        entry.observe(payload, self.enum_max)

    def plan(self) -> dict[str, Any]:
        """The draft plan, in the plain format, events sorted by name."""
        draft: dict[str, Any] = {
            "events": {name: self._events[name].schema() for name in sorted(self._events)}
        }
        for kind in sorted(self._traits):
            draft[kind] = self._traits[kind].schema()
        return draft
