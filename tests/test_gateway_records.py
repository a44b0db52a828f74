"""
The gateway maps OTLP exactly as the in-process bridges map SDK spans and log records.

The same spans and log records go through SegmentSpanProcessor / SegmentLogExporter
and, through the OpenTelemetry SDK's own OTLP/HTTP exporters, through the gateway; the
messages that reach the two sinks are equal but for the messageIds of log records
(a span's is derived from its ids, in process and through the gateway alike).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest
import requests
from _gateway import (
    gateway_client,
    key_values,
    logs_request,
    otlp_json,
    serving,
    spans_request,
)
from _helpers import WRITE_KEY
from _otel import RESOURCE, shut_down_after
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import Status, StatusCode

from otel_segment import Client, SegmentLogExporter, SegmentSpanProcessor
from otel_segment.gateway.records import attributes, log_records
from otel_segment.sink import Sink

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    from otel_segment.gateway import Gateway

_EVERY_KIND: dict[str, Any] = {
    "text": "ünïcode",
    "flag": True,
    "count": 2**62 + 1,  # beyond 2**53: must stay exact
    "negative": -(2**63),
    "ratio": 0.1,
    "words": ["a", "b"],
    "numbers": [1, 2, 3],
}


@pytest.fixture
def sinks() -> Iterator[tuple[Sink, Sink]]:
    """Two sinks: the in-process bridges' and the gateway's."""
    with Sink() as direct, Sink() as through_gateway:
        yield direct, through_gateway


@pytest.fixture
def direct_client(sinks: tuple[Sink, Sink]) -> Iterator[Client]:
    """The in-process bridges' client."""
    with Client(WRITE_KEY, sinks[0].url, flush_interval=0.05) as client:
        yield client


@pytest.fixture
def gateway(sinks: tuple[Sink, Sink]) -> Iterator[Gateway]:
    """A gateway delivering to the second sink."""
    with serving(gateway_client(sinks[1].url), grpc=None) as running:
        yield running


