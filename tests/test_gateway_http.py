"""OTLP/HTTP front end of the gateway: answers, bad input, limits, token, probes."""

from __future__ import annotations

import gzip
import socket
from typing import TYPE_CHECKING, Any

import grpc
import orjson
import pytest
import requests
import trustme
from _gateway import gateway_client, logs_request, otlp_json, serving, spans_request, tracks
from google.protobuf import json_format
from google.rpc.status_pb2 import Status
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from otel_segment.sink import Sink

if TYPE_CHECKING:
    import pathlib
    from collections.abc import Iterator

    from _server import ScriptedServer

    from otel_segment.gateway import Gateway

PROTOBUF = {"Content-Type": "application/x-protobuf"}
JSON = {"Content-Type": "application/json"}


@pytest.fixture
def sink() -> Iterator[Sink]:
    """A local Segment sink, closed afterwards."""
    with Sink() as running:
        yield running


@pytest.fixture
def gateway(sink: Sink) -> Iterator[Gateway]:
    """A gateway delivering to *sink*, drained afterwards."""
    with serving(gateway_client(sink.url)) as running:
        yield running


def url(gateway: Gateway, path: str) -> str:
    """The gateway's OTLP/HTTP URL of *path*."""
    return f"http://127.0.0.1:{gateway.http_port}{path}"


def post(gateway: Gateway, path: str, body: bytes, headers: dict[str, str]) -> requests.Response:
    """POST *body* to the gateway."""
    return requests.post(url(gateway, path), data=body, headers=headers, timeout=10)


def metric(gateway: Gateway, line_start: str) -> float:
    """The value of the first /metrics line starting with *line_start* (0 when absent)."""
    text = requests.get(url(gateway, "/metrics"), timeout=10).text
    for line in text.splitlines():
        if line.startswith(line_start):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def delivered(gateway: Gateway, sink: Sink, n: int) -> list[dict[str, Any]]:
    """Flush the gateway's client; the sink's messages once *n* arrived."""
    assert gateway.client.flush(10)
    assert sink.wait_for_messages(n, 10)
    return sink.messages


