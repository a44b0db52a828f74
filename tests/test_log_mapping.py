"""Tests of the logging mapping rules (otel_segment.sources.log_mapping)."""

from __future__ import annotations

from typing import Any

import pytest

from otel_segment.sources.log_mapping import annotate, annotation_fields


class TestAnnotate:
    """annotate() builds the extra mapping."""

    @pytest.mark.parametrize(
        ("built", "expected"),
        [
            (annotate(), {"type": "track"}),
            (
                annotate(user_id="u1", plan="pro"),
                {"type": "track", "user_id": "u1", "properties": {"plan": "pro"}},
            ),
            (
                annotate("identify", user_id="u1", plan="pro"),
                {"type": "identify", "user_id": "u1", "traits": {"plan": "pro"}},
            ),
            (
                annotate(properties={"plan": "pro"}, plan="free", seats=2),
                {"type": "track", "properties": {"plan": "pro", "seats": 2}},
            ),
            (
                annotate("page", anonymous_id="a1", name="Home", category="Docs"),
                {"type": "page", "anonymous_id": "a1", "name": "Home", "category": "Docs"},
            ),
        ],
    )
    def test_shapes(self, built: dict[str, Any], expected: dict[str, Any]) -> None:
        """Fields given are kept; other keywords join properties or traits."""
        assert {"segment": expected} == built

    def test_never_raises(self) -> None:
        """Nonsense is passed on for the handler to reject, not raised at the call."""
        built = annotate("bogus", properties="x", seats=2)  # type: ignore[arg-type]

        assert {"segment": {"type": "bogus", "properties": "x"}} == built


class TestAnnotationFields:
    """annotation_fields() applies the default rules to an annotation."""

    def test_defaults_from_the_record(self) -> None:
        """The message names the event, the time is the record's, extras become properties."""
        kind, fields = annotation_fields(
            {"user_id": "u1", "properties": {"plan": "pro"}},
            message="Signed Up",
            timestamp=1.5,
            extras={"plan": "free", "seats": 2},
        )

        assert ("track", {"user_id": "u1", "event": "Signed Up", "timestamp": 1.5}) == (
            kind,
            {k: v for k, v in fields.items() if k != "properties"},
        )
        assert {"plan": "pro", "seats": 2} == fields["properties"]

    def test_identify_extras_become_traits(self) -> None:
        """For identify, extras join traits and the message names nothing."""
        assert ("identify", {"user_id": "u1", "traits": {"plan": "pro"}}) == annotation_fields(
            {"type": "identify", "user_id": "u1"}, message="changed", extras={"plan": "pro"}
        )

    @pytest.mark.parametrize(
        ("annotation", "error", "match"),
        [
            ("u1", TypeError, "must be a mapping"),
            ({"user": "u1"}, TypeError, "unknown fields 'user'"),
            ({"type": "buy"}, ValueError, "type must be one of"),
        ],
    )
    def test_bad_annotations_are_named(
        self, annotation: object, error: type[Exception], match: str
    ) -> None:
        """A wrong annotation raises, naming what is wrong with it."""
        with pytest.raises(error, match=match):
            annotation_fields(annotation)
