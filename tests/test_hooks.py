"""Hooks on every message: super_properties, before_send and the tracking plan, per source."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import pytest
from _helpers import ErrorLog, delivered
from _otel import end_span
from hypothesis import given, settings
from hypothesis import strategies as st

from otel_segment import (
    Client,
    PlanViolation,
    SegmentHandler,
    TrackingPlan,
    snapshot,
    tracked,
)

if TYPE_CHECKING:
    import logging
    from collections.abc import Iterator

    from _helpers import Clients
    from _server import ScriptedServer
    from opentelemetry.sdk.trace import Tracer

PLAN: Final = TrackingPlan.from_dict(
    {
        "events": {
            "Order Completed": {
                "type": "object",
                "properties": {"total": {"type": "number"}, "sku": {"type": "string"}},
                "required": ["total"],
            }
        },
        "group": {"type": "object", "required": ["seats"]},
    }
)


@pytest.fixture
def errors() -> ErrorLog:
    """An ``on_error`` recorder."""
    return ErrorLog()


@pytest.fixture
def client(segment_server: ScriptedServer, errors: ErrorLog) -> Iterator[Client]:
    """A client of the test server with the plan in ``raise`` mode (for the source tests)."""
    client = Client(
        "test-key",
        host=segment_server.url,
        plan=PLAN,
        on_violation="raise",
        on_error=errors,
        flush_interval=0.05,
    )
    try:
        yield client
    finally:
        client.shutdown(5)


class TestSuperProperties:
    """``super_properties`` are merged under track/page/screen properties."""

    def test_merged_under_the_call(self, clients: Clients, segment_server: ScriptedServer) -> None:
        """The call's own properties win; page and screen get them too; identify does not."""
        client = clients(super_properties={"app": "shop", "plan": "free"})
        client.track("u1", "Viewed", {"plan": "pro"})
        client.page("u1", name="Home")
        client.screen("u1", name="Cart")
        client.identify("u1", {"email": "a@b.c"})

        track, page, screen, identify = delivered(client, segment_server, 4)

        assert {"app": "shop", "plan": "pro"} == track["properties"]
        assert {"app": "shop", "plan": "free"} == page["properties"]
        assert {"app": "shop", "plan": "free"} == screen["properties"]
        assert {"email": "a@b.c"} == identify["traits"]

    def test_must_be_a_mapping(self) -> None:
        """A wrong type fails at construction, naming the option."""
        with pytest.raises(TypeError, match="super_properties"):
            Client("k", super_properties=["a"])  # type: ignore[arg-type]


