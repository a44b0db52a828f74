"""Tests for transport: headers, auth, gzip, TLS, and no spans for our POSTs."""

from __future__ import annotations

import base64
import gzip
import json
import logging
from typing import TYPE_CHECKING, Any

import certifi
import pytest
import requests
from _helpers import FAST_RETRY, WRITE_KEY, Clients, ErrorLog, message_ids
from opentelemetry.instrumentation.requests import RequestsInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import otel_segment
from otel_segment import Client, DeliveryError
from otel_segment.pipeline.transport import HttpTransport
from otel_segment.sink import Sink

if TYPE_CHECKING:
    from collections.abc import Iterator

    from _server import ScriptedServer, TlsServer

    from otel_segment.pipeline.messages import Message


@pytest.fixture
def client_defaults() -> dict[str, Any]:
    """Clients send only on flush (one batch)."""
    return {"flush_interval": 30}


@pytest.fixture
def transport(segment_server: ScriptedServer) -> Iterator[HttpTransport]:
    """A transport to the test server, closed afterwards."""
    http = HttpTransport(WRITE_KEY, segment_server.url + "/", timeout=2.0)
    yield http
    http.close()


BODY = b'{"batch":[{"type":"track","userId":"u1","event":"Ev"}],"sentAt":"x","writeKey":"k"}'


class TestRequest:
    """What every POST looks like."""

    def test_headers_and_body(self, segment_server: ScriptedServer, clients: Clients) -> None:
        """Basic auth of "key:", JSON content type, our User-Agent, writeKey in the body."""
        client = clients()
        _, message = client.track("u1", "Ev")
        assert client.flush(timeout=5)

        [request] = segment_server.requests
        token = base64.b64encode(f"{WRITE_KEY}:".encode()).decode()
        assert ("POST", "/v1/batch") == (request.method, request.path)
        assert f"Basic {token}" == request.header("Authorization")
        assert "application/json" == request.header("Content-Type")
        assert f"otel-segment/{otel_segment.__version__}" == request.header("User-Agent")
        assert request.header("Content-Encoding") is None
        assert request.header("X-Retry-Count") is None
        assert {"batch", "sentAt", "writeKey"} == set(request.json)
        assert WRITE_KEY == request.json["writeKey"]
        assert [message] == request.json["batch"]

    def test_gzip(self, segment_server: ScriptedServer, clients: Clients) -> None:
        """gzip=True: Content-Encoding gzip, and the raw body decompresses to the batch."""
        client = clients(gzip=True)
        sent = [client.track("u1", "Ev", {"pad": "x" * 500})[1] for _ in range(20)]
        assert client.flush(timeout=5)

        [request] = segment_server.requests
        assert "gzip" == request.header("Content-Encoding")
        assert len(request.raw_body) < len(request.body) / 5
        batch = json.loads(gzip.decompress(request.raw_body))["batch"]
        assert message_ids(sent) == message_ids(batch)

    def test_keep_alive(self, segment_server: ScriptedServer, clients: Clients) -> None:
        """Successive batches reuse one connection (the server sees one source port)."""
        client = clients(max_in_flight=1)
        for n in range(3):
            client.track("u1", f"Ev{n}")
            assert client.flush(timeout=5)
        assert 3 == len(segment_server.requests)
        adapter = client._processor._transport._session.get_adapter(segment_server.url)
        assert isinstance(adapter, requests.adapters.HTTPAdapter)
        pools = adapter.poolmanager.pools._container.values()
        assert 1 == sum(pool.num_connections for pool in pools)


class TestOutcome:
    """HttpTransport.post reports what happened, never raises, never retries."""

    def test_ok(self, segment_server: ScriptedServer, transport: HttpTransport) -> None:
        """A 200 is ok, with no error."""
        outcome = transport.post(BODY)
        assert (True, 200, None) == (outcome.ok, outcome.status, outcome.error)
        assert f"{segment_server.url}/v1/batch" == transport.url

    def test_status_and_retry_after(
        self, segment_server: ScriptedServer, transport: HttpTransport
    ) -> None:
        """A 429 carries its status, Retry-After and a short description."""
        segment_server.respond(429, {"Retry-After": "7"}, b"slow down")
        outcome = transport.post(BODY, retry_count=2)

        assert (False, 429, 7.0) == (outcome.ok, outcome.status, outcome.retry_after)
        assert "HTTP 429 Too Many Requests: slow down" == outcome.error
        assert ["2"] == [r.header("X-Retry-Count") for r in segment_server.requests]

    def test_no_server(self) -> None:
        """A refused connection is an outcome without status."""
        with Sink() as gone:
            url = gone.url
        http = HttpTransport("k", url, timeout=1.0)
        try:
            outcome = http.post(BODY)
        finally:
            http.close()
        assert (False, None) == (outcome.ok, outcome.status)
        assert "connection" in (outcome.error or "").lower()

    def test_repr(self, transport: HttpTransport) -> None:
        """repr() shows the URL, never the key."""
        assert WRITE_KEY not in repr(transport)
        assert transport.url in repr(transport)


def _track_one(tls_server: TlsServer, **options: Any) -> tuple[Message, ErrorLog]:
    """Track one message to *tls_server* with client *options*; it, and what on_error got."""
    errors = ErrorLog()
    client = Client(WRITE_KEY, tls_server.server.url, on_error=errors, **options)
    try:
        _, message = client.track("u1", "Ev")
        assert client.flush(timeout=5)
    finally:
        client.shutdown(timeout=5)
    return message, errors


