"""
RudderStack tracking plans: the data catalog YAML that ``rudder-cli`` manages.

A catalog is several YAML documents (in one file or many): ``kind: events``
(``spec.events[]``: ``id``, ``name``, ``event_type``), ``kind: properties``
(``spec.properties[]``: ``id``, ``name``, ``type`` or ``types``, ``config``),
``kind: custom-types`` (``spec.types[]``) and ``kind: tracking-plan`` (``kind: tp`` in
the first versions), whose ``spec.rules[]`` name an event and its properties by reference:
``"#event:id"`` / ``"#property:id"``, or ``$ref: "#/events/<group>/<id>"``.
Each event rule becomes the draft-07 schema of its messages.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from otel_segment.errors import TrackingPlanError
from otel_segment.plans.formats import Rule, payload_schema
from otel_segment.plans.schema import compile_schema

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

__all__ = ["PLAN_KINDS", "rudderstack_rules"]

PLAN_KINDS: Final = frozenset({"tracking-plan", "tp"})

_TYPES: Final = frozenset({"string", "number", "integer", "boolean", "array", "object", "null"})
_CONFIG: Final = {
    "enum": "enum",
    "pattern": "pattern",
    "format": "format",
    "minimum": "minimum",
    "maximum": "maximum",
    "min_length": "minLength",
    "minLength": "minLength",
    "max_length": "maxLength",
    "maxLength": "maxLength",
    "exclusive_minimum": "exclusiveMinimum",
    "exclusiveMinimum": "exclusiveMinimum",
    "exclusive_maximum": "exclusiveMaximum",
    "exclusiveMaximum": "exclusiveMaximum",
    "multiple_of": "multipleOf",
    "multipleOf": "multipleOf",
    "min_items": "minItems",
    "minItems": "minItems",
    "max_items": "maxItems",
    "maxItems": "maxItems",
    "unique_items": "uniqueItems",
    "uniqueItems": "uniqueItems",
}
_ITEM_TYPES: Final = ("item_types", "itemTypes", "item_type")

Located = tuple[dict[str, Any], str]
"""A catalog entry and where it was found, for errors."""


def rudderstack_rules(
    documents: Sequence[tuple[Mapping[str, Any], str]], source: str
) -> list[Rule]:
    """
    Read the event rules of every ``tracking-plan`` document among *documents*.

    Args:
        documents: The YAML documents and the file each came from.
        source: What was loaded, for errors without a better place.

    Raises:
        TrackingPlanError: A reference points nowhere, or an entry is malformed.
    """
    catalog: dict[str, dict[str, Located]] = {"events": {}, "properties": {}, "custom-types": {}}
    plans: list[tuple[Mapping[str, Any], str]] = []
    for document, file in documents:
        kind = document.get("kind")
        if kind in PLAN_KINDS:
            plans.append((document, file))
        elif kind in catalog:
            _index(document, file, catalog[str(kind)])
    if not plans:
        raise TrackingPlanError(source, "kind", "no document of kind 'tracking-plan'")
    return [
        rule
        for document, file in plans
        for index, entry in enumerate(_spec(document, file).get("rules") or [])
        for rule in _event_rule(entry, catalog, file, f"spec.rules[{index}]")
    ]


def _spec(document: Mapping[str, Any], file: str) -> Mapping[str, Any]:
    spec = document.get("spec")
    if not isinstance(spec, dict):
        raise TrackingPlanError(file, "spec", "expected a mapping")
    return spec


def _index(document: Mapping[str, Any], file: str, into: dict[str, Located]) -> None:
    spec = _spec(document, file)
    group = str((document.get("metadata") or {}).get("name", ""))
    field = {"events": "events", "properties": "properties"}.get(str(document["kind"]), "types")
    for index, entry in enumerate(spec.get(field) or []):
        where = f"{file}: spec.{field}[{index}]"
        if not isinstance(entry, dict) or "id" not in entry:
            raise TrackingPlanError(file, f"spec.{field}[{index}]", "an entry needs an id")
        into[str(entry["id"])] = into[f"{group}/{entry['id']}"] = (entry, where)


def _resolve(ref: object, table: dict[str, Located], file: str, where: str) -> Located:
    """``"#event:id"``, ``"#/events/group/id"`` or ``{"$ref": ...}``: the entry named."""
    if isinstance(ref, dict):
        ref = ref.get("$ref")
    name = None
    if isinstance(ref, str) and ref.startswith("#/"):
        name = "/".join(ref.split("/")[2:])
    elif isinstance(ref, str) and ref.startswith("#") and ":" in ref:
        name = ref.split(":", 1)[1]
    if name is None or name not in table:
        raise TrackingPlanError(file, where, f"reference {ref!r} points to nothing in the catalog")
    return table[name]


def _event_rule(
    entry: object, catalog: dict[str, dict[str, Located]], file: str, where: str
) -> list[Rule]:
    if not isinstance(entry, dict):
        raise TrackingPlanError(file, where, "a rule must be a mapping")
    if entry.get("type", "event_rule") != "event_rule":
        return []
    event_ref = entry.get("event")
    event, _ = _resolve(event_ref, catalog["events"], file, f"{where}.event")
    kind = str(event.get("event_type", "track"))
    closed = entry.get("additional_properties") is False or (
        isinstance(event_ref, dict) and event_ref.get("allow_unplanned") is False
    )
    payload = _object(entry.get("properties") or [], catalog, file, where, closed=closed)
    key = str(event.get("name", "")) if kind in {"track", "page", "screen"} else ""
    schema = compile_schema(payload_schema(kind, payload), file, where)
    return [Rule(kind, key, 1, schema)]


def _object(
    entries: list[Any],
    catalog: dict[str, dict[str, Located]],
    file: str,
    where: str,
    *,
    closed: bool,
) -> dict[str, Any]:
    properties: dict[str, Any] = {}
    required: list[str] = []
    for index, item in enumerate(entries):
        place = f"{where}.properties[{index}]"
        if not isinstance(item, dict):
            raise TrackingPlanError(file, place, "a property reference must be a mapping")
        ref = item.get("property", item.get("$ref"))
        definition, defined_at = _resolve(ref, catalog["properties"], file, place)
        name = str(definition.get("name", definition["id"]))
        schema = _property(definition, catalog, defined_at)
        if item.get("properties"):
            schema.update(_object(item["properties"], catalog, file, place, closed=False))
        properties[name] = schema
        if item.get("required") is True:
            required.append(name)
    schema_: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema_["required"] = required
    if closed:
        schema_["additionalProperties"] = False
    return schema_


def _property(
    definition: Mapping[str, Any], catalog: dict[str, dict[str, Located]], where: str
) -> dict[str, Any]:
    file, _, place = where.partition(": ")
    declared = definition.get("types", definition.get("type"))
    if isinstance(declared, str) and declared.startswith("#"):
        custom, custom_at = _resolve(declared, catalog["custom-types"], file, f"{place}.type")
        schema = _property(custom, catalog, custom_at)
        schema.update(_config(definition.get("config"), file, f"{place}.config"))
        return schema
    types = declared.split(",") if isinstance(declared, str) else declared
    schema = {}
    if types:
        if not isinstance(types, list) or not set(map(str.strip, types)) <= _TYPES:
            raise TrackingPlanError(file, f"{place}.type", f"unknown type {declared!r}")
        names = [name.strip() for name in types]
        schema["type"] = names[0] if len(names) == 1 else names
    schema.update(_config(definition.get("config"), file, f"{place}.config"))
    return schema


def _config(config: object, file: str, where: str) -> dict[str, Any]:
    if config is None:
        return {}
    if not isinstance(config, dict):
        raise TrackingPlanError(file, where, "config must be a mapping")
    schema: dict[str, Any] = {}
    for key, value in config.items():
        if key in _ITEM_TYPES:
            schema["items"] = {"type": value if isinstance(value, (str, list)) else str(value)}
        elif key in _CONFIG:
            schema[_CONFIG[key]] = value
        else:
            raise TrackingPlanError(file, f"{where}.{key}", "unknown validation rule")
    return schema
