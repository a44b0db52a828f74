"""Tracking plans: the Segment Protocols and plain formats, checking, and errors at load."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import TYPE_CHECKING, Any, Final

import pytest
from hypothesis import given
from hypothesis import strategies as st

from otel_segment import FieldViolation, TrackingPlan, TrackingPlanError

if TYPE_CHECKING:
    from pathlib import Path

DRAFT_07: Final = "http://json-schema.org/draft-07/schema#"

ORDER_COMPLETED: Final = {
    "type": "object",
    "properties": {
        "total": {"type": "number"},
        "currency": {"type": "string", "enum": ["EUR", "USD"]},
    },
    "required": ["total"],
}


def track(event: str, properties: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """A track wire message."""
    return {"type": "track", "event": event, "userId": "u1", "properties": properties, **extra}


def segment_export(*rules: dict[str, Any]) -> dict[str, Any]:
    """A tracking plan as Segment's Public API exports its rules."""
    return {"data": {"rules": list(rules), "pagination": {"current": "MA=="}}}


def segment_rule(
    kind: str, key: str, field: str, payload: dict[str, Any], version: int = 1
) -> dict[str, Any]:
    """One Protocols rule: a draft-07 schema of the whole message."""
    return {
        "key": key,
        "type": kind,
        "version": version,
        "jsonSchema": {
            "$schema": DRAFT_07,
            "type": "object",
            "properties": {field: payload},
            "required": [field],
        },
    }


class TestPlainPlan:
    """``{"events": {...}}``: a JSON Schema of each event's properties."""

    def test_a_conforming_track_has_no_violations(self) -> None:
        """A message the schema accepts gives ``()``."""
        plan = TrackingPlan.from_dict({"events": {"Order Completed": ORDER_COMPLETED}})

        assert () == plan.check(track("Order Completed", {"total": 42.5, "currency": "EUR"}))

    def test_violations_name_the_field_path_and_the_rule(self) -> None:
        """Each error names ``properties.<field>`` and the keyword it breaks."""
        plan = TrackingPlan.from_dict({"events": {"Order Completed": ORDER_COMPLETED}})

        errors = plan.check(track("Order Completed", {"total": "42", "currency": "GBP"}))

        assert {("properties.total", "type"), ("properties.currency", "enum")} == {
            (error.path, error.rule) for error in errors
        }

    def test_a_missing_required_field_is_named(self) -> None:
        """``required`` errors name the missing field, not its parent."""
        plan = TrackingPlan.from_dict({"events": {"Order Completed": ORDER_COMPLETED}})

        errors = plan.check(track("Order Completed", {}))

        assert [("properties.total", "required")] == [(e.path, e.rule) for e in errors]

    def test_unplanned_events_pass_by_default(self) -> None:
        """``unplanned="allow"``: an event the plan does not name is not checked."""
        plan = TrackingPlan.from_dict({"events": {"Order Completed": ORDER_COMPLETED}})

        assert () == plan.check(track("Something Else", {"x": 1}))

    def test_unplanned_events_violate_when_asked(self) -> None:
        """``unplanned="violation"``: the event itself is the error."""
        plan = TrackingPlan.from_dict(
            {"events": {"Order Completed": ORDER_COMPLETED}}, unplanned="violation"
        )

        (error,) = plan.check(track("Something Else", {}))

        assert ("event", "unplanned") == (error.path, error.rule)

    def test_identify_traits_and_group_traits(self) -> None:
        """``identify`` / ``group`` hold a schema of the traits."""
        plan = TrackingPlan.from_dict(
            {
                "identify": {
                    "type": "object",
                    "properties": {"email": {"format": "email", "type": "string"}},
                    "required": ["email"],
                },
                "group": {"type": "object", "properties": {"seats": {"type": "integer"}}},
            }
        )

        identify = plan.check({"type": "identify", "userId": "u1", "traits": {}})
        group = plan.check({"type": "group", "groupId": "g", "traits": {"seats": 2.5}})

        assert [("traits.email", "required")] == [(e.path, e.rule) for e in identify]
        assert [("traits.seats", "type")] == [(e.path, e.rule) for e in group]

    def test_local_definitions_resolve(self) -> None:
        """A property schema's ``#/definitions/...`` references work as written."""
        schema = {
            "definitions": {"money": {"type": "number", "minimum": 0}},
            "properties": {"total": {"$ref": "#/definitions/money"}},
        }
        plan = TrackingPlan.from_dict({"events": {"Paid": schema}})

        (error,) = plan.check(track("Paid", {"total": -1}))

        assert ("properties.total", "minimum") == (error.path, error.rule)

    def test_a_malformed_event_name_is_a_violation_not_a_crash(self) -> None:
        """A track whose event is not a string (a hand-written log line) is reported."""
        plan = TrackingPlan.from_dict({"events": {"A": {}}})

        (error,) = plan.check({"type": "track", "event": ["A"], "properties": {}})

        assert ("event", "type") == (error.path, error.rule)

    def test_events_lists_the_planned_track_events(self) -> None:
        """``events`` is the set of track events the plan names."""
        plan = TrackingPlan.from_dict({"events": {"A": {}, "B": {}}})

        assert frozenset({"A", "B"}) == plan.events

    def test_field_violation_reads_as_a_sentence(self) -> None:
        """``str()`` of an error gives path, detail and rule."""
        assert "properties.total: bad (type)" == str(
            FieldViolation("properties.total", "type", "bad")
        )

    @given(
        st.dictionaries(
            st.text(max_size=8),
            st.none() | st.booleans() | st.integers() | st.text(max_size=8),
            max_size=6,
        )
    )
    def test_an_open_schema_accepts_any_properties(self, properties: dict[str, Any]) -> None:
        """``{}`` as an event's schema accepts every properties mapping."""
        plan = TrackingPlan.from_dict({"events": {"Any": {}}})

        assert () == plan.check(track("Any", properties))


