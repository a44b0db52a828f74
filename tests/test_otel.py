"""Tests for the OpenTelemetry span mapping: each call, fields, fallbacks, events, context."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    SimpleSpanProcessor,
)
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode

import otel_segment
from otel_segment import Client, SegmentSpanExporter, SegmentSpanProcessor
from otel_segment._otel_mapping import span_messages

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    from _server import ScriptedServer
    from opentelemetry.trace import Tracer

RESOURCE = Resource.create({"service.name": "shop", "service.version": "1.2.3"})
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def _iso(time_unix_nano: int) -> str:
    """The wire timestamp of a time in nanoseconds (milliseconds, truncated)."""
    return (EPOCH + dt.timedelta(milliseconds=time_unix_nano // 1_000_000)).isoformat(
        timespec="milliseconds"
    )


@pytest.fixture
def client(segment_server: ScriptedServer) -> Iterator[Client]:
    """A client on the test server, shut down afterwards."""
    with Client("test-key", host=segment_server.url) as client:
        yield client


@pytest.fixture
def provider() -> Iterator[TracerProvider]:
    """A tracer provider with a service resource, shut down afterwards."""
    provider = TracerProvider(resource=RESOURCE, shutdown_on_exit=False)
    yield provider
    provider.shutdown()


@pytest.fixture
def finished(provider: TracerProvider) -> InMemorySpanExporter:
    """Every sampled span of *provider*, kept by the SDK's in-memory exporter."""
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return exporter


@pytest.fixture
def tracer(provider: TracerProvider, client: Client) -> Tracer:
    """A tracer whose spans go through a SegmentSpanProcessor on *client*."""
    provider.add_span_processor(SegmentSpanProcessor(client=client))
    return provider.get_tracer("test")


def _span(tracer: Tracer, name: str, attributes: Mapping[str, Any]) -> None:
    with tracer.start_as_current_span(name, attributes=dict(attributes)):
        pass


def _delivered(client: Client, server: ScriptedServer) -> list[dict[str, Any]]:
    assert client.flush(5)
    return server.messages


