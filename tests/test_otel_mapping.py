"""Tests for the OpenTelemetry span mapping: each call, fields, fallbacks, events, context."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import pytest
from _helpers import delivered, fields
from _otel import SendSpan, end_span
from opentelemetry.sdk.trace.export import (
    SimpleSpanProcessor,
)
from opentelemetry.trace import Status, StatusCode

import otel_segment
from otel_segment import Client, SegmentSpanExporter, SegmentSpanProcessor
from otel_segment.sources.otel_mapping import span_messages

if TYPE_CHECKING:
    from _server import ScriptedServer
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import Tracer

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def _iso(time_unix_nano: int) -> str:
    """The wire timestamp of a time in nanoseconds (milliseconds, truncated)."""
    return (EPOCH + dt.timedelta(milliseconds=time_unix_nano // 1_000_000)).isoformat(
        timespec="milliseconds"
    )


class TestTrack:
    """A span marked with segment.event (or segment.type=track) becomes a track."""

    def test_track_from_span(
        self,
        send_span: SendSpan,
        finished: InMemorySpanExporter,
    ) -> None:
        """Event, user, flattened properties, duration, status, end time, trace and app."""
        attributes = {
            "segment.event": "Order Completed",
            "enduser.id": "u1",
            "segment.properties.total": 42.5,
            "segment.properties.currency": "EUR",
            "http.route": "/checkout",
        }
        [message] = send_span("checkout", attributes)

        [span] = finished.get_finished_spans()
        assert span.end_time is not None
        assert span.start_time is not None
        duration_ms = round((span.end_time - span.start_time) / 1e6, 3)
        assert ("track", "Order Completed", "u1") == fields(message, "type", "event", "userId")
        assert {
            "total": 42.5,
            "currency": "EUR",
            "duration_ms": duration_ms,
            "status": "unset",
            "error": False,
        } == message["properties"]
        assert _iso(span.end_time) == message["timestamp"]
        assert {
            "trace_id": format(span.context.trace_id, "032x"),
            "span_id": format(span.context.span_id, "016x"),
        } == message["context"]["trace"]
        assert {"name": "shop", "version": "1.2.3"} == message["context"]["app"]
        assert "otel-segment" == message["context"]["library"]["name"]

    def test_type_alone_uses_span_name(self, send_span: SendSpan) -> None:
        """With only segment.type=track, the event is the span's name."""
        [message] = send_span("Report Generated", {"segment.type": "track", "user.id": 7})

        assert ("Report Generated", "7") == (message["event"], message["userId"])

    def test_error_status(
        self, tracer: Tracer, client: Client, segment_server: ScriptedServer
    ) -> None:
        """A span ending in error says so in the track's properties."""
        with tracer.start_as_current_span("pay", attributes={"segment.event": "Paid"}) as span:
            span.set_attribute("enduser.id", "u1")
            span.set_status(Status(StatusCode.ERROR, "card declined"))

        [message] = delivered(client, segment_server)
        properties = message["properties"]
        assert ("error", True, "card declined") == fields(
            properties, "status", "error", "error_message"
        )

    def test_own_properties_win(self, send_span: SendSpan) -> None:
        """segment.properties.* override the span's computed duration and status."""
        attributes = {
            "segment.event": "E",
            "enduser.id": "u1",
            "segment.properties.status": "shipped",
            "segment.properties.duration_ms": 1,
        }
        [message] = send_span("s", attributes)

        assert ("shipped", 1) == fields(message["properties"], "status", "duration_ms")


class TestOtherTypes:
    """segment.type picks the call; each takes only its own fields."""

    def test_identify(self, send_span: SendSpan) -> None:
        """segment.traits.* flatten into traits; properties are not an identify field."""
        attributes = {
            "segment.type": "identify",
            "segment.user_id": "u1",
            "segment.traits.plan": "pro",
            "segment.traits.seats": 5,
            "segment.properties.ignored": True,
        }
        [message] = send_span("login", attributes)

        assert ("identify", "u1", {"plan": "pro", "seats": 5}) == fields(
            message, "type", "userId", "traits"
        )
        assert "properties" not in message

    @pytest.mark.parametrize("kind", ["page", "screen"])
    def test_page_and_screen(self, kind: str, send_span: SendSpan) -> None:
        """Name and category come from segment.name / segment.category."""
        attributes = {
            "segment.type": kind,
            "session.id": "anon-1",
            "segment.name": "Pricing",
            "segment.category": "Docs",
            "segment.properties.path": "/pricing",
        }
        [message] = send_span("GET /pricing", attributes)

        assert (kind, "anon-1", "Pricing", "Docs", {"path": "/pricing"}) == fields(
            message, "type", "anonymousId", "name", "category", "properties"
        )

    def test_page_name_defaults_to_span_name(self, send_span: SendSpan) -> None:
        """Without segment.name, a page is named after its span."""
        [message] = send_span("Home", {"segment.type": "page", "enduser.id": "u1"})

        assert ("Home", None) == (message["name"], message["category"])

    def test_group(self, send_span: SendSpan) -> None:
        """segment.group_id and segment.traits.* make a group call."""
        attributes = {
            "segment.type": "group",
            "enduser.id": "u1",
            "segment.group_id": "acme",
            "segment.traits.employees": 42,
        }
        [message] = send_span("join", attributes)

        assert ("group", "u1", "acme", {"employees": 42}) == fields(
            message, "type", "userId", "groupId", "traits"
        )

    def test_alias(self, send_span: SendSpan) -> None:
        """segment.previous_id and the user make an alias call."""
        attributes = {
            "segment.type": "alias",
            "segment.previous_id": "anon-7",
            "segment.user_id": "u1",
        }
        [message] = send_span("sign up", attributes)

        assert ("alias", "anon-7", "u1") == fields(message, "type", "previousId", "userId")


