"""
A large protobuf request is parsed slice by slice, and maps exactly as when parsed whole.

The slices hold the records, in order, under their own resource; a body broken late is
refused whole (400) with nothing of it queued.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
import requests
from _gateway import gateway_client, logs_request, serving, spans_request, tracks
from google.protobuf.message import DecodeError
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from otel_segment.gateway.records import log_records, spans
from otel_segment.gateway.wire import SLICE_BYTES, Sliced
from otel_segment.sink import Sink

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    from otel_segment.gateway import Gateway

_RECORD = st.fixed_dictionaries(
    {
        "event_name": st.sampled_from(["", "Signed Up"]),
        "attributes": st.dictionaries(
            st.sampled_from(["enduser.id", "segment.event", "segment.properties.n", "pad"]),
            st.text(max_size=30) | st.integers(min_value=-(2**63), max_value=2**63 - 1),
        ),
    },
)
_RESOURCES = st.lists(
    st.tuples(st.text(max_size=8), st.lists(_RECORD, max_size=12)), min_size=1, max_size=3
)


def _request(resources: list[tuple[str, list[Mapping[str, Any]]]]) -> ExportLogsServiceRequest:
    """A logs request with one resource (of that service name) per entry."""
    request = ExportLogsServiceRequest()
    for service, records in resources:
        part = logs_request(records, {"service.name": service}).resource_logs[0]
        request.resource_logs.append(part)
    return request


@pytest.fixture
def sink() -> Iterator[Sink]:
    """The gateway's sink."""
    with Sink() as running:
        yield running


@pytest.fixture
def gateway(sink: Sink) -> Iterator[Gateway]:
    """A gateway whose queue takes 20,000 messages."""
    with serving(gateway_client(sink.url, max_queue_size=20_000), grpc=None) as running:
        yield running


def _post(gateway: Gateway, body: bytes) -> requests.Response:
    return requests.post(
        f"http://127.0.0.1:{gateway.http_port}/v1/logs",
        data=body,
        headers={"Content-Type": "application/x-protobuf"},
        timeout=30,
    )


class TestSliced:
    """Slices of a request hold its records, in order, under their own resource."""

    @given(_RESOURCES, st.integers(min_value=1, max_value=400))
    def test_log_records_map_as_when_whole(
        self, resources: list[tuple[str, list[Mapping[str, Any]]]], slice_bytes: int
    ) -> None:
        """Any slice size: the same mapped records, messageIds included."""
        request = _request(resources)
        sliced = Sliced(ExportLogsServiceRequest, request.SerializeToString(), slice_bytes)
        parts = [part for part in sliced if isinstance(part, ExportLogsServiceRequest)]
        assert list(log_records(request)) == [m for part in parts for m in log_records(part)]

    def test_spans_map_as_when_whole(self) -> None:
        """Spans are sliced by the same rules (the same field numbers)."""
        request = spans_request(
            [{"attributes": {"segment.event": "E", "enduser.id": f"u{n}"}} for n in range(40)]
        )
        sliced = Sliced(type(request), request.SerializeToString(), 300)
        parts = [part for part in sliced if isinstance(part, ExportTraceServiceRequest)]
        assert 1 < len(parts)
        assert list(spans(request)) == [m for part in parts for m in spans(part)]

    @pytest.mark.parametrize("cut", [1, 3, 1000])
    def test_a_truncated_body_is_refused(self, cut: int) -> None:
        """A body cut short raises DecodeError when its slices are read."""
        body = tracks(100).SerializeToString()[:-cut]
        with pytest.raises(DecodeError):
            list(Sliced(ExportLogsServiceRequest, body, 500))


class TestLargeBodies:
    """Through the gateway, a body over SLICE_BYTES is taken all or nothing."""

    def test_every_record_arrives(self, gateway: Gateway, sink: Sink) -> None:
        """9,000 tracks in a body over SLICE_BYTES: 9,000 messages, each once."""
        body = tracks(9000, pad="x" * 40).SerializeToString()
        assert SLICE_BYTES < len(body)
        assert 200 == _post(gateway, body).status_code
        assert gateway.client.flush(20)
        assert sink.wait_for_messages(9000, 20)
        assert list(range(9000)) == sorted(m["properties"]["seq"] for m in sink.messages)

    def test_a_body_broken_late_queues_nothing(self, gateway: Gateway, sink: Sink) -> None:
        """Garbage after valid slices: 400, and none of the valid records is queued."""
        body = tracks(9000, pad="x" * 40).SerializeToString()
        response = _post(gateway, body[:-5] + b"\xff" * 5)
        assert 400 == response.status_code
        assert 200 == _post(gateway, tracks(1, start=7).SerializeToString()).status_code
        assert gateway.client.flush(10)
        assert sink.wait_for_messages(1, 10)
        assert [7] == [m["properties"]["seq"] for m in sink.messages]