def _comparable(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The messages without messageId, in a stable order."""
    kept = [{k: v for k, v in message.items() if k != "messageId"} for message in messages]
    return sorted(kept, key=lambda m: (m["timestamp"], m["type"], str(m.get("event"))))


def _ids(messages: list[dict[str, Any]]) -> set[str]:
    return {message["messageId"] for message in messages}


def _both(gateway: Gateway, client: Client, sinks: tuple[Sink, Sink], n: int) -> tuple[Any, Any]:
    assert client.flush(10)
    assert gateway.client.flush(10)
    assert sinks[0].wait_for_messages(n, 10)
    assert sinks[1].wait_for_messages(n, 10)
    return _comparable(sinks[0].messages), _comparable(sinks[1].messages)


class TestSameMapping:
    """One mapping: in process and through the gateway, the same messages."""

    def test_spans(self, gateway: Gateway, direct_client: Client, sinks: tuple[Sink, Sink]) -> None:
        """Tracks, every other type, span events, errors and attribute kinds map alike."""
        exporter = OTLPSpanExporter(endpoint=f"http://127.0.0.1:{gateway.http_port}/v1/traces")
        provider = TracerProvider(resource=RESOURCE, shutdown_on_exit=False)
        provider.add_span_processor(SegmentSpanProcessor(client=direct_client))
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        tracer = provider.get_tracer("test")
        props = {f"segment.properties.{k}": v for k, v in _EVERY_KIND.items()}
        with tracer.start_as_current_span(
            "checkout", attributes={"segment.event": "Order Completed", "enduser.id": "u1", **props}
        ) as span:
            span.add_event("Coupon Applied", {"segment.event": "Coupon Applied", "code": "X"})
            with tracer.start_as_current_span(
                "fail", attributes={"segment.event": "Payment Failed", "user.id": "u2"}
            ) as failing:
                failing.set_status(Status(StatusCode.ERROR, "card declined"))
        others: list[tuple[str, dict[str, str | int]]] = [
            ("identify", {"segment.traits.plan": "pro"}),
            ("page", {"segment.name": "Pricing", "segment.category": "Docs"}),
            ("screen", {}),
            ("group", {"segment.group_id": "g1", "segment.traits.size": 12}),
            ("alias", {"segment.previous_id": "anon-1"}),
        ]
        for kind, extra in others:
            attrs = {"segment.type": kind, "enduser.id": "u3", "session.id": "s1", **extra}
            with tracer.start_as_current_span(f"{kind}-span", attributes=attrs):
                pass
        with tracer.start_as_current_span("unmarked", attributes={"http.route": "/"}):
            pass
        provider.shutdown()
        direct, through_gateway = _both(gateway, direct_client, sinks, 8)
        assert 8 == len(through_gateway)
        assert direct == through_gateway
        assert _ids(sinks[0].messages) == _ids(sinks[1].messages)

    def test_log_records(
        self, gateway: Gateway, direct_client: Client, sinks: tuple[Sink, Sink]
    ) -> None:
        """Event names, markers, bodies, trace ids and attribute kinds map alike."""
        exporter = OTLPLogExporter(endpoint=f"http://127.0.0.1:{gateway.http_port}/v1/logs")
        providers = iter(shut_down_after(LoggerProvider(resource=RESOURCE)))
        provider = next(providers)
        provider.add_log_record_processor(
            SimpleLogRecordProcessor(SegmentLogExporter(client=direct_client))
        )
        provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
        logger = provider.get_logger("test")
        tracer = TracerProvider(shutdown_on_exit=False).get_tracer("test")
        with tracer.start_as_current_span("request"):
            logger.emit(
                event_name="Signed Up",
                attributes={"enduser.id": "u1", "segment.properties.plan": "pro"},
            )
        logger.emit(
            body={"cart": {"items": 3}, "note": "b"},
            attributes={"segment.event": "Cart Viewed", "user.id": "u2"},
        )
        logger.emit(body="Pricing", attributes={"segment.type": "page", "session.id": "s9"})
        logger.emit(
            body="x",
            attributes={
                "otel.event.name": "Seen",
                "enduser.id": "u4",
                **{f"segment.properties.{k}": v for k, v in _EVERY_KIND.items()},
            },
        )
        logger.emit(body="not analytics", attributes={"enduser.id": "u5"})
        next(providers, None)
        direct, through_gateway = _both(gateway, direct_client, sinks, 4)
        assert 4 == len(through_gateway)
        assert direct == through_gateway


_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False)
    | st.text()
    | st.binary()
)
_ANY_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


class TestAttributeValues:
    """Every AnyValue kind becomes the value the SDK would hold."""

    @given(st.dictionaries(st.text(), _ANY_VALUES, max_size=6))
    def test_any_value_trees_convert_exactly(self, values: dict[str, Any]) -> None:
        """Any nesting of AnyValues converts to the same Python values, exactly."""
        assert values == attributes(key_values(values))

    def test_every_any_value_kind(self) -> None:
        """Strings, bools, int64 (exact), doubles, bytes, arrays, key-value lists, empty."""
        request = logs_request(
            [{"attributes": {**_EVERY_KIND, "raw": b"\x00\xff", "nested": {"a": [1, {"b": None}]}}}]
        )
        record = request.resource_logs[0].scope_logs[0].log_records[0]
        expected = {**_EVERY_KIND, "raw": b"\x00\xff", "nested": {"a": [1, {"b": None}]}}
        assert expected == attributes(record.attributes)

    def test_on_the_wire(self, gateway: Gateway, sinks: tuple[Sink, Sink]) -> None:
        """Bytes go out as text or base64, big ints exactly, nested values as JSON."""
        props = {
            "segment.properties.raw": b"\x00\xff",
            "segment.properties.utf8": "é".encode(),
            "segment.properties.big": 2**63 - 1,
            "segment.properties.nested": {"a": [1.5, {"b": True}]},
        }
        request = spans_request(
            [{"attributes": {"segment.event": "E", "enduser.id": "u", **props}}]
        )
        response = requests.post(
            f"http://127.0.0.1:{gateway.http_port}/v1/traces",
            data=request.SerializeToString(),
            headers={"Content-Type": "application/x-protobuf"},
            timeout=10,
        )
        assert 200 == response.status_code
        assert gateway.client.flush(10)
        assert sinks[1].wait_for_messages(1, 10)
        properties = sinks[1].messages[0]["properties"]
        assert ("AP8=", "é", 2**63 - 1, {"a": [1.5, {"b": True}]}) == (
            properties["raw"],
            properties["utf8"],
            properties["big"],
            properties["nested"],
        )


def _post(gateway: Gateway, path: str, body: bytes, kind: str) -> None:
    response = requests.post(
        f"http://127.0.0.1:{gateway.http_port}{path}",
        data=body,
        headers={"Content-Type": kind},
        timeout=10,
    )
    assert 200 == response.status_code


def _mapped_ids(records: list[Mapping[str, Any]]) -> list[str]:
    """The messageIds the gateway gives *records* (one logs request)."""
    found: list[str] = []
    for mapped in log_records(logs_request(records)):
        assert isinstance(mapped, list)
        found.extend(fields["message_id"] for _kind, fields in mapped)
    return found


_RECORDS = st.lists(
    st.fixed_dictionaries(
        {
            "event_name": st.sampled_from(["Signed Up", "Seen"]),
            "time_unix_nano": st.integers(min_value=0, max_value=2**64 - 1),
            "attributes": st.dictionaries(st.sampled_from(["a", "b", "user.id"]), _SCALARS),
        },
        optional={"body": _ANY_VALUES, "trace_id": st.binary(min_size=16, max_size=16)},
    ),
    max_size=8,
)


class TestMessageIds:
    """A record sent twice gets the same messageId twice, so Segment drops the copy."""

    def test_log_records_sent_twice(self, gateway: Gateway, sinks: tuple[Sink, Sink]) -> None:
        """The same logs request as protobuf, again, then as OTLP JSON: the same three ids."""
        request = logs_request(
            [{"event_name": "Signed Up", "attributes": {"enduser.id": f"u{n}"}} for n in range(3)]
        )
        protobuf = request.SerializeToString()
        _post(gateway, "/v1/logs", protobuf, "application/x-protobuf")
        _post(gateway, "/v1/logs", protobuf, "application/x-protobuf")
        _post(gateway, "/v1/logs", json.dumps(otlp_json(request)).encode(), "application/json")
        assert gateway.client.flush(10)
        assert sinks[1].wait_for_messages(9, 10)
        ids = [message["messageId"] for message in sinks[1].messages]
        assert 3 == len(set(ids))
        assert [ids[:3]] * 3 == [ids[0:3], ids[3:6], ids[6:9]]

    def test_spans_sent_twice(self, gateway: Gateway, sinks: tuple[Sink, Sink]) -> None:
        """A span and its marked events: one id each, the same on a retry (protobuf, JSON)."""
        request = spans_request(
            [{"attributes": {"segment.event": "E", "enduser.id": f"u{n}"}} for n in range(2)]
        )
        event = request.resource_spans[0].scope_spans[0].spans[0].events.add()
        event.name = "Coupon Applied"
        event.time_unix_nano = 1
        event.attributes.extend(key_values({"segment.event": "Coupon Applied"}))
        protobuf = request.SerializeToString()
        _post(gateway, "/v1/traces", protobuf, "application/x-protobuf")
        _post(gateway, "/v1/traces", json.dumps(otlp_json(request)).encode(), "application/json")
        assert gateway.client.flush(10)
        assert sinks[1].wait_for_messages(6, 10)
        ids = [message["messageId"] for message in sinks[1].messages]
        assert 3 == len(set(ids))
        assert ids[:3] == ids[3:]

    def test_own_message_id_wins(self) -> None:
        """A record's segment.message_id attribute is its messageId."""
        records: list[Mapping[str, Any]] = [
            {"event_name": "Seen", "attributes": {"segment.message_id": "mine"}}
        ]
        assert ["mine"] == _mapped_ids(records)

    @given(_RECORDS)
    def test_distinct_records_get_distinct_ids(self, records: list[Mapping[str, Any]]) -> None:
        """Records that differ in anything get different ids; identical ones the same."""
        ids = _mapped_ids(records)
        for first, one in enumerate(records):
            for second, other in enumerate(records):
                assert (ids[first] == ids[second]) == (_same(one, other))

    def test_identical_records_share_an_id(self) -> None:
        """Two records alike to the nanosecond cannot be told apart: Segment keeps one."""
        record = {"event_name": "Seen", "time_unix_nano": 5, "attributes": {"a": 1}}
        first, second = _mapped_ids([record, record])
        assert first == second


def _same(one: Mapping[str, Any], other: Mapping[str, Any]) -> bool:
    """Whether two entries make byte-identical log records."""
    return logs_request([one]).SerializeToString() == logs_request([other]).SerializeToString()