class TestFallbacks:
    """Who did it: segment.* first, then the semantic conventions."""

    @pytest.mark.parametrize(
        ("attributes", "expected"),
        [
            ({"segment.user_id": "s", "enduser.id": "e", "user.id": "u"}, ("s", None)),
            ({"enduser.id": "e", "user.id": "u"}, ("e", None)),
            ({"user.id": "u", "session.id": "sess"}, ("u", "sess")),
            ({"session.id": "sess"}, (None, "sess")),
            ({"segment.anonymous_id": "a", "session.id": "sess"}, (None, "a")),
        ],
    )
    def test_ids(
        self,
        attributes: dict[str, str],
        expected: tuple[str | None, str | None],
        send_span: SendSpan,
    ) -> None:
        """userId: segment.user_id, enduser.id, user.id; anonymousId: ..., session.id."""
        [message] = send_span("s", {"segment.event": "E", **attributes})

        assert expected == (message["userId"], message["anonymousId"])


class TestSpanEvents:
    """Span events with segment.* attributes become messages at their own time."""

    def test_marked_events(
        self,
        tracer: Tracer,
        client: Client,
        segment_server: ScriptedServer,
        finished: InMemorySpanExporter,
    ) -> None:
        """Each marked event is a message; the user comes from the span; others are ignored."""
        with tracer.start_as_current_span("checkout", attributes={"enduser.id": "u1"}) as span:
            span.add_event("coupon", {"segment.event": "Coupon Applied", "segment.properties.c": 1})
            span.add_event("cache miss", {"key": "x"})
            span.add_event("Cart Viewed", {"segment.type": "track"})

        messages = delivered(client, segment_server)
        [finished_span] = finished.get_finished_spans()
        events = [e for e in finished_span.events if e.name != "cache miss"]
        assert [("Coupon Applied", {"c": 1}), ("Cart Viewed", {})] == [
            (m["event"], m["properties"]) for m in messages
        ]
        assert [_iso(e.timestamp) for e in events] == [m["timestamp"] for m in messages]
        assert {"u1"} == {m["userId"] for m in messages}
        assert {format(finished_span.context.span_id, "016x")} == {
            m["context"]["trace"]["span_id"] for m in messages
        }

    def test_event_ids_win_over_span(
        self, tracer: Tracer, client: Client, segment_server: ScriptedServer
    ) -> None:
        """An event's own user wins; the marked span itself is a message too."""
        with tracer.start_as_current_span(
            "s", attributes={"segment.event": "Span", "enduser.id": "u1"}
        ) as span:
            span.add_event("e", {"segment.event": "Event", "segment.user_id": "u2"})

        messages = delivered(client, segment_server)
        assert [("Span", "u1"), ("Event", "u2")] == [(m["event"], m["userId"]) for m in messages]


class TestIgnored:
    """Unmarked spans cost a lookup and send nothing."""

    def test_mapping_of_unmarked_span(self, provider: TracerProvider) -> None:
        """The default mapping returns no message for an unmarked span."""
        span = provider.get_tracer("test").start_span("plain", attributes={"a": 1})
        span.end()

        assert [] == span_messages(span)  # type: ignore[arg-type]

    def test_unmarked_spans(
        self,
        tracer: Tracer,
        client: Client,
        segment_server: ScriptedServer,
        finished: InMemorySpanExporter,
    ) -> None:
        """Spans without markers (on them or their events) are not sent."""
        with tracer.start_as_current_span("plain", attributes={"enduser.id": "u1"}) as span:
            span.add_event("e", {"segment.properties.x": 1})

        assert [] == delivered(client, segment_server)
        assert 1 == len(finished.get_finished_spans())
        assert 0 == client.stats()["enqueued"]

    def test_unmarked_spans_build_no_default_client(self, provider: TracerProvider) -> None:
        """With no client given, an unmarked span does not even build the default client."""
        provider.add_span_processor(SegmentSpanProcessor())
        provider.add_span_processor(SimpleSpanProcessor(SegmentSpanExporter()))
        end_span(provider.get_tracer("test"), "plain", {"http.route": "/"})

        assert otel_segment.default_client is None