class TestSegmentProtocolsPlan:
    """A Segment Protocols export: ``rules[]`` of TRACK / IDENTIFY / GROUP / COMMON."""

    def test_track_rule_checks_properties(self, tmp_path: Path) -> None:
        """A TRACK rule's jsonSchema describes ``properties.properties``."""
        path = tmp_path / "plan.json"
        path.write_text(
            json.dumps(
                segment_export(
                    segment_rule("TRACK", "Order Completed", "properties", ORDER_COMPLETED)
                )
            )
        )
        plan = TrackingPlan.load(path)

        (error,) = plan.check(track("Order Completed", {"total": "x"}))

        assert ("properties.total", "type") == (error.path, error.rule)
        assert str(path) == plan.source

    def test_identify_and_group_rules_check_traits(self) -> None:
        """IDENTIFY and GROUP rules (no key) describe ``properties.traits``."""
        traits = {"type": "object", "required": ["plan"]}
        plan = TrackingPlan.from_dict(
            {
                "rules": [
                    segment_rule("IDENTIFY", "", "traits", traits),
                    segment_rule("GROUP", "", "traits", traits),
                ]
            }
        )

        assert [("traits.plan", "required")] == [
            (e.path, e.rule) for e in plan.check({"type": "identify", "traits": {}})
        ]
        assert [("traits.plan", "required")] == [
            (e.path, e.rule) for e in plan.check({"type": "group", "traits": {}})
        ]

    def test_the_event_version_selects_the_rule(self) -> None:
        """``context.protocols.event_version`` picks a version; without it, the lowest."""
        v1 = segment_rule("TRACK", "E", "properties", {"required": ["a"]}, version=1)
        v2 = segment_rule("TRACK", "E", "properties", {"required": ["b"]}, version=2)
        plan = TrackingPlan.from_dict({"rules": [v2, v1]})
        versioned = track("E", {"a": 1}, context={"protocols": {"event_version": 2}})

        assert () == plan.check(track("E", {"a": 1}))
        assert [("properties.b", "required")] == [(e.path, e.rule) for e in plan.check(versioned)]

    def test_common_rules_apply_to_every_message(self) -> None:
        """A COMMON rule checks every message, planned or not."""
        common = {
            "key": "",
            "type": "COMMON",
            "version": 1,
            "jsonSchema": {"type": "object", "required": ["userId"]},
        }
        plan = TrackingPlan.from_dict({"rules": [common]})

        assert [("userId", "required")] == [
            (e.path, e.rule) for e in plan.check({"type": "track", "event": "E", "properties": {}})
        ]


