"""RudderStack tracking plans: the data catalog YAML of rudder-cli."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import pytest

from otel_segment import TrackingPlan, TrackingPlanError

if TYPE_CHECKING:
    from pathlib import Path

EVENTS: Final = """\
version: rudder/v1
kind: events
metadata:
  name: shop-events
spec:
  events:
    - id: product_viewed
      name: "Product Viewed"
      event_type: track
    - id: user_identified
      name: "Identify"
      event_type: identify
"""

PROPERTIES: Final = """\
version: rudder/v1
kind: properties
metadata:
  name: shop-properties
spec:
  properties:
    - id: product_sku
      name: "sku"
      type: string
      config:
        min_length: 3
    - id: price
      name: "price"
      type: number
      config:
        minimum: 0
    - id: size
      name: "size"
      type: string
      config:
        enum: ["S", "M", "L"]
    - id: email
      name: "email"
      type: string
    - id: tags
      name: "tags"
      type: array
      config:
        item_types: ["string"]
"""

PLAN: Final = """\
version: rudder/v1
kind: tracking-plan
metadata:
  name: shop
spec:
  id: shop
  display_name: "Shop"
  rules:
    - type: event_rule
      id: product_viewed_rule
      event: "#event:product_viewed"
      additional_properties: false
      properties:
        - property: "#property:product_sku"
          required: true
        - property: "#property:price"
        - property: "#property:size"
        - property: "#property:tags"
    - type: event_rule
      id: identify_rule
      event: "#event:user_identified"
      properties:
        - property: "#property:email"
          required: true
"""


@pytest.fixture
def catalog(tmp_path: Path) -> Path:
    """A rudder-cli project: events, properties and the plan, each in its own file."""
    (tmp_path / "events.yaml").write_text(EVENTS)
    (tmp_path / "properties.yaml").write_text(PROPERTIES)
    (tmp_path / "tracking-plan.yaml").write_text(PLAN)
    return tmp_path


class TestRudderStackPlan:
    """Event rules become schemas of their messages."""

    def test_a_conforming_event(self, catalog: Path) -> None:
        """Required properties present, types and rules kept: no violations."""
        plan = TrackingPlan.load(catalog)
        message = {
            "type": "track",
            "event": "Product Viewed",
            "properties": {"sku": "ABC-1", "price": 9.5, "size": "M", "tags": ["new"]},
        }

        assert () == plan.check(message)

    def test_property_rules_are_checked(self, catalog: Path) -> None:
        """Type, config rules, item types and ``additional_properties: false`` apply."""
        plan = TrackingPlan.load(catalog)
        message = {
            "type": "track",
            "event": "Product Viewed",
            "properties": {"sku": "A", "price": -1, "size": "XL", "tags": [1], "extra": True},
        }

        found = {(error.path, error.rule) for error in plan.check(message)}

        assert {
            ("properties.sku", "minLength"),
            ("properties.price", "minimum"),
            ("properties.size", "enum"),
            ("properties.tags.0", "type"),
            ("properties.extra", "additionalProperties"),
        } == found

    def test_identify_rules_check_traits(self, catalog: Path) -> None:
        """An event of ``event_type: identify`` describes the traits."""
        plan = TrackingPlan.load(catalog)

        errors = plan.check({"type": "identify", "userId": "u1", "traits": {}})

        assert [("traits.email", "required")] == [(e.path, e.rule) for e in errors]

    def test_one_file_with_several_documents_and_ref_syntax(self, tmp_path: Path) -> None:
        """One YAML file of ``---`` documents; the first versions' ``$ref`` form resolves."""
        old_plan = PLAN.replace("kind: tracking-plan", "kind: tp").replace(
            'event: "#event:product_viewed"',
            'event:\n        $ref: "#/events/shop-events/product_viewed"',
        )
        path = tmp_path / "all.yml"
        path.write_text(f"{EVENTS}\n---\n{PROPERTIES}\n---\n{old_plan}")
        plan = TrackingPlan.load(path)

        errors = plan.check({"type": "track", "event": "Product Viewed", "properties": {}})

        assert [("properties.sku", "required")] == [(e.path, e.rule) for e in errors]

    def test_custom_types(self, catalog: Path) -> None:
        """A property of a custom type gets the type's rules, and its own on top."""
        (catalog / "types.yaml").write_text(
            "version: rudder/v1\nkind: custom-types\nmetadata:\n  name: types\n"
            "spec:\n  types:\n    - id: sku_type\n      name: SKU\n      type: string\n"
            "      config:\n        pattern: '^[A-Z]+-[0-9]+$'\n"
        )
        (catalog / "properties.yaml").write_text(
            PROPERTIES.replace(
                "type: string\n      config:\n        min_length: 3",
                'type: "#custom-type:sku_type"',
            )
        )
        plan = TrackingPlan.load(catalog)
        message = {"type": "track", "event": "Product Viewed", "properties": {"sku": "abc"}}

        errors = plan.check(message)

        assert [("properties.sku", "pattern")] == [(e.path, e.rule) for e in errors]

    def test_a_reference_to_nothing_names_the_rule(self, tmp_path: Path) -> None:
        """An event rule naming an unknown property fails at load, naming the place."""
        (tmp_path / "events.yaml").write_text(EVENTS)
        (tmp_path / "plan.yaml").write_text(PLAN)
        with pytest.raises(TrackingPlanError) as raised:
            TrackingPlan.load(tmp_path / "events.yaml", tmp_path / "plan.yaml")

        assert str(tmp_path / "plan.yaml") == raised.value.source
        assert "spec.rules[0].properties[0]" == raised.value.location

    def test_an_unknown_validation_rule(self, catalog: Path) -> None:
        """A ``config`` key the library does not know fails at load, naming it."""
        (catalog / "properties.yaml").write_text(
            PROPERTIES.replace("min_length: 3", "min_lenght: 3")
        )
        with pytest.raises(TrackingPlanError) as raised:
            TrackingPlan.load(catalog)

        assert raised.value.location.endswith("config.min_lenght")
        assert str(catalog / "properties.yaml") == raised.value.source

    def test_a_yaml_syntax_error_names_the_line(self, tmp_path: Path) -> None:
        """Broken YAML names file, line and column."""
        path = tmp_path / "plan.yaml"
        path.write_text("kind: tracking-plan\nspec:\n  rules: [\n")
        with pytest.raises(TrackingPlanError) as raised:
            TrackingPlan.load(path)

        assert raised.value.location.startswith("line ")