class TestTrack:
    """A span marked with segment.event (or segment.type=track) becomes a track."""

    def test_track_from_span(
        self,
        tracer: Tracer,
        client: Client,
        segment_server: ScriptedServer,
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
        _span(tracer, "checkout", attributes)

        [message] = _delivered(client, segment_server)
        [span] = finished.get_finished_spans()
        assert span.end_time is not None
        assert span.start_time is not None
        duration_ms = round((span.end_time - span.start_time) / 1e6, 3)
        assert ("track", "Order Completed", "u1") == (
            message["type"],
            message["event"],
            message["userId"],
        )
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

    def test_type_alone_uses_span_name(
        self, tracer: Tracer, client: Client, segment_server: ScriptedServer
    ) -> None:
        """With only segment.type=track, the event is the span's name."""
        _span(tracer, "Report Generated", {"segment.type": "track", "user.id": 7})

        [message] = _delivered(client, segment_server)
        assert ("Report Generated", "7") == (message["event"], message["userId"])

    def test_error_status(
        self, tracer: Tracer, client: Client, segment_server: ScriptedServer
    ) -> None:
        """A span ending in error says so in the track's properties."""
        with tracer.start_as_current_span("pay", attributes={"segment.event": "Paid"}) as span:
            span.set_attribute("enduser.id", "u1")
            span.set_status(Status(StatusCode.ERROR, "card declined"))

        [message] = _delivered(client, segment_server)
        properties = message["properties"]
        assert ("error", True, "card declined") == (
            properties["status"],
            properties["error"],
            properties["error_message"],
        )

    def test_own_properties_win(
        self, tracer: Tracer, client: Client, segment_server: ScriptedServer
    ) -> None:
        """segment.properties.* override the span's computed duration and status."""
        attributes = {
            "segment.event": "E",
            "enduser.id": "u1",
            "segment.properties.status": "shipped",
            "segment.properties.duration_ms": 1,
        }
        _span(tracer, "s", attributes)

        [message] = _delivered(client, segment_server)
        assert ("shipped", 1) == (
            message["properties"]["status"],
            message["properties"]["duration_ms"],
        )


class TestOtherTypes:
    """segment.type picks the call; each takes only its own fields."""

    def test_identify(self, tracer: Tracer, client: Client, segment_server: ScriptedServer) -> None:
        """segment.traits.* flatten into traits; properties are not an identify field."""
        attributes = {
            "segment.type": "identify",
            "segment.user_id": "u1",
            "segment.traits.plan": "pro",
            "segment.traits.seats": 5,
            "segment.properties.ignored": True,
        }
        _span(tracer, "login", attributes)

        [message] = _delivered(client, segment_server)
        assert ("identify", "u1", {"plan": "pro", "seats": 5}) == (
            message["type"],
            message["userId"],
            message["traits"],
        )
        assert "properties" not in message

    @pytest.mark.parametrize("kind", ["page", "screen"])
    def test_page_and_screen(
        self, kind: str, tracer: Tracer, client: Client, segment_server: ScriptedServer
    ) -> None:
        """Name and category come from segment.name / segment.category."""
        attributes = {
            "segment.type": kind,
            "session.id": "anon-1",
            "segment.name": "Pricing",
            "segment.category": "Docs",
            "segment.properties.path": "/pricing",
        }
        _span(tracer, "GET /pricing", attributes)

        [message] = _delivered(client, segment_server)
        assert (kind, "anon-1", "Pricing", "Docs", {"path": "/pricing"}) == (
            message["type"],
            message["anonymousId"],
            message["name"],
            message["category"],
            message["properties"],
        )

    def test_page_name_defaults_to_span_name(
        self, tracer: Tracer, client: Client, segment_server: ScriptedServer
    ) -> None:
        """Without segment.name, a page is named after its span."""
        _span(tracer, "Home", {"segment.type": "page", "enduser.id": "u1"})

        [message] = _delivered(client, segment_server)
        assert ("Home", None) == (message["name"], message["category"])

    def test_group(self, tracer: Tracer, client: Client, segment_server: ScriptedServer) -> None:
        """segment.group_id and segment.traits.* make a group call."""
        attributes = {
            "segment.type": "group",
            "enduser.id": "u1",
            "segment.group_id": "acme",
            "segment.traits.employees": 42,
        }
        _span(tracer, "join", attributes)

        [message] = _delivered(client, segment_server)
        assert ("group", "u1", "acme", {"employees": 42}) == (
            message["type"],
            message["userId"],
            message["groupId"],
            message["traits"],
        )

    def test_alias(self, tracer: Tracer, client: Client, segment_server: ScriptedServer) -> None:
        """segment.previous_id and the user make an alias call."""
        attributes = {
            "segment.type": "alias",
            "segment.previous_id": "anon-7",
            "segment.user_id": "u1",
        }
        _span(tracer, "sign up", attributes)

        [message] = _delivered(client, segment_server)
        assert ("alias", "anon-7", "u1") == (
            message["type"],
            message["previousId"],
            message["userId"],
        )


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
        tracer: Tracer,
        client: Client,
        segment_server: ScriptedServer,
    ) -> None:
        """userId: segment.user_id, enduser.id, user.id; anonymousId: ..., session.id."""
        _span(tracer, "s", {"segment.event": "E", **attributes})

        [message] = _delivered(client, segment_server)
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

        messages = _delivered(client, segment_server)
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

        messages = _delivered(client, segment_server)
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

        assert [] == _delivered(client, segment_server)
        assert 1 == len(finished.get_finished_spans())
        assert 0 == client.stats()["enqueued"]

    def test_unmarked_spans_build_no_default_client(
        self, provider: TracerProvider, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """With no client given, an unmarked span does not even build the default client."""
        monkeypatch.setattr(otel_segment, "default_client", None)
        provider.add_span_processor(SegmentSpanProcessor())
        provider.add_span_processor(SimpleSpanProcessor(SegmentSpanExporter()))
        _span(provider.get_tracer("test"), "plain", {"http.route": "/"})

        assert otel_segment.default_client is None
