"""``otel-segment validate`` and ``otel-segment plan infer`` on JSON-lines files."""

from __future__ import annotations

import io
import json
import sys
from typing import TYPE_CHECKING, Any, Final

import pytest

from otel_segment import TrackingPlan
from otel_segment.cli import main

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

PLAN: Final = {
    "events": {
        "Order Completed": {
            "type": "object",
            "properties": {"total": {"type": "number"}},
            "required": ["total"],
        }
    }
}


def wire(event: str, properties: dict[str, Any]) -> dict[str, Any]:
    """A track as the wire (and ``otel-segment sink --json``) has it."""
    return {
        "type": "track",
        "event": event,
        "userId": "u1",
        "messageId": "m",
        "properties": properties,
    }


def write_lines(path: Path, records: Sequence[object]) -> Path:
    """Write each record as one JSON line (strings as they are)."""
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records))
    return path


@pytest.fixture
def plan_file(tmp_path: Path) -> Path:
    """The plan as a JSON file."""
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(PLAN))
    return path


class TestValidate:
    """Exit status, and a summary per event and field."""

    def test_conforming_files_exit_0(
        self, plan_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Every message conforms: status 0, and the counts."""
        log = write_lines(tmp_path / "a.jsonl", [wire("Order Completed", {"total": 1})] * 3)

        assert 0 == main(["validate", str(plan_file), str(log)])
        assert "checked 3 messages: 3 conform, 0 violate" in capsys.readouterr().out

    def test_violations_exit_1_with_a_summary_per_event_and_field(
        self, plan_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Each event with violations, each field and rule, a count and example lines."""
        log = write_lines(
            tmp_path / "a.jsonl",
            [
                wire("Order Completed", {"total": "1"}),
                wire("Order Completed", {"total": 2}),
                wire("Order Completed", {}),
                wire("Order Completed", {"total": "3"}),
            ],
        )

        assert 1 == main(["validate", str(plan_file), str(log)])
        out = capsys.readouterr().out
        assert "checked 4 messages: 1 conform, 3 violate" in out
        assert "track Order Completed: 3 of 4 violate" in out
        assert "properties.total [type] x2: " in out
        assert f"(at {log}:1, {log}:4)" in out
        assert "properties.total [required] x1" in out

    def test_annotated_log_lines_and_other_lines(
        self, plan_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Annotated log lines are checked as the messages they become; others are counted."""
        log = write_lines(
            tmp_path / "app.log.jsonl",
            [
                {  # its other fields become properties, as `import` sends them
                    "message": "Order Completed",
                    "created": 1_700_000_000.0,
                    "segment": {"user_id": "u1"},
                    "total": "x",
                },
                {"message": "Order Completed", "segment": {"user_id": "u1"}},  # no time
                {"message": "just a log line", "levelname": "INFO"},
                "not json",
                "",
            ],
        )

        assert 1 == main(["validate", str(plan_file), str(log)])
        out = capsys.readouterr().out
        assert "1 violate the plan (2 other lines ignored, 2 unreadable)" in out
        assert "checked 1 messages: 0 conform" in out
        assert f"unreadable lines at {log}:2, {log}:4" in out
        assert "properties.total [type]" in out

    def test_unplanned_events(
        self, plan_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """``--unplanned violation``: an event not in the plan fails the run."""
        log = write_lines(tmp_path / "a.jsonl", [wire("Mystery", {})])

        assert 0 == main(["validate", str(plan_file), str(log)])
        assert 1 == main(["validate", "--unplanned", "violation", str(plan_file), str(log)])
        assert "event [unplanned]" in capsys.readouterr().out

    def test_a_broken_plan_is_a_usage_error(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A plan that does not load: status 2, the error names the file."""
        plan = tmp_path / "plan.json"
        plan.write_text("{")
        log = write_lines(tmp_path / "a.jsonl", [])

        assert 2 == main(["validate", str(plan), str(log)])
        assert str(plan) in capsys.readouterr().err

    def test_a_missing_log_is_an_error(self, plan_file: Path, tmp_path: Path) -> None:
        """A file that cannot be read: status 2."""
        assert 2 == main(["validate", str(plan_file), str(tmp_path / "nope.jsonl")])

    def test_huge_and_deep_events_do_not_crash(
        self, plan_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A line nested too deep for JSON parsers is unreadable; a huge one is checked."""
        deep = (
            '{"type": "track", "event": "Order Completed", "properties": '
            + "[" * 5000
            + "]" * 5000
            + "}"
        )
        huge = wire("Order Completed", {"total": 1, "blob": "x" * 2_000_000})
        log = write_lines(tmp_path / "a.jsonl", [deep, huge])

        assert 0 == main(["validate", str(plan_file), str(log)])
        out = capsys.readouterr().out
        assert "checked 1 messages: 1 conform, 0 violate the plan" in out
        assert "(0 other lines ignored, 1 unreadable)" in out

    def test_a_progress_bar_on_a_terminal(
        self,
        plan_file: Path,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """When stderr is a terminal, tqdm shows the file's progress there."""
        log = write_lines(tmp_path / "a.jsonl", [wire("Order Completed", {"total": 1})] * 5000)
        terminal = _Terminal()
        monkeypatch.setattr(sys, "stderr", terminal)

        assert 0 == main(["validate", str(plan_file), str(log)])
        assert "checked 5000 messages" in capsys.readouterr().out
        assert str(log) in terminal.getvalue()


class _Terminal(io.StringIO):
    """A stderr that says it is a terminal."""

    def isatty(self) -> bool:
        """Yes, a terminal."""
        return True


class TestPlanInfer:
    """``plan infer`` drafts a plan that ``validate`` then accepts."""

    def test_draft_round_trips_through_validate(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A draft from a log validates that log; its types, requirements and enums show."""
        records = [
            wire(
                "Order Completed",
                {"total": 1.5 + n, "currency": ["EUR", "USD"][n % 2], "sku": f"s{n}"},
            )
            for n in range(12)
        ]
        records.append(
            wire("Order Completed", {"total": 3, "currency": "EUR", "sku": "s", "note": None})
        )
        records.append({"type": "identify", "userId": "u1", "traits": {"email": "a@b.c"}})
        log = write_lines(tmp_path / "a.jsonl", records)

        assert 0 == main(["plan", "infer", str(log)])
        draft = json.loads(capsys.readouterr().out)
        plan_path = tmp_path / "plan.json"
        plan_path.write_text(json.dumps(draft))

        order = draft["events"]["Order Completed"]
        assert {"type": "number"} == order["properties"]["total"]
        assert ["EUR", "USD"] == order["properties"]["currency"]["enum"]
        assert "enum" not in order["properties"]["sku"]
        assert ["currency", "sku", "total"] == order["required"]
        assert {"type": "null"} == order["properties"]["note"]
        assert ["email"] == draft["identify"]["required"]
        assert TrackingPlan.load(plan_path).events == {"Order Completed"}
        assert 0 == main(["validate", str(plan_path), str(log)])

    def test_no_messages_exit_1(self, tmp_path: Path) -> None:
        """A file without messages drafts nothing: status 1."""
        log = write_lines(tmp_path / "a.jsonl", [{"message": "plain"}])

        assert 1 == main(["plan", "infer", str(log)])
