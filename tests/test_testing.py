"""otel_segment.testing: capture(), Events and the segment_events pytest fixture."""

from __future__ import annotations

import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from _helpers import delivered
from _otel import end_span

from otel_segment import Client, SegmentHandler, TrackingPlan, snapshot, tracked
from otel_segment.pipeline import capture as capture_registry
from otel_segment.testing import Events, capture

if TYPE_CHECKING:
    import logging

    from _helpers import Clients
    from _server import ScriptedServer
    from opentelemetry.sdk.trace import Tracer


class TestCapture:
    """Every client, every source; nothing queued unless ``deliver=True``."""

    def test_direct_calls_are_captured_as_on_the_wire(self, clients: Clients) -> None:
        """Captured messages are wire messages: camelCase, ids as strings, values converted."""
        client = clients()
        with capture() as events:
            client.track(7, "Order Completed", {"total": Decimal("42.50")})

        [message] = events.messages
        assert ("7", "42.50") == (message["userId"], message["properties"]["total"])
        assert 0 == client.stats()["enqueued"]

    def test_every_client_of_the_process(self, clients: Clients) -> None:
        """Two clients, one capture."""
        first, second = clients(), clients(send=False)
        with capture() as events:
            first.track("u1", "A")
            second.identify("u2", {"plan": "pro"})

        assert ["track", "identify"] == [m["type"] for m in events.messages]

    def test_logging_spans_decorators_and_snapshots(
        self, client: Client, tracer: Tracer, app_logger: logging.Logger
    ) -> None:
        """Each source's messages arrive in the capture."""
        app_logger.addHandler(SegmentHandler(client=client))

        @tracked("Report Generated", user_id="user", client=client)
        def generate(user: str) -> None:
            del user

        with capture() as events:
            app_logger.info("Signed Up", extra={"segment": {"user_id": "u1"}})
            end_span(tracer, "checkout", {"segment.event": "Checkout", "enduser.id": "u1"})
            generate("u1")
            snapshot(3600, group_id="g1", client=client)(lambda: {"nodes": 3})
            client.shutdown(5)  # the snapshot reports at shutdown

        assert ["Signed Up", "Checkout", "Report Generated"] == [m["event"] for m in events.tracks]
        assert [{"nodes": 3}] == [m["traits"] for m in events.of_type("group")]

    def test_after_before_send_and_super_properties(self, clients: Clients) -> None:
        """The capture sees what the hooks made of the message; filtered ones not at all."""

        def hook(message: dict[str, Any]) -> dict[str, Any] | None:
            return None if message["event"] == "Noise" else message

        client = clients(before_send=hook, super_properties={"app": "shop"})
        with capture() as events:
            client.track("u1", "Noise")
            client.track("u1", "Kept")

        assert [("Kept", {"app": "shop"})] == [(m["event"], m["properties"]) for m in events.tracks]

    def test_a_dropped_plan_violation_is_not_captured(self, clients: Clients) -> None:
        """``on_violation="drop"``: not on the wire, so not in the capture."""
        plan = TrackingPlan.from_dict({"events": {"A": {"required": ["x"]}}})
        client = clients(plan=plan, on_violation="drop")
        with capture() as events:
            client.track("u1", "A", {})

        assert [] == events.messages

    def test_deliver_also_sends(self, clients: Clients, segment_server: ScriptedServer) -> None:
        """``deliver=True``: captured and delivered to the server."""
        client = clients()
        with capture(deliver=True) as events:
            client.track("u1", "A")

        [sent] = delivered(client, segment_server, 1)
        assert [sent["messageId"]] == [m["messageId"] for m in events.messages]

    def test_nested_captures_both_see_messages(self, clients: Clients) -> None:
        """An inner capture does not steal from an outer one; the flag clears at the end."""
        client = clients(send=False)
        with capture() as outer:
            client.track("u1", "A")
            with capture() as inner:
                client.track("u1", "B")
            client.track("u1", "C")

        assert ["A", "B", "C"] == [m["event"] for m in outer.tracks]
        assert ["B"] == [m["event"] for m in inner.tracks]
        assert not capture_registry.active

    def test_sync_mode_sends_nothing_while_captured(
        self, clients: Clients, segment_server: ScriptedServer
    ) -> None:
        """A sync_mode client is captured too, without a request."""
        client = clients(sync_mode=True)
        with capture() as events:
            ok, _ = client.track("u1", "A")

        assert ok
        assert ["A"] == [m["event"] for m in events.tracks]
        assert [] == segment_server.messages

    def test_messages_after_the_block_are_not_captured(self, clients: Clients) -> None:
        """The capture ends with the block; what it saw stays readable."""
        client = clients(send=False)
        with capture() as events:
            client.track("u1", "A")
        client.track("u1", "B")

        assert 1 == len(events)


