"""OTLP/gRPC front end of the gateway: the Logs and Trace services."""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING

import grpc
import h2.connection
import pytest
from _gateway import gateway_client, logs_request, serving, spans_request, tracks
from google.rpc.error_details_pb2 import RetryInfo
from google.rpc.status_pb2 import Status
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_segment.sink import Sink

if TYPE_CHECKING:
    from collections.abc import Iterator

    from _server import ScriptedServer

    from otel_segment.gateway import Gateway

LOGS_EXPORT = "/opentelemetry.proto.collector.logs.v1.LogsService/Export"
TRACES_EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


@pytest.fixture
def sink() -> Iterator[Sink]:
    """A local Segment sink, closed afterwards."""
    with Sink() as running:
        yield running


@pytest.fixture
def channel_to() -> Iterator[list[grpc.Channel]]:
    """Channels opened by a test, closed afterwards."""
    channels: list[grpc.Channel] = []
    yield channels
    for channel in channels:
        channel.close()


def call(
    channels: list[grpc.Channel], gateway: Gateway, method: str, body: bytes, **options: object
) -> bytes:
    """Call *method* of the gateway with a raw *body*; the raw response."""
    channel = grpc.insecure_channel(f"127.0.0.1:{gateway.grpc_port}")
    channels.append(channel)
    stub = channel.unary_unary(method, request_serializer=bytes, response_deserializer=bytes)
    response: bytes = stub(body, timeout=10, **options)  # type: ignore[arg-type]
    return response


class TestExport:
    """Accepted requests and their answers."""

    def test_logs_are_delivered(self, sink: Sink, channel_to: list[grpc.Channel]) -> None:
        """A logs export becomes messages; the answer is an empty export response."""
        with serving(gateway_client(sink.url), http=None) as gateway:
            body = tracks(3).SerializeToString()
            answer = call(channel_to, gateway, LOGS_EXPORT, body)
            assert ExportLogsServiceResponse() == ExportLogsServiceResponse.FromString(answer)
            assert gateway.client.flush(10)
            assert [0, 1, 2] == sorted(m["properties"]["seq"] for m in sink.messages)

    def test_gzip_and_partial_success(self, sink: Sink, channel_to: list[grpc.Channel]) -> None:
        """A gzip-compressed call; an invalid span is named in a partial success."""
        with serving(gateway_client(sink.url)) as gateway:
            request = spans_request(
                [
                    {"attributes": {"segment.event": "E", "enduser.id": "u1"}},
                    {"attributes": {"segment.type": "alias"}},
                ]
            )
            answer = ExportTraceServiceResponse.FromString(
                call(
                    channel_to,
                    gateway,
                    TRACES_EXPORT,
                    request.SerializeToString(),
                    compression=grpc.Compression.Gzip,
                )
            )
            assert 1 == answer.partial_success.rejected_spans
            assert gateway.client.flush(10)
            assert ["u1"] == [m["userId"] for m in sink.messages]

    def test_the_sdk_exporter(self, sink: Sink) -> None:
        """The OpenTelemetry SDK's own OTLP/gRPC exporter is answered SUCCESS."""
        finished = InMemorySpanExporter()
        provider = TracerProvider(shutdown_on_exit=False)
        provider.add_span_processor(SimpleSpanProcessor(finished))
        attributes = {"segment.event": "E", "enduser.id": "u"}
        with provider.get_tracer("t").start_as_current_span("s", attributes=attributes):
            pass
        provider.shutdown()
        with serving(gateway_client(sink.url), http=None) as gateway:
            exporter = OTLPSpanExporter(endpoint=f"127.0.0.1:{gateway.grpc_port}", insecure=True)
            try:
                assert SpanExportResult.SUCCESS == exporter.export(finished.get_finished_spans())
            finally:
                exporter.shutdown()
            assert gateway.client.flush(10)
            assert ["E"] == [m["event"] for m in sink.messages]