class TestExport:
    """Accepted requests: protobuf, OTLP JSON, gzip, partial success."""

    def test_protobuf_logs_become_tracks_with_their_own_time(
        self, gateway: Gateway, sink: Sink
    ) -> None:
        """Marked log records become tracks with the record's time; unmarked are ignored."""
        request = logs_request(
            [
                {
                    "event_name": "Signed Up",
                    "attributes": {"enduser.id": "u1", "segment.properties.plan": "pro"},
                },
                {"attributes": {"http.route": "/health"}},
            ]
        )
        response = post(gateway, "/v1/logs", request.SerializeToString(), PROTOBUF)
        assert 200 == response.status_code
        assert "application/x-protobuf" == response.headers["content-type"]
        assert ExportLogsServiceResponse() == ExportLogsServiceResponse.FromString(response.content)
        [message] = delivered(gateway, sink, 1)
        assert ("track", "Signed Up", "u1", {"plan": "pro"}) == (
            message["type"],
            message["event"],
            message["userId"],
            message["properties"],
        )
        assert "2023-11-14T22:13:20.000+00:00" == message["timestamp"]
        assert {"name": "shop"} == message["context"]["app"]
        assert 1.0 == metric(gateway, 'otel_segment_gateway_records_total{outcome="ignored"')

    def test_otlp_json_with_hex_ids_equals_protobuf(self, gateway: Gateway, sink: Sink) -> None:
        """OTLP JSON (hex ids, int64 as strings, unknown fields) maps as protobuf does."""
        request = spans_request(
            [
                {
                    "name": "checkout",
                    "attributes": {
                        "segment.event": "Order Completed",
                        "enduser.id": "u1",
                        "segment.properties.total": 2**60,
                    },
                }
            ]
        )
        document = json_format.MessageToDict(request)
        span = document["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
        span["traceId"], span["spanId"] = "01" * 16, "02" * 8
        span["someFutureField"] = {"nested": [1, 2]}
        response = post(gateway, "/v1/traces", orjson.dumps(document), JSON)
        assert 200 == response.status_code
        assert "application/json" == response.headers["content-type"]
        post(gateway, "/v1/traces", request.SerializeToString(), PROTOBUF)
        from_json, from_protobuf = delivered(gateway, sink, 2)
        for message in (from_json, from_protobuf):
            del message["messageId"]
        assert from_protobuf == from_json
        assert {"trace_id": "01" * 16, "span_id": "02" * 8} == from_json["context"]["trace"]
        assert 2**60 == from_json["properties"]["total"]

    def test_gzip_bodies_are_inflated(self, gateway: Gateway, sink: Sink) -> None:
        """A gzip body is taken like a plain one."""
        body = gzip.compress(tracks(3).SerializeToString())
        response = post(gateway, "/v1/logs", body, {**PROTOBUF, "Content-Encoding": "gzip"})
        assert 200 == response.status_code
        assert [0, 1, 2] == sorted(m["properties"]["seq"] for m in delivered(gateway, sink, 3))

    def test_invalid_records_are_named_in_a_partial_success(
        self, gateway: Gateway, sink: Sink
    ) -> None:
        """A record whose message is invalid is rejected and counted; the others go ahead."""
        request = logs_request(
            [
                {"event_name": "Signed Up", "attributes": {"enduser.id": "u1"}},
                {"attributes": {"segment.type": "identify"}},  # no user: invalid
                {"attributes": {"segment.type": "teleport", "enduser.id": "u2"}},
            ]
        )
        response = post(gateway, "/v1/logs", request.SerializeToString(), PROTOBUF)
        answer = ExportLogsServiceResponse.FromString(response.content)
        assert (200, 2) == (response.status_code, answer.partial_success.rejected_log_records)
        assert "user_id" in answer.partial_success.error_message
        assert ["u1"] == [m["userId"] for m in delivered(gateway, sink, 1)]
        assert 2.0 == metric(gateway, 'otel_segment_gateway_records_total{outcome="rejected"')

    def test_an_oversize_message_is_rejected(self, gateway: Gateway, sink: Sink) -> None:
        """A message over max_message_bytes is named in the partial success, not queued."""
        request = logs_request(
            [
                {
                    "event_name": "Big",
                    "attributes": {"enduser.id": "u1", "segment.properties.blob": "x" * 40_000},
                },
                {"event_name": "Small", "attributes": {"enduser.id": "u2"}},
            ]
        )
        response = post(gateway, "/v1/logs", request.SerializeToString(), PROTOBUF)
        answer = ExportLogsServiceResponse.FromString(response.content)
        assert 1 == answer.partial_success.rejected_log_records
        assert "max_message_bytes" in answer.partial_success.error_message
        assert ["Small"] == [m["event"] for m in delivered(gateway, sink, 1)]
        assert 1 == gateway.client.stats()["rejected"]

    def test_partial_success_in_json(self, gateway: Gateway) -> None:
        """The partial success of a JSON request is OTLP JSON (int64 as a string)."""
        request = spans_request([{"attributes": {"segment.type": "alias"}}])
        response = post(gateway, "/v1/traces", orjson.dumps(otlp_json(request)), JSON)
        answer = response.json()
        assert "1" == answer["partialSuccess"]["rejectedSpans"]
        parsed = json_format.ParseDict(answer, ExportTraceServiceResponse())
        assert 1 == parsed.partial_success.rejected_spans


class TestBadInput:
    """Refused bodies: the OTLP status, a count in /metrics, the gateway still serving."""

    @pytest.mark.parametrize(
        ("body", "headers"),
        [
            (b"\xff\xff\xff\xff garbage", PROTOBUF),
            (tracks(5).SerializeToString()[:-7], PROTOBUF),
            (b'{"resourceLogs": [', JSON),
            (b"[1, 2]", JSON),
            (b'{"resourceLogs": 7}', JSON),
            (gzip.compress(b"x" * 100)[:-5], {**PROTOBUF, "Content-Encoding": "gzip"}),
            (b"not gzip", {**PROTOBUF, "Content-Encoding": "gzip"}),
        ],
        ids=[
            "garbage",
            "truncated",
            "broken-json",
            "json-array",
            "json-wrong-type",
            "truncated-gzip",
            "not-gzip",
        ],
    )
    def test_undecodable_bodies_get_400(
        self, gateway: Gateway, body: bytes, headers: dict[str, str]
    ) -> None:
        """Garbage, truncated protobuf, broken JSON and broken gzip: 400 with a Status."""
        response = post(gateway, "/v1/logs", body, headers)
        assert 400 == response.status_code
        if headers["Content-Type"] == PROTOBUF["Content-Type"]:
            assert 3 == Status.FromString(response.content).code  # INVALID_ARGUMENT
        assert 1.0 == metric(gateway, 'otel_segment_gateway_bad_input_total{reason="undecodable"}')
        assert 200 == post(gateway, "/v1/logs", tracks(1).SerializeToString(), PROTOBUF).status_code

    def test_base64_ids_in_json_get_400(self, gateway: Gateway) -> None:
        """OTLP JSON ids are hex; a base64 id is refused, naming the field."""
        request = spans_request([{"attributes": {"segment.event": "E", "enduser.id": "u"}}])
        document = json_format.MessageToDict(request)  # the protobuf mapping: base64 ids
        response = post(gateway, "/v1/traces", orjson.dumps(document), JSON)
        assert 400 == response.status_code
        assert "traceId must be 32 hex digits" in response.json()["message"]

    @pytest.mark.parametrize(
        "headers",
        [
            {"Content-Type": "text/plain"},
            {},
            {"Content-Type": "application/protobuf-but-not"},
            {**PROTOBUF, "Content-Encoding": "br"},
        ],
        ids=["text", "none", "lookalike", "brotli"],
    )
    def test_unsupported_types_get_415(self, gateway: Gateway, headers: dict[str, str]) -> None:
        """Another media type or content encoding: 415."""
        response = post(gateway, "/v1/logs", tracks(1).SerializeToString(), headers)
        assert 415 == response.status_code
        assert 1.0 == metric(
            gateway, 'otel_segment_gateway_bad_input_total{reason="unsupported_type"}'
        )

    def test_oversize_and_gzip_bombs_get_413(self, sink: Sink) -> None:
        """Over max_body_bytes, declared, sent or once inflated: 413, without inflating it all."""
        with serving(gateway_client(sink.url), max_body_bytes=64 * 1024) as gateway:
            big = post(gateway, "/v1/logs", b"\0" * (65 * 1024), PROTOBUF)
            bomb = gzip.compress(b"\0" * (256 * 1024 * 1024), compresslevel=9)
            inflated = post(gateway, "/v1/logs", bomb, {**PROTOBUF, "Content-Encoding": "gzip"})
            assert (413, 413) == (big.status_code, inflated.status_code)
            assert 2.0 == metric(
                gateway, 'otel_segment_gateway_bad_input_total{reason="too_large"}'
            )

    def test_json_bodies_get_a_quarter_of_the_limit(self, sink: Sink) -> None:
        """Parsed JSON takes far more memory than protobuf: its limit is a quarter."""
        with serving(gateway_client(sink.url), max_body_bytes=64 * 1024) as gateway:
            request = tracks(100)
            as_json = orjson.dumps(otlp_json(request))
            assert 16 * 1024 < len(as_json) < 64 * 1024
            assert 413 == post(gateway, "/v1/logs", as_json, JSON).status_code
            assert (
                200 == post(gateway, "/v1/logs", request.SerializeToString(), PROTOBUF).status_code
            )

    def test_more_messages_than_the_queue_holds_get_413(self, sink: Sink) -> None:
        """A request that could never fit the queue: 413 (retrying would not help)."""
        with serving(gateway_client(sink.url, max_queue_size=10)) as gateway:
            response = post(gateway, "/v1/logs", tracks(11).SerializeToString(), PROTOBUF)
            assert 413 == response.status_code
            assert "send smaller requests" in Status.FromString(response.content).message

    def test_unknown_paths_and_methods(self, gateway: Gateway) -> None:
        """404 elsewhere; 405 for GET on an export path."""
        assert 404 == requests.post(url(gateway, "/v1/metrics"), timeout=10).status_code
        assert 405 == requests.get(url(gateway, "/v1/logs"), timeout=10).status_code

    def test_a_slow_body_is_cut_off_with_408(self, sink: Sink) -> None:
        """A client that stops sending its body holds the connection only so long."""
        with serving(gateway_client(sink.url), body_timeout_seconds=0.3) as gateway:
            with socket.create_connection(("127.0.0.1", gateway.http_port or 0)) as slow:
                slow.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                slow.sendall(
                    b"POST /v1/logs HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf"
                    b"\r\nContent-Length: 1000\r\n\r\n" + b"\0" * 10
                )
                slow.settimeout(10)
                assert slow.recv(64).startswith(b"HTTP/1.1 408")
            assert 1.0 == metric(
                gateway, 'otel_segment_gateway_bad_input_total{reason="slow_body"}'
            )

    def test_bodies_being_read_share_a_budget(self, sink: Sink) -> None:
        """Past the budget of bodies in flight, a request gets 503: memory stays bounded."""
        with (
            serving(
                gateway_client(sink.url), max_body_bytes=4096, body_budget_bytes=4096
            ) as gateway,
            socket.create_connection(("127.0.0.1", gateway.http_port or 0)) as slow,
        ):
            slow.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            slow.sendall(
                b"POST /v1/logs HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf"
                b"\r\nContent-Length: 4000\r\n\r\n" + b"\0" * 3000
            )
            response = post(gateway, "/v1/logs", tracks(20).SerializeToString(), PROTOBUF)
            assert 503 == response.status_code
            assert "1" == response.headers["retry-after"]


class TestToken:
    """Bearer token checks."""

    @pytest.mark.parametrize(
        "authorization",
        [None, "Bearer wrong", "Basic s3cret", "s3cret", "Bearer s3cre", "Bearer s3cret2"],
    )
    def test_without_the_token_401(self, sink: Sink, authorization: str | None) -> None:
        """A missing or wrong token: 401, counted; nothing queued."""
        with serving(gateway_client(sink.url), token="s3cret") as gateway:  # noqa: S106
            headers = dict(PROTOBUF)
            if authorization is not None:
                headers["Authorization"] = authorization
            response = post(gateway, "/v1/logs", tracks(1).SerializeToString(), headers)
            assert 401 == response.status_code
            assert 1.0 == metric(
                gateway, 'otel_segment_gateway_bad_input_total{reason="unauthorized"}'
            )
            assert 0 == gateway.client.stats()["enqueued"]

    @pytest.mark.parametrize("authorization", ["Bearer s3cret", "bearer s3cret"])
    def test_with_the_token_200(self, sink: Sink, authorization: str) -> None:
        """The right token (the scheme in any case): accepted; probes need none."""
        with serving(gateway_client(sink.url), token="s3cret") as gateway:  # noqa: S106
            headers = {**PROTOBUF, "Authorization": authorization}
            assert (
                200 == post(gateway, "/v1/logs", tracks(1).SerializeToString(), headers).status_code
            )
            assert 200 == requests.get(url(gateway, "/healthz"), timeout=10).status_code


class TestBackpressure:
    """A full queue refuses whole requests with 429 and Retry-After; nothing is lost."""

    def test_full_queue_429_then_accepts_again(self, segment_server: ScriptedServer) -> None:
        """While the endpoint hangs the queue fills: 429, none of it queued; then 200."""
        segment_server.hang(1.0)
        client = gateway_client(segment_server.url, max_queue_size=8, max_in_flight=1, flush_at=1)
        with serving(client) as gateway:
            first = post(gateway, "/v1/logs", tracks(5).SerializeToString(), PROTOBUF)
            assert segment_server.wait_for_requests(1, 10)  # the first batch is in flight
            second = post(gateway, "/v1/logs", tracks(5, start=5).SerializeToString(), PROTOBUF)
            third = post(gateway, "/v1/logs", tracks(5, start=10).SerializeToString(), PROTOBUF)
            assert [200, 200, 429] == [r.status_code for r in (first, second, third)]
            assert "1" == third.headers["retry-after"]
            assert 8 == Status.FromString(third.content).code  # RESOURCE_EXHAUSTED
            assert 10 == client.stats()["enqueued"]
            assert 5.0 == metric(gateway, 'otel_segment_gateway_records_total{outcome="refused"')
            assert client.flush(10)
            again = post(gateway, "/v1/logs", tracks(5, start=10).SerializeToString(), PROTOBUF)
            assert 200 == again.status_code
            assert client.flush(10)
        seqs = sorted(m["properties"]["seq"] for m in segment_server.messages)
        assert list(range(15)) == seqs


class TestProbes:
    """Health, readiness and metrics."""

    def test_healthz_readyz_metrics(self, gateway: Gateway) -> None:
        """200 while serving; /metrics is Prometheus text with the pipeline's counters."""
        assert 200 == requests.get(url(gateway, "/healthz"), timeout=10).status_code
        assert 200 == requests.get(url(gateway, "/readyz"), timeout=10).status_code
        post(gateway, "/v1/logs", tracks(2).SerializeToString(), PROTOBUF)
        assert gateway.client.flush(10)
        response = requests.get(url(gateway, "/metrics"), timeout=10)
        assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
        assert 2.0 == metric(gateway, "otel_segment_gateway_messages_delivered_total")
        assert 0.0 == metric(gateway, "otel_segment_gateway_queue_depth")
        assert 1.0 == metric(
            gateway,
            'otel_segment_gateway_requests_total{code="200",signal="logs",transport="http"}',
        )


class TestTls:
    """--tls-cert/--tls-key: both ports speak TLS."""

    def test_https_and_grpcs(self, sink: Sink, tmp_path: pathlib.Path) -> None:
        """A client trusting the CA exports over HTTPS and over gRPC with TLS."""
        ca = trustme.CA()
        served = ca.issue_cert("127.0.0.1")
        cert, key, ca_path = tmp_path / "cert.pem", tmp_path / "key.pem", tmp_path / "ca.pem"
        served.cert_chain_pems[0].write_to_path(str(cert))
        served.private_key_pem.write_to_path(str(key))
        ca.cert_pem.write_to_path(str(ca_path))
        client = gateway_client(sink.url)
        with serving(client, tls_cert=str(cert), tls_key=str(key)) as gateway:
            response = requests.post(
                f"https://127.0.0.1:{gateway.http_port}/v1/logs",
                data=tracks(1).SerializeToString(),
                headers=PROTOBUF,
                verify=str(ca_path),
                timeout=10,
            )
            assert 200 == response.status_code
            credentials = grpc.ssl_channel_credentials(ca.cert_pem.bytes())
            with grpc.secure_channel(f"127.0.0.1:{gateway.grpc_port}", credentials) as channel:
                export = channel.unary_unary(
                    "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
                    request_serializer=bytes,
                    response_deserializer=bytes,
                )
                export(tracks(1, start=1).SerializeToString(), timeout=10)
            assert client.flush(10)
        assert [0, 1] == sorted(m["properties"]["seq"] for m in sink.messages)