class TestPlanLoadErrors:
    """A malformed plan fails at load, naming the file and the place."""

    def load_error(
        self, tmp_path: Path, document: object, name: str = "plan.json"
    ) -> TrackingPlanError:
        """Write *document* and load it; the error raised."""
        path = tmp_path / name
        path.write_text(document if isinstance(document, str) else json.dumps(document))
        with pytest.raises(TrackingPlanError) as raised:
            TrackingPlan.load(path)
        assert str(path) == raised.value.source
        assert str(path) in str(raised.value)
        return raised.value

    def test_invalid_json_names_line_and_column(self, tmp_path: Path) -> None:
        """A syntax error names where it is."""
        error = self.load_error(tmp_path, '{"events": {\n  "A": {,}\n}}')

        assert "line 2 column" in error.location

    def test_unknown_type_in_a_schema(self, tmp_path: Path) -> None:
        """A schema the draft-07 meta-schema refuses fails at load, naming the event."""
        error = self.load_error(tmp_path, {"events": {"A": {"type": "strin"}}})

        assert "events.A" == error.location

    def test_a_later_draft_keyword_is_refused(self, tmp_path: Path) -> None:
        """``unevaluatedProperties`` (2019-09) would be silently ignored: refused instead."""
        schema = {"properties": {"a": {"type": "object", "unevaluatedProperties": False}}}
        error = self.load_error(tmp_path, {"events": {"A": schema}})

        assert "events.A.properties.a.unevaluatedProperties" == error.location

    def test_a_later_draft_is_refused(self, tmp_path: Path) -> None:
        """A 2020-12 ``$schema`` is refused, pointing at ``$schema``."""
        rule = segment_rule("TRACK", "A", "properties", {})
        rule["jsonSchema"]["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        error = self.load_error(tmp_path, {"rules": [rule]})

        assert "rules[0].jsonSchema.$schema" == error.location

    def test_a_reference_to_a_missing_definition(self, tmp_path: Path) -> None:
        """``$ref`` to nothing fails at load, not at the first message."""
        schema = {"properties": {"a": {"$ref": "#/definitions/missing"}}}
        error = self.load_error(tmp_path, {"events": {"A": schema}})

        assert "missing" in str(error)

    def test_a_remote_reference_is_refused_without_fetching(self, tmp_path: Path) -> None:
        """A plan never fetches anything: ``$ref`` to a URL is an error (no socket opened)."""
        schema = {"properties": {"a": {"$ref": "http://203.0.113.9/schema.json"}}}
        error = self.load_error(tmp_path, {"events": {"A": schema}})

        assert error.location.endswith("properties.a.$ref")

    def test_a_deeply_nested_schema_is_refused(self, tmp_path: Path) -> None:
        """A schema nested past 64 levels fails clearly, not with a RecursionError."""
        schema: dict[str, Any] = {}
        for _ in range(200):
            schema = {"properties": {"x": schema}}
        error = self.load_error(tmp_path, {"events": {"A": schema}})

        assert "deeper" in str(error)

    def test_a_rule_without_a_type(self, tmp_path: Path) -> None:
        """A Protocols rule of unknown type names the rule."""
        error = self.load_error(
            tmp_path, {"rules": [{"key": "A", "type": "EVENT", "jsonSchema": {}}]}
        )

        assert "rules[0].type" == error.location

    def test_not_a_plan(self, tmp_path: Path) -> None:
        """A JSON document in none of the formats says what was expected."""
        error = self.load_error(tmp_path, {"hello": 1})

        assert "not a tracking plan" in str(error)

    def test_a_missing_file(self, tmp_path: Path) -> None:
        """An unreadable file is a TrackingPlanError naming it."""
        with pytest.raises(TrackingPlanError, match="cannot read"):
            TrackingPlan.load(tmp_path / "nope.json")

    def test_unplanned_must_be_allow_or_violation(self) -> None:
        """A wrong ``unplanned`` is a ValueError naming it."""
        with pytest.raises(ValueError, match="unplanned"):
            TrackingPlan.from_dict({"events": {}}, unplanned="warn")  # type: ignore[arg-type]


class TestMalformedPlans:
    """Every malformed entry is refused at load, with its place."""

    @pytest.mark.parametrize(
        ("document", "location"),
        [
            ({"rules": {"a": 1}}, "rules"),
            ({"data": {"rules": None}}, "data.rules"),
            ({"rules": ["TRACK"]}, "rules[0]"),
            ({"rules": [{"type": "TRACK", "jsonSchema": {}}]}, "rules[0].key"),
            (
                {"rules": [{"type": "TRACK", "key": "A", "version": "2", "jsonSchema": {}}]},
                "rules[0].version",
            ),
            ({"rules": [{"type": "TRACK", "key": "A"}]}, "rules[0]"),
            ({"rules": [{"type": "TRACK", "key": "A", "jsonSchema": []}]}, "rules[0].jsonSchema"),
            ({"events": {}, "evnets": {}}, "evnets"),
            ({"events": ["A"]}, "events"),
            ({"events": {"A": "string"}}, "events.A"),
            ({"events": {"A": {"$schema": "http://example.com/my-draft"}}}, "events.A.$schema"),
            (["not", "a", "mapping"], ""),
        ],
    )
    def test_the_error_names_the_place(self, document: object, location: str) -> None:
        """``TrackingPlanError.location`` points at what is wrong."""
        with pytest.raises(TrackingPlanError) as raised:
            TrackingPlan.from_dict(document)  # type: ignore[arg-type]

        assert location == raised.value.location
        assert "<mapping>" == raised.value.source

    def test_a_boolean_schema(self) -> None:
        """``false`` as an event's schema refuses every message of it."""
        plan = TrackingPlan.from_dict({"events": {"Never": False}})

        assert () != plan.check(track("Never", {}))


class TestPlanImports:
    """Plans cost nothing to code that does not use them."""

    def test_import_otel_segment_loads_no_validator_nor_yaml(self) -> None:
        """``import otel_segment`` imports neither jsonschema-rs nor PyYAML."""
        code = (
            "import sys, otel_segment; "
            "print(sorted(m for m in ('jsonschema_rs', 'yaml') if m in sys.modules))"
        )
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
        )

        assert "[]" == done.stdout.strip()

    def test_yaml_without_pyyaml_names_the_extra(self, tmp_path: Path) -> None:
        """Without PyYAML, loading a YAML plan says which extra to install."""
        path = tmp_path / "plan.yaml"
        path.write_text("kind: tracking-plan\n")
        code = (
            "import sys; sys.modules['yaml'] = None\n"
            "from otel_segment import TrackingPlan, TrackingPlanError\n"
            "try:\n"
            f"    TrackingPlan.load({str(path)!r})\n"
            "except TrackingPlanError as error:\n"
            "    print(error)\n"
        )
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
        )

        assert "otel-segment[yaml]" in done.stdout
