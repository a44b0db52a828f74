"""PlanInference: a draft plan from observed messages, in bounded memory."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hypothesis import given
from hypothesis import strategies as st

from otel_segment import TrackingPlan
from otel_segment.plans import infer
from otel_segment.plans.infer import PlanInference

if TYPE_CHECKING:
    import pytest


def track(event: str, **properties: object) -> dict[str, object]:
    """A track wire message."""
    return {"type": "track", "event": event, "properties": properties}


class TestPlanInference:
    """Types, required fields, enums; caps on events and values."""

    def test_types_merge_and_integers_widen_to_numbers(self) -> None:
        """An int seen beside a float is a number; a field with two types lists both."""
        inference = PlanInference()
        inference.observe(track("E", n=1, mixed="a"))
        inference.observe(track("E", n=1.5, mixed=2))

        properties = inference.plan()["events"]["E"]["properties"]

        assert {"type": "number"} == properties["n"]
        assert {"type": ["integer", "string"]} == properties["mixed"]

    def test_a_field_with_too_many_values_is_no_enum(self) -> None:
        """More distinct strings than ``enum_max`` stop counting: a plain string."""
        inference = PlanInference(enum_max=3)
        for value in "abcdabcdabcd":
            inference.observe(track("E", letter=value))

        assert {"type": "string"} == inference.plan()["events"]["E"]["properties"]["letter"]

    def test_events_beyond_the_cap_are_counted_not_kept(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """At most MAX_EVENTS events are drafted; the rest are counted as skipped."""
        monkeypatch.setattr(infer, "MAX_EVENTS", 2)
        inference = PlanInference()
        for event in ("A", "B", "C", "A"):
            inference.observe(track(event))

        assert ["A", "B"] == sorted(inference.plan()["events"])
        assert 1 == inference.skipped_events

    def test_other_types_and_malformed_messages_are_ignored(self) -> None:
        """Page, alias, and messages without a mapping payload teach nothing."""
        inference = PlanInference()
        inference.observe({"type": "page", "name": "Home", "properties": {}})
        inference.observe({"type": "track", "event": "E", "properties": [1]})

        assert (0, {"events": {}}) == (inference.seen, inference.plan())

    @given(
        st.lists(
            st.dictionaries(
                st.sampled_from(["a", "b", "c"]),
                st.none() | st.booleans() | st.integers(-5, 5) | st.sampled_from(["x", "y"]),
            ),
            min_size=1,
            max_size=20,
        )
    )
    def test_every_observed_message_conforms_to_the_draft(
        self, payloads: list[dict[str, object]]
    ) -> None:
        """Whatever was observed, the draft accepts it."""
        inference = PlanInference(enum_max=2)
        for payload in payloads:
            inference.observe(track("E", **payload))
        plan = TrackingPlan.from_dict(inference.plan())

        assert all(() == plan.check(track("E", **payload)) for payload in payloads)