class TestRefusals:
    """Bad input, tokens and a full queue: the gRPC codes OTLP prescribes."""

    def test_garbage_is_invalid_argument(self, sink: Sink, channel_to: list[grpc.Channel]) -> None:
        """A body that is not protobuf: INVALID_ARGUMENT; the gateway keeps serving."""
        with serving(gateway_client(sink.url)) as gateway:
            with pytest.raises(grpc.RpcError) as caught:
                call(channel_to, gateway, LOGS_EXPORT, b"\xff\xff\xff garbage")
            assert grpc.StatusCode.INVALID_ARGUMENT == caught.value.code()
            call(channel_to, gateway, LOGS_EXPORT, tracks(1).SerializeToString())

    def test_oversize_is_resource_exhausted(
        self, sink: Sink, channel_to: list[grpc.Channel]
    ) -> None:
        """A message over max_body_bytes is refused by gRPC itself."""
        with serving(gateway_client(sink.url), max_body_bytes=1024) as gateway:
            with pytest.raises(grpc.RpcError) as caught:
                call(channel_to, gateway, LOGS_EXPORT, tracks(100).SerializeToString())
            assert grpc.StatusCode.RESOURCE_EXHAUSTED == caught.value.code()

    def test_a_gzip_bomb_is_resource_exhausted(
        self, sink: Sink, channel_to: list[grpc.Channel]
    ) -> None:
        """The limit holds after decompression: a small gzip call that inflates past it."""
        with serving(gateway_client(sink.url), max_body_bytes=64 * 1024) as gateway:
            bomb = logs_request([{"attributes": {"padding": "\0" * (8 * 1024 * 1024)}}])
            with pytest.raises(grpc.RpcError) as caught:
                call(
                    channel_to,
                    gateway,
                    LOGS_EXPORT,
                    bomb.SerializeToString(),
                    compression=grpc.Compression.Gzip,
                )
            assert grpc.StatusCode.RESOURCE_EXHAUSTED == caught.value.code()
            call(channel_to, gateway, LOGS_EXPORT, tracks(1).SerializeToString())

    def test_token(self, sink: Sink, channel_to: list[grpc.Channel]) -> None:
        """Without the token: UNAUTHENTICATED; with it in the metadata: accepted."""
        with serving(gateway_client(sink.url), token="s3cret") as gateway:  # noqa: S106
            body = tracks(1).SerializeToString()
            with pytest.raises(grpc.RpcError) as caught:
                call(
                    channel_to,
                    gateway,
                    LOGS_EXPORT,
                    body,
                    metadata=(("authorization", "Bearer no"),),
                )
            assert grpc.StatusCode.UNAUTHENTICATED == caught.value.code()
            call(
                channel_to,
                gateway,
                LOGS_EXPORT,
                body,
                metadata=(("authorization", "Bearer s3cret"),),
            )
            assert 1 == gateway.client.stats()["enqueued"]

    def test_full_queue_is_resource_exhausted_with_retry_info(
        self, segment_server: ScriptedServer, channel_to: list[grpc.Channel]
    ) -> None:
        """A full queue: RESOURCE_EXHAUSTED with RetryInfo, and nothing of it queued."""
        segment_server.hang(1.0)
        client = gateway_client(segment_server.url, max_queue_size=8, max_in_flight=1, flush_at=1)
        with serving(client) as gateway:
            call(channel_to, gateway, LOGS_EXPORT, tracks(5).SerializeToString())
            assert segment_server.wait_for_requests(1, 10)
            call(channel_to, gateway, LOGS_EXPORT, tracks(5, start=5).SerializeToString())
            with pytest.raises(grpc.RpcError) as caught:
                call(channel_to, gateway, LOGS_EXPORT, tracks(5, start=10).SerializeToString())
            error = caught.value
            assert grpc.StatusCode.RESOURCE_EXHAUSTED == error.code()
            trailers = {item.key: item.value for item in error.trailing_metadata() or ()}
            details = trailers["grpc-status-details-bin"]
            assert isinstance(details, bytes)
            status = Status.FromString(details)
            info = RetryInfo()
            assert status.details[0].Unpack(info)
            assert 1 == info.retry_delay.seconds
            assert 10 == client.stats()["enqueued"]

    def test_unknown_method(self, sink: Sink, channel_to: list[grpc.Channel]) -> None:
        """A service the gateway does not offer: UNIMPLEMENTED."""
        with serving(gateway_client(sink.url)) as gateway:
            with pytest.raises(grpc.RpcError) as caught:
                call(
                    channel_to,
                    gateway,
                    "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
                    ExportLogsServiceRequest().SerializeToString(),
                )
            assert grpc.StatusCode.UNIMPLEMENTED == caught.value.code()


def _stalled_call(port: int) -> socket.socket:
    """A connection holding an Export call whose message never finishes arriving."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    connection = h2.connection.H2Connection()
    connection.initiate_connection()
    stream = connection.get_next_available_stream_id()
    connection.send_headers(
        stream,
        [
            (":method", "POST"),
            (":scheme", "http"),
            (":path", LOGS_EXPORT),
            (":authority", f"127.0.0.1:{port}"),
            ("content-type", "application/grpc"),
            ("te", "trailers"),
        ],
    )
    # The gRPC frame promises 1,000 bytes; 10 come.
    connection.send_data(stream, b"\x00" + (1000).to_bytes(4, "big") + b"\x0a" * 10)
    sock.sendall(connection.data_to_send())
    return sock


def _closed_by_peer(sock: socket.socket, timeout: float) -> bool:
    """Whether the gateway closes *sock* within *timeout* seconds (what it sends is read)."""
    sock.settimeout(timeout)
    try:
        while sock.recv(65536):
            pass
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True
    return True


class TestSlowSenders:
    """Silent sockets and stalled calls hold no connection for ever, and block no one."""

    def test_a_stalled_call_is_cut_at_the_connection_age(
        self, sink: Sink, channel_to: list[grpc.Channel]
    ) -> None:
        """A call stalled mid-message ends at age + grace; others are served meanwhile."""
        with serving(
            gateway_client(sink.url),
            http=None,
            max_connection_age_seconds=1.0,
            body_timeout_seconds=1.0,
        ) as gateway:
            port = gateway.grpc_port or 0
            with _stalled_call(port) as stalled:
                call(channel_to, gateway, LOGS_EXPORT, tracks(2).SerializeToString())
                assert gateway.client.flush(10)
                assert 2 == len(sink.messages)
                assert _closed_by_peer(stalled, 15)

    def test_a_silent_socket_is_closed_after_the_handshake_timeout(
        self, sink: Sink, channel_to: list[grpc.Channel]
    ) -> None:
        """Sockets that never speak HTTP/2 are closed; a real sender is served meanwhile."""
        with serving(gateway_client(sink.url), http=None, body_timeout_seconds=1.0) as gateway:
            port = gateway.grpc_port or 0
            silent = [socket.create_connection(("127.0.0.1", port)) for _ in range(20)]
            try:
                call(channel_to, gateway, LOGS_EXPORT, tracks(1).SerializeToString())
                assert all(_closed_by_peer(sock, 15) for sock in silent)
            finally:
                for sock in silent:
                    sock.close()