class TestMalformedCatalogs:
    """A broken catalog fails at load, naming the file and the place."""

    @pytest.mark.parametrize(
        ("file", "text", "location"),
        [
            ("tracking-plan.yaml", "kind: tracking-plan\nspec: [1]\n", "spec"),
            (
                "tracking-plan.yaml",
                PLAN.replace(
                    "    - type: event_rule\n      id: identify_rule",
                    "    - just text\n    - type: event_rule\n      id: identify_rule",
                ),
                "spec.rules[1]",
            ),
            (
                "properties.yaml",
                PROPERTIES.replace("type: number", "type: money"),
                "spec.properties[1].type",
            ),
            (
                "properties.yaml",
                PROPERTIES.replace("config:\n        minimum: 0", "config: 0"),
                "spec.properties[1].config",
            ),
            (
                "properties.yaml",
                PROPERTIES.replace("- id: price", "- ident: price"),
                "spec.properties[1]",
            ),
            (
                "tracking-plan.yaml",
                PLAN.replace('- property: "#property:price"', '- "#property:price"'),
                "spec.rules[0].properties[1]",
            ),
            (
                "tracking-plan.yaml",
                PLAN.replace("#event:product_viewed", "#event:product_seen"),
                "spec.rules[0].event",
            ),
        ],
    )
    def test_the_error_names_the_place(
        self, catalog: Path, file: str, text: str, location: str
    ) -> None:
        """``TrackingPlanError`` names the file and the entry."""
        (catalog / file).write_text(text)
        with pytest.raises(TrackingPlanError) as raised:
            TrackingPlan.load(catalog)

        assert (str(catalog / file), location) == (raised.value.source, raised.value.location)

    def test_a_catalog_without_a_plan(self, tmp_path: Path) -> None:
        """Events and properties alone are no tracking plan."""
        (tmp_path / "events.yaml").write_text(EVENTS)
        with pytest.raises(TrackingPlanError, match="no document of kind 'tracking-plan'"):
            TrackingPlan.load(tmp_path / "events.yaml")

    def test_other_rule_types_are_skipped(self, catalog: Path) -> None:
        """Rules other than event rules (future kinds) do not fail the load."""
        (catalog / "tracking-plan.yaml").write_text(
            PLAN.replace(
                "    - type: event_rule\n      id: identify_rule",
                "    - type: future_rule\n      id: x\n"
                "    - type: event_rule\n      id: identify_rule",
            )
        )

        assert frozenset({"Product Viewed"}) == TrackingPlan.load(catalog).events