class TestTls:
    """HTTPS with a client certificate (mutual TLS)."""

    def test_client_certificate(
        self, tls_server: TlsServer, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """verify=CA path and cert=(cert, key): delivered, whatever $REQUESTS_CA_BUNDLE says."""
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", certifi.where())
        message, errors = _track_one(
            tls_server,
            verify=tls_server.ca_bundle_path,
            cert=tls_server.client_cert_paths,
            retry=FAST_RETRY.replace(max_attempts=2),
            flush_interval=30,
        )
        assert [] == [str(error) for error, _ in errors.calls]
        assert tls_server.server.url.startswith("https://")
        assert message_ids([message]) == message_ids(tls_server.server.messages)

    def test_without_client_certificate(self, tls_server: TlsServer) -> None:
        """Without the client certificate the handshake fails; on_error is told."""
        message, errors = _track_one(
            tls_server,
            verify=tls_server.ca_bundle_path,
            retry=FAST_RETRY.replace(max_attempts=2),
            flush_interval=30,
        )

        [(error, reported)] = errors.calls
        assert isinstance(error, DeliveryError)
        assert (None, message_ids([message])) == (error.status, message_ids(reported))
        assert [] == tls_server.server.messages

    def test_untrusted_server(self, tls_server: TlsServer) -> None:
        """Without the CA the server certificate is refused; on_error is told."""
        _, errors = _track_one(
            tls_server, cert=tls_server.client_cert_paths, retry=FAST_RETRY.replace(max_attempts=1)
        )
        [(error, _)] = errors.calls
        assert "SSL" in str(error)


class TestNoSpans:
    """Our own POSTs make no span, even with requests instrumented."""

    def test_instrumented_requests(self, segment_server: ScriptedServer, clients: Clients) -> None:
        """Delivering a batch creates no span; a plain requests call does (control)."""
        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        instrumentor = RequestsInstrumentor()
        instrumentor.instrument(tracer_provider=provider)
        try:
            client = clients()
            client.track("u1", "Ev")
            assert client.flush(timeout=5)
            client_spans = list(exporter.get_finished_spans())
            with requests.Session() as session:
                session.post(f"{segment_server.url}/v1/batch", data=BODY, timeout=5).close()
            control_spans = list(exporter.get_finished_spans())
        finally:
            instrumentor.uninstrument()
            provider.shutdown()

        assert [] == client_spans
        assert 1 == len(control_spans)


class TestWriteKey:
    """Any write key works, and none leaks through what the server answers."""

    def test_percent_in_write_key(self, segment_server: ScriptedServer, clients: Clients) -> None:
        """A key holding "%" (bytes formatting's marker) still yields a valid body."""
        client = clients(write_key="wk%s%d-100%")
        client.track("u1", "Ev")

        assert client.flush(5)
        assert ["Ev"] == [m["event"] for m in segment_server.messages]
        assert "wk%s%d-100%" == segment_server.requests[0].json["writeKey"]

    def test_key_echoed_by_the_server_is_not_logged(
        self,
        segment_server: ScriptedServer,
        clients: Clients,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        """A server quoting the key in its error body does not get it into logs or on_error."""
        segment_server.respond(401, body=f"invalid write key {WRITE_KEY}".encode())
        errors = ErrorLog()
        client = clients(on_error=errors, flush_interval=0.5)
        with caplog.at_level(logging.DEBUG, logger="otel_segment"):
            client.track("u1", "Ev")
            assert errors.wait_for_messages(1)

        assert WRITE_KEY not in caplog.text
        assert WRITE_KEY not in str(errors.calls[0][0])


_PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")


@pytest.fixture
def no_proxy_environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No proxy variable set, in either case, for the test to set its own."""
    for name in _PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    return monkeypatch


def _delivered_one(host: str) -> Message:
    """Track one message through a client of *host*, flushed; the message."""
    client = Client(WRITE_KEY, host, flush_interval=30)
    try:
        _, message = client.track("u1", "Ev")
        assert client.flush(timeout=5)
    finally:
        client.shutdown(timeout=5)
    return message


class TestEnvironment:
    """$HTTP_PROXY, $NO_PROXY and $REQUESTS_CA_BUNDLE apply as requests applies them."""

    def test_proxy_from_the_environment(
        self, segment_server: ScriptedServer, no_proxy_environment: pytest.MonkeyPatch
    ) -> None:
        """With $HTTP_PROXY set, batches go to the proxy, asking for the Segment URL."""
        no_proxy_environment.setenv("HTTP_PROXY", segment_server.url)
        message = _delivered_one("http://segment.invalid")
        assert message_ids([message]) == message_ids(segment_server.messages)
        assert ["http://segment.invalid/v1/batch"] == [r.path for r in segment_server.requests]

    def test_no_proxy_for_the_host(
        self, segment_server: ScriptedServer, no_proxy_environment: pytest.MonkeyPatch
    ) -> None:
        """$NO_PROXY naming the host sends straight to it, past a proxy that is not there."""
        with Sink() as gone:
            no_proxy_environment.setenv("HTTP_PROXY", gone.url)
        no_proxy_environment.setenv("NO_PROXY", "127.0.0.1")
        message = _delivered_one(segment_server.url)
        assert message_ids([message]) == message_ids(segment_server.messages)
        assert ["/v1/batch"] == [r.path for r in segment_server.requests]

    def test_ca_bundle_from_the_environment(
        self, tls_server: TlsServer, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """With verify left at True, $REQUESTS_CA_BUNDLE names the CA bundle, as for requests."""
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", tls_server.ca_bundle_path)
        message, errors = _track_one(
            tls_server, cert=tls_server.client_cert_paths, retry=FAST_RETRY.replace(max_attempts=2)
        )
        assert [] == [str(error) for error, _ in errors.calls]
        assert message_ids([message]) == message_ids(tls_server.server.messages)
