"""
The three tracking-plan formats, read into one list of rules.

- Segment Protocols, as its Public API exports a plan: ``rules[]`` (also under ``data``)
  whose entries have ``key`` (the event), ``type`` (``TRACK``, ``IDENTIFY``, ``GROUP``,
  ``PAGE``, ``SCREEN`` or ``COMMON``), ``version`` and a draft-07 ``jsonSchema`` of the
  whole message (``properties.properties`` / ``properties.traits`` describe the payload).
- A plain mapping: ``{"events": {"Order Completed": <JSON Schema of the properties>}}``,
  and optionally ``"identify"`` / ``"group"``: a JSON Schema of the traits.
- RudderStack's data catalog YAML (read by :mod:`.rudderstack`).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, Final

from otel_segment.errors import TrackingPlanError
from otel_segment.plans.schema import Schema, check_schema, compile_schema

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["Rule", "payload_schema", "plain_rules", "segment_rules"]

_SEGMENT_TYPES: Final = {
    "TRACK": "track",
    "IDENTIFY": "identify",
    "GROUP": "group",
    "PAGE": "page",
    "SCREEN": "screen",
    "COMMON": "common",
}
_PAYLOAD: Final = {"track": "properties", "page": "properties", "screen": "properties"}
_HOISTED: Final = ("$schema", "definitions", "$defs")


@dataclasses.dataclass(frozen=True, slots=True)
class Rule:
    """
    What messages of one type (and event or name) must look like.

    Attributes:
        kind: ``"track"``, ``"identify"``, ``"group"``, ``"page"``, ``"screen"``, or
            ``"common"`` (every message).
        key: The event (track) or name (page/screen); ``""`` for the whole type.
        version: The rule's version (Segment Protocols); 1 elsewhere.
        schema: The compiled JSON Schema of the whole message.
    """

    kind: str
    key: str
    version: int
    schema: Schema


def payload_schema(kind: str, payload: Mapping[str, Any] | bool) -> dict[str, Any]:
    """
    A whole-message schema from the schema of its properties (or traits).

    The payload's ``$schema`` and definitions move to the top, so that its local
    references (``#/definitions/...``) still resolve.
    """
    field = _PAYLOAD.get(kind, "traits")
    whole: dict[str, Any] = {"type": "object", "properties": {field: payload}}
    if isinstance(payload, dict):
        whole.update({k: payload[k] for k in _HOISTED if k in payload})
    return whole


def segment_rules(document: Mapping[str, Any], source: str) -> list[Rule]:
    """
    Read a Segment Protocols export.

    Raises:
        TrackingPlanError: Naming the rule that is malformed.
    """
    rules = document.get("rules")
    prefix = "rules"
    if rules is None and isinstance(document.get("data"), dict):
        rules, prefix = document["data"].get("rules"), "data.rules"
    if not isinstance(rules, list):
        raise TrackingPlanError(source, prefix, "expected a list of rules")
    return [_segment_rule(entry, source, f"{prefix}[{index}]") for index, entry in enumerate(rules)]


def _segment_rule(entry: object, source: str, where: str) -> Rule:
    if not isinstance(entry, dict):
        raise TrackingPlanError(source, where, "a rule must be an object")
    kind = _SEGMENT_TYPES.get(str(entry.get("type", "")).upper())
    if kind is None:
        raise TrackingPlanError(
            source, f"{where}.type", f"type must be one of {', '.join(_SEGMENT_TYPES)}"
        )
    key = entry.get("key") or ""
    if not isinstance(key, str) or (kind == "track" and not key):
        raise TrackingPlanError(source, f"{where}.key", "a TRACK rule needs the event as key")
    version = entry.get("version", 1)
    if isinstance(version, bool) or not isinstance(version, int):
        raise TrackingPlanError(source, f"{where}.version", "version must be an integer")
    if "jsonSchema" not in entry:
        raise TrackingPlanError(source, where, "a rule needs a jsonSchema")
    schema = compile_schema(entry["jsonSchema"], source, f"{where}.jsonSchema")
    return Rule(kind, key if kind in _PAYLOAD else "", version, schema)


def plain_rules(document: Mapping[str, Any], source: str) -> list[Rule]:
    """
    Read the plain format: ``{"events": {name: schema}, "identify": ..., "group": ...}``.

    Raises:
        TrackingPlanError: Naming the entry that is malformed.
    """
    unknown = sorted(set(document) - {"events", "identify", "group", "$schema", "description"})
    if unknown:
        raise TrackingPlanError(source, unknown[0], "unknown key (expected events/identify/group)")
    events = document.get("events", {})
    if not isinstance(events, dict):
        raise TrackingPlanError(source, "events", "expected a mapping of event to JSON Schema")
    rules = [
        _plain_rule("track", str(name), payload, source, f"events.{name}")
        for name, payload in events.items()
    ]
    rules.extend(
        _plain_rule(kind, "", document[kind], source, kind)
        for kind in ("identify", "group")
        if kind in document
    )
    return rules


def _plain_rule(kind: str, key: str, payload: object, source: str, where: str) -> Rule:
    if not isinstance(payload, (dict, bool)):
        raise TrackingPlanError(source, where, "expected a JSON Schema (an object)")
    check_schema(payload, source, where)  # so that errors name the place as written
    return Rule(kind, key, 1, compile_schema(payload_schema(kind, payload), source, where))