class TestEvents:
    """Accessors and assert_tracked."""

    @pytest.fixture
    def events(self, clients: Clients) -> Events:
        """A capture of one identify, two tracks and a group."""
        client = clients(send=False)
        with capture() as events:
            client.identify("u1", {"plan": "pro"})
            client.track("u1", "Order Completed", {"total": 42.5, "sku": "A-1"})
            client.track("u2", "Signed Up", {"plan": "free"})
            client.group("u1", "g1", {"seats": 3})
        return events

    def test_accessors(self, events: Events) -> None:
        """messages, tracks, identifies, of_type and clear."""
        assert 4 == len(events.messages)
        assert ["Order Completed", "Signed Up"] == [m["event"] for m in events.tracks]
        assert ["u1"] == [m["userId"] for m in events.identifies]
        assert ["g1"] == [m["groupId"] for m in events.of_type("group")]
        assert "<Events: 1 identify, 2 track, 1 group>" == repr(events)
        events.clear()
        assert [] == events.messages

    def test_assert_tracked_matches_a_subset(self, events: Events) -> None:
        """Properties are matched as a subset; the matching message is returned."""
        message = events.assert_tracked("Order Completed", user_id="u1", properties={"total": 42.5})

        assert "A-1" == message["properties"]["sku"]

    def test_assert_tracked_says_what_was_tracked_instead(self, events: Events) -> None:
        """A failure lists every track that was sent."""
        with pytest.raises(AssertionError) as failed:
            events.assert_tracked("Order Completed", properties={"total": 99})

        text = str(failed.value)
        assert "tracked instead" in text
        assert '"total": 42.5' in text
        assert '"event": "Signed Up"' in text

    def test_assert_tracked_with_nothing_tracked(self) -> None:
        """With no track at all, the failure says so."""
        with capture() as events, pytest.raises(AssertionError, match="no track was sent"):
            events.assert_tracked("Anything")

    def test_ids_compare_as_sent(self, events: Events) -> None:
        """A wrong user id does not match; anonymous_id=None matches an absent one."""
        with pytest.raises(AssertionError):
            events.assert_tracked("Signed Up", user_id="u1")
        events.assert_tracked("Signed Up", user_id="u2", anonymous_id=None)


class TestPytestPlugin:
    """The ``segment_events`` fixture, registered through the pytest11 entry point."""

    def test_the_fixture_captures(self, segment_events: Events, clients: Clients) -> None:
        """The fixture is a capture open for the test."""
        clients(send=False).track("u1", "Order Completed", {"total": 1})

        segment_events.assert_tracked("Order Completed", properties={"total": 1})

    def test_the_entry_point_names_the_module(self) -> None:
        """Pytest finds the plugin through the package's metadata."""
        from importlib.metadata import entry_points  # noqa: PLC0415

        names = {ep.name: ep.value for ep in entry_points(group="pytest11")}

        assert "otel_segment.testing" == names["otel_segment"]


class TestTestingExample:
    """examples/testing_analytics.py: its tests pass under pytest, fixture included."""

    def test_its_tests_pass(self) -> None:
        """Run as a script, it runs pytest on itself: three tests pass."""
        example = Path(__file__).resolve().parent.parent / "examples" / "testing_analytics.py"
        done = subprocess.run(
            [sys.executable, str(example)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

        assert 0 == done.returncode, done.stdout + done.stderr
        assert "3 passed" in done.stdout