class TestBeforeSend:
    """``before_send`` sees the complete message and may change or drop it."""

    def test_sees_the_complete_message_and_changes_it(
        self, clients: Clients, segment_server: ScriptedServer
    ) -> None:
        """The hook gets ids, context and super properties; what it returns is sent."""
        seen: list[dict[str, Any]] = []

        def scrub(message: dict[str, Any]) -> dict[str, Any]:
            seen.append(dict(message))
            message["properties"].pop("request_id", None)
            return message

        client = clients(before_send=scrub, super_properties={"app": "shop"})
        ok, returned = client.track("u1", "Signed Up", {"request_id": "r-7", "plan": "pro"})

        [sent] = delivered(client, segment_server, 1)
        assert ok
        assert {"app": "shop", "plan": "pro"} == sent["properties"]
        assert returned["messageId"] == sent["messageId"]
        assert "otel-segment" == seen[0]["context"]["library"]["name"]
        assert "u1" == seen[0]["userId"]

    def test_none_drops_the_message_counted_as_filtered(self, clients: Clients) -> None:
        """``None`` drops it: ``(False, msg)``, ``filtered`` counts it, ``on_error`` is not told."""
        errors = ErrorLog()
        client = clients(before_send=lambda _: None, on_error=errors)

        ok, _ = client.track("u1", "Dropped")

        assert not ok
        assert client.flush(5)
        stats = client.stats()
        assert (1, 0, 0) == (stats["filtered"], stats["rejected"], stats["enqueued"])
        assert [] == errors.calls

    def test_an_exception_rejects_the_message_only(self, clients: Clients) -> None:
        """A failing hook: counted as rejected, handed to on_error, never raised."""
        errors = ErrorLog()
        boom = RuntimeError("hook broke")

        def hook(_: dict[str, Any]) -> dict[str, Any]:
            raise boom

        client = clients(before_send=hook, on_error=errors)

        ok, _ = client.track("u1", "E")

        assert not ok
        assert 1 == client.stats()["rejected"]
        [(error, [message])] = errors.calls
        assert boom is error
        assert "E" == message["event"]

    @pytest.mark.parametrize("result", [42, {"no": "type"}, "message"])
    def test_a_result_that_is_not_a_message_is_rejected(
        self, clients: Clients, result: object
    ) -> None:
        """Anything but a message dict or None is rejected with a TypeError for on_error."""
        errors = ErrorLog()
        client = clients(before_send=lambda _: result, on_error=errors)

        ok, _ = client.track("u1", "E")

        assert not ok
        assert 1 == client.stats()["rejected"]
        assert isinstance(errors.calls[0][0], TypeError)

    def test_an_unencodable_result_is_rejected_not_raised(self, clients: Clients) -> None:
        """A hook that makes the message circular: rejected and reported, never raised."""
        errors = ErrorLog()

        def circular(message: dict[str, Any]) -> dict[str, Any]:
            message["properties"]["self"] = message
            return message

        client = clients(before_send=circular, on_error=errors)

        ok, _ = client.track("u1", "E")

        assert not ok
        assert 1 == client.stats()["rejected"]
        assert isinstance(errors.calls[0][0], ValueError)

    def test_must_be_callable(self) -> None:
        """A wrong type fails at construction, naming the option."""
        with pytest.raises(TypeError, match="before_send"):
            Client("k", before_send="scrub")  # type: ignore[arg-type]

    def test_without_the_hook_bad_values_still_raise(self, clients: Clients) -> None:
        """With only a plan, a direct call's circular value raises as it always did."""
        client = clients(plan=PLAN)
        circular: dict[str, Any] = {}
        circular["self"] = circular

        with pytest.raises(ValueError, match="ircular"):
            client.track("u1", "Order Completed", {"total": 1, "c": circular})
        assert 1 == client.stats()["rejected"]

    def test_runs_for_every_thread(self, clients: Clients) -> None:
        """The hook runs on each caller's thread; every call is accounted for."""
        client = clients(before_send=lambda m: None if m["event"] == "drop" else m, send=False)

        def send() -> None:
            for number in range(50):
                client.track("u1", "drop" if number % 2 else "keep")

        threads = [threading.Thread(target=send) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        assert 100 == client.stats()["filtered"]


class TestPlanOnTheClient:
    """``plan=`` with ``on_violation`` = report, drop or raise, on direct calls."""

    def test_report_counts_reports_and_sends(
        self, clients: Clients, segment_server: ScriptedServer
    ) -> None:
        """``report``: counted in violations, PlanViolation to on_error, and still sent."""
        errors = ErrorLog()
        client = clients(plan=PLAN, on_violation="report", on_error=errors)

        ok, _ = client.track("u1", "Order Completed", {"total": "42"})

        [sent] = delivered(client, segment_server, 1)
        assert ok
        assert "42" == sent["properties"]["total"]
        assert 1 == client.stats()["violations"]
        [(error, [message])] = errors.calls
        assert isinstance(error, PlanViolation)
        assert [("properties.total", "type")] == [(e.path, e.rule) for e in error.errors]
        assert ("track", "Order Completed") == (error.message_type, error.event)
        assert sent["messageId"] == message["messageId"]

    def test_drop_does_not_send(self, clients: Clients) -> None:
        """``drop``: counted and reported, not queued."""
        errors = ErrorLog()
        client = clients(plan=PLAN, on_violation="drop", on_error=errors)

        ok, _ = client.track("u1", "Order Completed", {})

        assert not ok
        stats = client.stats()
        assert (1, 0) == (stats["violations"], stats["enqueued"])
        assert isinstance(errors.calls[0][0], PlanViolation)

    def test_raise_raises_from_direct_calls(self, clients: Clients) -> None:
        """``raise``: PlanViolation (a ValueError) from the call, after counting and reporting."""
        errors = ErrorLog()
        client = clients(plan=PLAN, on_violation="raise", on_error=errors)

        with pytest.raises(PlanViolation) as raised:
            client.group("u1", "g1", {})

        assert isinstance(raised.value, ValueError)
        assert [("traits.seats", "required")] == [(e.path, e.rule) for e in raised.value.errors]
        assert 1 == client.stats()["violations"]
        assert 1 == len(errors.calls)

    def test_conforming_messages_pass(
        self, clients: Clients, segment_server: ScriptedServer
    ) -> None:
        """A message the plan accepts is sent as usual, nothing counted."""
        client = clients(plan=PLAN, on_violation="raise")

        client.track("u1", "Order Completed", {"total": 42.5, "sku": "A-1"})

        assert 1 == len(delivered(client, segment_server, 1))
        assert 0 == client.stats()["violations"]

    def test_converted_values_are_checked_as_the_wire_has_them(self, clients: Clients) -> None:
        """A value sent as a string (a datetime) conforms to ``type: string``."""
        import datetime as dt  # noqa: PLC0415

        plan = TrackingPlan.from_dict({"events": {"E": {"properties": {"at": {"type": "string"}}}}})
        client = clients(plan=plan, on_violation="raise", send=False)

        ok, _ = client.track("u1", "E", {"at": dt.datetime(2026, 1, 1, tzinfo=dt.UTC)})

        assert ok

    def test_the_plan_runs_after_before_send(self, clients: Clients) -> None:
        """What ``before_send`` fixes is what the plan checks."""

        def fix(message: dict[str, Any]) -> dict[str, Any]:
            message["properties"]["total"] = float(message["properties"]["total"])
            return message

        client = clients(plan=PLAN, on_violation="raise", before_send=fix, send=False)

        ok, message = client.track("u1", "Order Completed", {"total": "42"})

        assert ok
        assert 42.0 == message["properties"]["total"]

    @pytest.mark.parametrize(
        ("option", "value", "error"),
        [("plan", {"events": {}}, TypeError), ("on_violation", "warn", ValueError)],
    )
    def test_wrong_options_fail_at_construction(
        self, option: str, value: Any, error: type[Exception]
    ) -> None:
        """``plan`` must be a TrackingPlan; ``on_violation`` one of the three words."""
        with pytest.raises(error, match=option):
            Client("k", **{option: value})

    @settings(max_examples=30, deadline=None)
    @given(
        total=st.one_of(
            st.floats(allow_nan=False, allow_infinity=False),
            st.integers(),
            st.text(max_size=5),
            st.none(),
        )
    )
    def test_every_violation_is_counted(self, total: object) -> None:
        """Whatever the value, a message is either sent or counted as a violation."""
        with Client("k", send=False, plan=PLAN, on_violation="drop") as client:
            ok, _ = client.track("u1", "Order Completed", {"total": total})
            violations = client.stats()["violations"]

        assert ok == (violations == 0)
        assert (not isinstance(total, (int, float)) or isinstance(total, bool)) == (violations == 1)

    @pytest.mark.parametrize("total", [float("nan"), float("inf")])
    def test_non_finite_numbers_are_checked_as_the_null_they_become(self, total: float) -> None:
        """NaN and infinity go on the wire as null: a ``number`` field violates."""
        with Client("k", send=False, plan=PLAN, on_violation="drop") as client:
            ok, _ = client.track("u1", "Order Completed", {"total": total})

            assert (False, 1) == (ok, client.stats()["violations"])


class TestSourcesNeverRaise:
    """In ``raise`` mode, logging, span, decorator and snapshot paths drop and report."""

    def test_logging(self, client: Client, errors: ErrorLog, app_logger: logging.Logger) -> None:
        """A violating log record: dropped, counted, reported; the log call returns."""
        app_logger.addHandler(SegmentHandler(client=client))

        app_logger.info("Order Completed", extra={"segment": {"user_id": "u1"}})

        assert 1 == client.stats()["violations"]
        assert 0 == client.stats()["enqueued"]
        assert isinstance(errors.calls[0][0], PlanViolation)

    def test_spans(self, tracer: Tracer, client: Client, errors: ErrorLog) -> None:
        """A violating span: dropped, counted, reported; the span ends normally."""
        end_span(tracer, "checkout", {"segment.event": "Order Completed", "enduser.id": "u1"})

        assert 1 == client.stats()["violations"]
        assert isinstance(errors.calls[0][0], PlanViolation)

    def test_decorators(self, client: Client, errors: ErrorLog) -> None:
        """A violating decorated call: the function's result comes back untouched."""

        @tracked("Order Completed", user_id="user", properties=["total"], client=client)
        def checkout(user: str, total: object) -> str:
            return f"{user}:{total}"

        assert "u1:free" == checkout("u1", "free")
        assert 1 == client.stats()["violations"]
        assert isinstance(errors.calls[0][0], PlanViolation)

    def test_snapshots(self, client: Client, errors: ErrorLog) -> None:
        """A violating snapshot (group traits without seats): dropped and reported."""

        @snapshot(every=3600, group_id="install-1", client=client)
        def state() -> dict[str, Any]:
            return {"version": "7"}

        assert client.shutdown(5)  # a snapshot reports once more at shutdown

        assert 1 == client.stats()["violations"]
        assert isinstance(errors.calls[0][0], PlanViolation)


class TestBadInput:
    """Huge or deeply nested events never crash a source, with hooks and a plan on."""

    def test_a_deeply_nested_log_record_is_rejected_not_raised(
        self, client: Client, app_logger: logging.Logger
    ) -> None:
        """Too deep to encode: counted as rejected; the log call returns."""
        app_logger.addHandler(SegmentHandler(client=client))
        deep: dict[str, Any] = {}
        for _ in range(1000):
            deep = {"x": deep}

        app_logger.info(
            "Order Completed",
            extra={"segment": {"user_id": "u1", "properties": {"total": 1, "d": deep}}},
        )

        assert (1, 0) == (client.stats()["rejected"], client.stats()["enqueued"])

    def test_a_huge_event_is_rejected_and_reported(self, clients: Clients) -> None:
        """Over max_message_bytes after the plan passed it: rejected, handed to on_error."""
        errors = ErrorLog()
        client = clients(plan=PLAN, on_violation="raise", on_error=errors, before_send=lambda m: m)

        ok, _ = client.track("u1", "Order Completed", {"total": 1, "blob": "x" * 100_000})

        assert not ok
        assert (1, 0) == (client.stats()["rejected"], client.stats()["violations"])
        assert 1 == len(errors.calls)

    def test_a_deeply_nested_direct_call_with_before_send_is_reported(
        self, clients: Clients
    ) -> None:
        """With before_send, an unencodable message is rejected and reported, not raised."""
        errors = ErrorLog()
        client = clients(before_send=lambda m: m, on_error=errors)
        deep: dict[str, Any] = {}
        for _ in range(1000):
            deep = {"x": deep}

        ok, _ = client.track("u1", "E", {"d": deep})

        assert (False, 1) == (ok, client.stats()["rejected"])
        assert 1 == len(errors.calls)


class _Hostile:
    """A value whose ``str()`` raises (the encoder falls back to ``str()``)."""

    def __str__(self) -> str:
        """Refuse."""
        raise RuntimeError("no text for you")


class TestHostileValues:
    """A value that raises while being encoded, with hooks configured."""

    def test_a_direct_call_raises_a_value_error_as_without_hooks(self, clients: Clients) -> None:
        """With only a plan: a ValueError naming the failure, counted as rejected."""
        client = clients(plan=PLAN)

        with pytest.raises(ValueError, match="no text for you"):
            client.track("u1", "Order Completed", {"total": 1, "x": _Hostile()})
        assert 1 == client.stats()["rejected"]

    def test_with_before_send_it_is_rejected_and_reported(self, clients: Clients) -> None:
        """With before_send: the call returns (False, msg); on_error gets why."""
        errors = ErrorLog()
        client = clients(before_send=lambda m: m, on_error=errors)

        ok, _ = client.track("u1", "E", {"x": _Hostile()})

        assert (False, 1) == (ok, client.stats()["rejected"])
        assert "no text for you" in str(errors.calls[0][0])

    def test_a_log_record_never_raises(self, client: Client, app_logger: logging.Logger) -> None:
        """Through logging, with the plan in raise mode: counted, the log call returns."""
        app_logger.addHandler(SegmentHandler(client=client))

        app_logger.info("Order Completed", extra={"segment": {"user_id": "u1"}, "x": _Hostile()})

        assert 1 == client.stats()["rejected"]


class TestDataQualityExample:
    """examples/data_quality.py runs and shows the hooks at work."""

    def test_it_scrubs_filters_and_reports(self) -> None:
        """Scrubbed traits, one filtered message, two violations reported and still sent."""
        example = Path(__file__).resolve().parent.parent / "examples" / "data_quality.py"
        env = {k: v for k, v in os.environ.items() if not k.startswith("SEGMENT_")}
        done = subprocess.run(
            [sys.executable, str(example)],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=False,
        )

        assert 0 == done.returncode, done.stderr
        lines = done.stdout.splitlines()
        assert "sent identify : {'email': 'ada@example.com'}" in lines
        assert "filtered=1 violations=2" == lines[-1]
        assert 2 == sum(line.startswith("violation in ") for line in lines)
        assert 4 == sum(line.startswith("sent ") for line in lines)
