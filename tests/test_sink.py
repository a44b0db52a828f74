"""Tests for otel_segment.sink and the scripted test server built on it."""

from __future__ import annotations

import gzip
import http.client
import json
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pytest
import requests

from otel_segment.sink import NO_RESPONSE, ReceivedRequest, Sink, format_message

if TYPE_CHECKING:
    from collections.abc import Iterator

    from _server import ScriptedServer, TlsServer

TRACK: dict[str, Any] = {
    "type": "track",
    "userId": "u1",
    "event": "Order Completed",
    "properties": {"total": 42.5, "currency": "EUR"},
    "messageId": "m-1",
}
IDENTIFY: dict[str, Any] = {"type": "identify", "userId": "u1", "traits": {"plan": "pro"}}
JSON_HEADERS = {"Content-Type": "application/json"}


def _batch(*messages: dict[str, Any]) -> dict[str, Any]:
    return {"batch": list(messages), "sentAt": "2024-05-01T12:00:00.000+00:00", "writeKey": "wk"}


def _message_of_size(size: int) -> dict[str, Any]:
    """A track message whose compact JSON encoding is exactly *size* bytes."""
    message: dict[str, Any] = {
        "type": "track",
        "userId": "u1",
        "event": "Big",
        "properties": {"pad": ""},
    }
    base = len(json.dumps(message, separators=(",", ":")))
    message["properties"]["pad"] = "a" * (size - base)
    return message


@pytest.fixture
def session() -> Iterator[requests.Session]:
    """A requests session, closed after the test."""
    with requests.Session() as session:
        yield session


class TestBatch:
    """A valid batch is answered like the Segment API and kept."""

    def test_records_a_batch(
        self, segment_server: ScriptedServer, session: requests.Session
    ) -> None:
        """The batch gets 200 {"success": true}; request and messages are kept in order."""
        url = f"{segment_server.url}/v1/batch"
        response = session.post(url, json=_batch(TRACK, IDENTIFY), auth=("wk", ""), timeout=5)

        assert (200, {"success": True}) == (response.status_code, response.json())
        assert "application/json" == response.headers["Content-Type"]
        assert [TRACK, IDENTIFY] == segment_server.messages
        [request] = segment_server.requests
        assert ("POST", "/v1/batch", 200) == (request.method, request.path, request.status)
        assert "Basic d2s6" == request.header("AUTHORIZATION")
        assert request.header("X-Retry-Count") is None
        assert _batch(TRACK, IDENTIFY) == request.json
        assert [TRACK, IDENTIFY] == request.messages

    def test_decodes_gzip(self, segment_server: ScriptedServer, session: requests.Session) -> None:
        """A gzip body is decompressed; the wire bytes stay in raw_body."""
        body = json.dumps(_batch(TRACK)).encode()
        wire = gzip.compress(body)
        headers = {**JSON_HEADERS, "Content-Encoding": "gzip"}
        response = session.post(
            f"{segment_server.url}/v1/batch", data=wire, headers=headers, timeout=5
        )

        assert 200 == response.status_code
        [request] = segment_server.requests
        assert (wire, body, [TRACK]) == (request.raw_body, request.body, request.messages)
        assert [TRACK] == segment_server.messages

    def test_keeps_the_connection_alive(self, segment_server: ScriptedServer) -> None:
        """Consecutive requests reuse one HTTP/1.1 connection."""
        address = urlsplit(segment_server.url)
        assert address.hostname is not None
        connection = http.client.HTTPConnection(address.hostname, address.port, timeout=5)
        sockets = []
        try:
            for _ in range(3):
                connection.request("POST", "/v1/batch", json.dumps(_batch(TRACK)), JSON_HEADERS)
                with connection.getresponse() as response:
                    response.read()
                sockets.append(connection.sock)
        finally:
            connection.close()

        assert sockets[0] is not None
        assert [sockets[0]] * 3 == sockets
        assert 3 == len(segment_server.messages)

    def test_sets_tcp_nodelay(self, segment_server: ScriptedServer) -> None:
        """Accepted sockets have TCP_NODELAY, so small answers are not held back."""
        segment_server.hang(30)
        address = urlsplit(segment_server.url)
        assert address.hostname is not None
        connection = http.client.HTTPConnection(address.hostname, address.port, timeout=5)
        try:
            connection.request("POST", "/v1/batch", json.dumps(_batch(TRACK)), JSON_HEADERS)
            assert segment_server.wait_for_requests(1)
            [accepted] = segment_server._server.connections
            assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        finally:
            connection.close()

    def test_handles_concurrent_connections(self, segment_server: ScriptedServer) -> None:
        """Requests on many connections at once are all answered and recorded."""
        url = f"{segment_server.url}/v1/batch"

        def post(i: int) -> int:
            message = {**TRACK, "messageId": f"m-{i}"}
            with requests.post(url, json=_batch(message), timeout=5) as response:
                return response.status_code

        with ThreadPoolExecutor(max_workers=16) as pool:
            statuses = list(pool.map(post, range(32)))

        assert [200] * 32 == statuses
        assert 32 == len(segment_server.requests)
        expected = {f"m-{i}" for i in range(32)}
        assert expected == {m["messageId"] for m in segment_server.messages}


class TestLimits:
    """Bodies the Segment API would refuse get a 400 and are not delivered."""

    def test_accepts_a_message_at_the_limit(
        self, segment_server: ScriptedServer, session: requests.Session
    ) -> None:
        """A message of exactly 32 KiB of compact JSON is accepted."""
        message = _message_of_size(32 * 1024)
        response = session.post(f"{segment_server.url}/v1/batch", json=_batch(message), timeout=5)

        assert 200 == response.status_code
        assert [message] == segment_server.messages

    def test_rejects_an_oversize_message(
        self, segment_server: ScriptedServer, session: requests.Session
    ) -> None:
        """A message one byte over 32 KiB gets a 400 with a JSON error."""
        batch = _batch(TRACK, _message_of_size(32 * 1024 + 1))
        response = session.post(f"{segment_server.url}/v1/batch", json=batch, timeout=5)

        assert 400 == response.status_code
        assert {"success": False, "error": "message 2: a message of 32769 bytes exceeds 32768"} == (
            response.json()
        )
        assert [] == segment_server.messages
        assert [400] == [r.status for r in segment_server.requests]

    def test_rejects_an_oversize_batch(
        self, segment_server: ScriptedServer, session: requests.Session
    ) -> None:
        """A body over 500 KiB gets a 400, even if every message is small enough."""
        batch = _batch(*[_message_of_size(30 * 1024)] * 17)
        response = session.post(f"{segment_server.url}/v1/batch", json=batch, timeout=5)

        assert 400 == response.status_code
        assert "the body exceeds 512000 bytes" == response.json()["error"]
        assert [] == segment_server.messages

    def test_batch_limit_is_exact(self, session: requests.Session) -> None:
        """A body of max_batch_bytes is accepted; one more byte is refused."""
        with Sink(max_batch_bytes=1000) as sink:
            statuses = []
            for size in (1000, 1001):
                body = json.dumps(_batch(TRACK)).encode()
                body = body[:-1] + b" " * (size - len(body)) + b"}"
                statuses.append(
                    session.post(f"{sink.url}/v1/batch", data=body, timeout=5).status_code
                )

        assert [200, 400] == statuses

    def test_limits_the_decompressed_size(self, session: requests.Session) -> None:
        """The batch limit applies after gunzip, so a small gzip body can be too large."""
        with Sink(max_batch_bytes=1000) as sink:
            body = json.dumps(_batch({**TRACK, "properties": {"pad": " " * 2000}})).encode()
            headers = {"Content-Encoding": "gzip"}
            url = f"{sink.url}/v1/batch"
            response = session.post(url, data=gzip.compress(body), headers=headers, timeout=5)

            assert 400 == response.status_code
            [request] = sink.requests
            assert 1001 == len(request.body)

    @pytest.mark.parametrize(
        ("body", "headers", "error"),
        [
            (b"{not json", {}, "the body is not valid JSON"),
            (b'{"batch": [{"total": NaN}]}', {}, "the body is not valid JSON"),
            (b'{"batch": {"type": "track"}}', {}, 'expected {"batch": [objects]}'),
            (b'{"batch": ["track"]}', {}, 'expected {"batch": [objects]}'),
            (b"[]", {}, 'expected {"batch": [objects]}'),
            (b"{}", {"Content-Encoding": "gzip"}, "the body is not valid gzip"),
            (gzip.compress(b"{}")[:-9], {"Content-Encoding": "gzip"}, "the gzip body is truncated"),
            (b"{}", {"Content-Encoding": "br"}, "unsupported Content-Encoding: br"),
        ],
    )
    def test_rejects_a_malformed_body(
        self,
        segment_server: ScriptedServer,
        session: requests.Session,
        body: bytes,
        headers: dict[str, str],
        error: str,
    ) -> None:
        """Bad JSON, NaN, a wrong shape or a bad encoding gets a 400 naming the problem."""
        response = session.post(f"{segment_server.url}/v1/batch", data=body, headers=headers)

        assert 400 == response.status_code
        assert response.json()["error"].startswith(error)
        assert [] == segment_server.messages

    def test_requires_a_content_length(
        self, segment_server: ScriptedServer, session: requests.Session
    ) -> None:
        """A chunked body gets a 411 and the connection is closed."""
        url = f"{segment_server.url}/v1/batch"
        response = session.post(url, data=iter([b"{}"]), timeout=5)

        assert (411, "close") == (response.status_code, response.headers["Connection"])

    @pytest.mark.parametrize(
        ("options", "error"),
        [
            ({"latency_seconds": -1}, "latency_seconds must be >= 0, got -1"),
            ({"max_batch_bytes": 0}, "limits must be > 0, got 0, 32768"),
            ({"max_message_bytes": -5}, "limits must be > 0, got 512000, -5"),
        ],
    )
    def test_rejects_bad_options(self, options: dict[str, Any], error: str) -> None:
        """Construction fails loudly on a nonsensical option."""
        with pytest.raises(ValueError, match=error):
            Sink(**options)


SINGLE_CALL_NEEDS: dict[str, dict[str, str]] = {
    "track": {"event": "E"},
    "group": {"groupId": "g1"},
    "alias": {"previousId": "a1"},
}
"""What a single call needs beyond ``userId`` (the Spec)."""


class TestRoutes:
    """Only the Segment paths exist, and only for POST."""

    @pytest.mark.parametrize("kind", ["track", "identify", "page", "screen", "group", "alias"])
    def test_records_a_single_call_as_a_batch(
        self, segment_server: ScriptedServer, session: requests.Session, kind: str
    ) -> None:
        """POST /v1/<type> is one message; its type comes from the path if missing."""
        url = f"{segment_server.url}/v1/{kind}"
        fields = {"userId": "u1", **SINGLE_CALL_NEEDS.get(kind, {})}
        response = session.post(url, json=fields, timeout=5)

        assert 200 == response.status_code
        assert [{"type": kind, **fields}] == segment_server.messages

    def test_answers_404_for_other_paths(
        self, segment_server: ScriptedServer, session: requests.Session
    ) -> None:
        """An unknown path gets a 404, which is recorded."""
        response = session.post(f"{segment_server.url}/v2/batch", json=_batch(TRACK), timeout=5)

        assert 404 == response.status_code
        assert [("/v2/batch", 404)] == [(r.path, r.status) for r in segment_server.requests]
        assert [] == segment_server.messages

    @pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH", "OPTIONS"])
    def test_answers_405_for_other_methods(
        self, segment_server: ScriptedServer, session: requests.Session, method: str
    ) -> None:
        """A method other than POST gets a 405 naming POST in Allow."""
        response = session.request(method, f"{segment_server.url}/v1/batch", timeout=5)

        assert (405, "POST") == (response.status_code, response.headers["Allow"])
        assert [method] == [r.method for r in segment_server.requests]

    def test_answers_head_without_a_body(self, segment_server: ScriptedServer) -> None:
        """A HEAD request gets a 405 without a body, and the connection stays usable."""
        address = urlsplit(segment_server.url)
        assert address.hostname is not None
        connection = http.client.HTTPConnection(address.hostname, address.port, timeout=5)
        try:
            connection.request("HEAD", "/v1/batch")
            with connection.getresponse() as response:
                head = (response.status, response.read())
            connection.request("POST", "/v1/batch", json.dumps(_batch(TRACK)), JSON_HEADERS)
            with connection.getresponse() as response:
                post = (response.status, json.loads(response.read()))
        finally:
            connection.close()

        assert ((405, b""), (200, {"success": True})) == (head, post)


class TestScriptedServer:
    """The segment_server fixture answers as scripted, then falls back to 200."""

    def test_answers_429_then_falls_back_to_200(
        self, segment_server: ScriptedServer, session: requests.Session
    ) -> None:
        """A scripted 429 with Retry-After is sent once; only the 200 batch is delivered."""
        segment_server.respond(429, headers={"Retry-After": "0"})
        url = f"{segment_server.url}/v1/batch"
        first = session.post(url, json=_batch(TRACK), timeout=5)
        second = session.post(url, json=_batch(IDENTIFY), timeout=5)

        assert (429, "0", b"") == (first.status_code, first.headers["Retry-After"], first.content)
        assert 200 == second.status_code
        assert [429, 200] == [r.status for r in segment_server.requests]
        assert [IDENTIFY] == segment_server.messages

    def test_chains_and_repeats_answers(
        self, segment_server: ScriptedServer, session: requests.Session
    ) -> None:
        """respond() chains, respond_many() repeats, and the script is used in order."""
        segment_server.respond_many(503, 2).respond(200, body=b'{"ok": 1}')
        assert 3 == segment_server.pending
        url = f"{segment_server.url}/v1/batch"
        responses = [session.post(url, json=_batch(TRACK), timeout=5) for _ in range(4)]

        assert [503, 503, 200, 200] == [r.status_code for r in responses]
        assert [b"", b"", b'{"ok": 1}'] == [r.content for r in responses[:3]]
        assert 0 == segment_server.pending
        assert [TRACK, TRACK] == segment_server.messages

    def test_refuses_an_impossible_status(self, segment_server: ScriptedServer) -> None:
        """A status outside 100..599 cannot be scripted."""
        with pytest.raises(ValueError, match=r"status must be in 100\.\.599, got 42"):
            segment_server.respond(42)

    def test_reset_raises_connection_error(
        self, segment_server: ScriptedServer, session: requests.Session
    ) -> None:
        """reset() drops the connection unanswered; the next request is served again."""
        segment_server.reset()
        url = f"{segment_server.url}/v1/batch"
        with pytest.raises(requests.exceptions.ConnectionError):
            session.post(url, json=_batch(TRACK), timeout=5)
        response = session.post(url, json=_batch(IDENTIFY), timeout=5)

        assert 200 == response.status_code
        assert [NO_RESPONSE, 200] == [r.status for r in segment_server.requests]
        assert [IDENTIFY] == segment_server.messages

    def test_accept_then_reset_delivers(
        self, segment_server: ScriptedServer, session: requests.Session
    ) -> None:
        """accept_then_reset() keeps the batch, but the client sees a connection error."""
        segment_server.accept_then_reset()
        with pytest.raises(requests.exceptions.ConnectionError):
            session.post(f"{segment_server.url}/v1/batch", json=_batch(TRACK), timeout=5)

        assert [NO_RESPONSE] == [r.status for r in segment_server.requests]
        assert [TRACK] == segment_server.messages

    def test_hang_times_out_and_closes_fast(
        self, segment_server: ScriptedServer, session: requests.Session
    ) -> None:
        """hang() outlasts a client timeout; closing the server cuts the hang short."""
        segment_server.hang(30)
        with pytest.raises(requests.exceptions.Timeout):
            session.post(f"{segment_server.url}/v1/batch", json=_batch(TRACK), timeout=0.2)
        started = time.monotonic()
        segment_server.close()

        assert time.monotonic() - started < 2
        assert 1 == len(segment_server.requests)
        assert [] == segment_server.messages

    def test_hang_answers_late(
        self, segment_server: ScriptedServer, session: requests.Session
    ) -> None:
        """A short hang delays the 200; the batch is delivered when answered."""
        segment_server.hang(0.1)
        started = time.monotonic()
        response = session.post(f"{segment_server.url}/v1/batch", json=_batch(TRACK), timeout=5)

        assert time.monotonic() - started >= 0.1
        assert 200 == response.status_code
        assert [TRACK] == segment_server.messages


def _post_track(session: requests.Session, tls_server: TlsServer, **tls: Any) -> requests.Response:
    """POST a batch of TRACK to *tls_server*, with the *tls* options (verify, cert)."""
    return session.post(f"{tls_server.server.url}/v1/batch", json=_batch(TRACK), timeout=5, **tls)


class TestTls:
    """The tls_server fixture serves HTTPS and requires a client certificate."""

    def test_accepts_a_client_certificate(
        self, tls_server: TlsServer, session: requests.Session
    ) -> None:
        """A client trusting the CA and presenting its certificate is served."""
        server = tls_server.server
        response = _post_track(
            session, tls_server, verify=tls_server.ca_bundle_path, cert=tls_server.client_cert_paths
        )

        assert server.url.startswith("https://127.0.0.1:")
        assert 200 == response.status_code
        assert [TRACK] == server.messages

    def test_refuses_a_client_without_certificate(
        self, tls_server: TlsServer, session: requests.Session
    ) -> None:
        """Without a client certificate the handshake fails and nothing is recorded."""
        with pytest.raises(requests.exceptions.ConnectionError):
            _post_track(session, tls_server, verify=tls_server.ca_bundle_path)

        assert [] == tls_server.server.requests

    def test_is_not_trusted_without_the_ca(
        self, tls_server: TlsServer, session: requests.Session
    ) -> None:
        """A client that does not trust the test CA refuses the server."""
        with pytest.raises(requests.exceptions.SSLError):
            _post_track(session, tls_server, cert=tls_server.client_cert_paths)


class TestWaits:
    """Waiting blocks on the sink's condition, never polls."""

    def test_wait_for_messages_times_out(self, segment_server: ScriptedServer) -> None:
        """Without messages, wait_for_messages returns False after its timeout."""
        assert segment_server.wait_for_messages(1, timeout=0.01) is False

    def test_waits_for_a_request_from_another_thread(self, segment_server: ScriptedServer) -> None:
        """wait_for_requests and wait_for_messages return once the batch has arrived."""
        url = f"{segment_server.url}/v1/batch"
        with ThreadPoolExecutor(max_workers=1) as pool:
            future = pool.submit(requests.post, url, json=_batch(TRACK, IDENTIFY), timeout=5)
            assert segment_server.wait_for_messages(2)
            assert segment_server.wait_for_requests(1)
            with future.result() as response:
                assert 200 == response.status_code

    def test_clear_forgets_everything(
        self, segment_server: ScriptedServer, session: requests.Session
    ) -> None:
        """clear() empties requests and messages; later ones are kept again."""
        url = f"{segment_server.url}/v1/batch"
        session.post(url, json=_batch(TRACK), timeout=5)
        segment_server.clear()

        assert ([], []) == (segment_server.requests, segment_server.messages)
        session.post(url, json=_batch(IDENTIFY), timeout=5)
        assert [IDENTIFY] == segment_server.messages


class TestLifecycle:
    """Starting, closing and the per-request options."""

    def test_start_returns_the_sink_and_close_is_idempotent(self) -> None:
        """start() returns self and may repeat; close() may repeat; start() after close fails."""
        sink = Sink()
        try:
            assert sink is sink.start()
            assert sink is sink.start()
            assert sink.url.startswith("http://127.0.0.1:")
        finally:
            sink.close()
            sink.close()
        with pytest.raises(RuntimeError, match="the sink is closed"):
            sink.start()

    def test_close_without_start(self) -> None:
        """A sink that never started closes without blocking."""
        Sink().close()

    def test_close_drops_idle_connections(self, session: requests.Session) -> None:
        """close() ends idle keep-alive connections instead of waiting for the client."""
        with Sink() as sink:
            session.post(f"{sink.url}/v1/batch", json=_batch(TRACK), timeout=5)
            assert 1 == len(sink._server.connections)
        assert 0 == len(sink._server.connections)

    def test_calls_on_batch(self, session: requests.Session) -> None:
        """on_batch gets each accepted request, not the refused ones."""
        seen: list[ReceivedRequest] = []
        with Sink(on_batch=seen.append) as sink:
            url = f"{sink.url}/v1/batch"
            session.post(url, json=_batch(TRACK), timeout=5)
            session.post(url, data=b"nope", timeout=5)

        assert [[TRACK]] == [request.messages for request in seen]

    def test_latency_delays_each_answer(self, session: requests.Session) -> None:
        """latency_seconds delays every answer by at least that long."""
        with Sink(latency_seconds=0.05) as sink:
            started = time.monotonic()
            for _ in range(2):
                session.post(f"{sink.url}/v1/batch", json=_batch(TRACK), timeout=5)
            elapsed = time.monotonic() - started

        assert elapsed >= 0.1

    def test_serves_ipv6_loopback(self, session: requests.Session) -> None:
        """An IPv6 host is bracketed in the URL."""
        try:
            sink = Sink(host="::1")
        except OSError:
            pytest.skip("no IPv6 loopback")
        with sink:
            assert sink.url.startswith("http://[::1]:")
            response = session.post(f"{sink.url}/v1/batch", json=_batch(TRACK), timeout=5)
            assert 200 == response.status_code


class TestFormatMessage:
    """format_message renders one short line per message."""

    @pytest.mark.parametrize(
        ("message", "expected"),
        [
            (TRACK, 'track     user=u1 anon=-  "Order Completed" {total=42.5, currency=EUR}'),
            (
                {"type": "identify", "userId": "u1", "traits": {"plan": "pro", "seats": 3}},
                "identify  user=u1 anon=-  {plan=pro, seats=3}",
            ),
            (
                {
                    "type": "page",
                    "anonymousId": "a1",
                    "category": "Docs",
                    "name": "Install",
                    "properties": {"path": "/docs/install"},
                },
                'page      user=- anon=a1  Docs "Install" {path=/docs/install}',
            ),
            (
                {"type": "screen", "userId": 7, "name": "Home"},
                'screen    user=7 anon=-  "Home"',
            ),
            (
                {"type": "group", "userId": "u1", "groupId": "g1", "traits": {"name": "Acme"}},
                "group     user=u1 anon=-  group=g1 {name=Acme}",
            ),
            (
                {"type": "alias", "userId": "u1", "previousId": "anon-9"},
                "alias     user=u1 anon=-  anon-9 -> u1",
            ),
            (
                {"type": "track", "anonymousId": "a1", "event": "Tapped", "properties": {}},
                'track     user=- anon=a1  "Tapped"',
            ),
            (
                {"type": "sync", "userId": "u1", "messageId": "m", "data": [1, None]},
                "sync      user=u1 anon=-  {data=[1, null]}",
            ),
        ],
    )
    def test_renders_each_type(self, message: dict[str, Any], expected: str) -> None:
        """Each type shows its key fields after the ids."""
        assert expected == format_message(message)

    def test_shortens_long_values(self) -> None:
        """A long value is cut to 40 characters and newlines are escaped."""
        message = {"type": "track", "event": "E", "properties": {"a": "x" * 100, "b": "1\n2"}}

        expected = 'track     user=- anon=-  "E" {a=' + "x" * 37 + "..., b=1\\n2}"
        assert expected == format_message(message)

    def test_keeps_the_line_short(self) -> None:
        """However many properties, the line stays within 160 characters."""
        properties = {f"key{i}": "v" * 30 for i in range(20)}
        line = format_message({"type": "track", "event": "E", "properties": properties})

        assert 160 == len(line)
        assert line.endswith("...")


class TestSpec:
    """A message the Segment Spec forbids gets a 400 naming the message and the rule."""

    @pytest.mark.parametrize(
        ("message", "error"),
        [
            ({"userId": "u1", "event": "E"}, "type must be one of track, identify"),
            ({"type": "buy", "userId": "u1"}, "type must be one of"),
            ({"type": "track", "event": "E"}, "a track needs userId or anonymousId"),
            (
                {"type": "identify", "userId": " ", "anonymousId": None},
                "an identify needs userId or",
            ),
            ({"type": "track", "userId": "u1"}, "a track needs event"),
            ({"type": "track", "userId": "u1", "event": ""}, "a track needs event"),
            ({"type": "group", "userId": "u1"}, "a group needs groupId"),
            ({"type": "alias", "userId": "u1"}, "an alias needs previousId"),
            ({"type": "alias", "previousId": "a1"}, "an alias needs userId"),
        ],
    )
    def test_forbidden_message(
        self,
        segment_server: ScriptedServer,
        session: requests.Session,
        message: dict[str, Any],
        error: str,
    ) -> None:
        """The whole request is refused; nothing of it is recorded as delivered."""
        response = session.post(
            f"{segment_server.url}/v1/batch", json=_batch(TRACK, message), timeout=5
        )

        assert 400 == response.status_code
        assert response.json()["error"].startswith(f"message 2: {error}")
        assert [] == segment_server.messages

    def test_allowed_messages(
        self, segment_server: ScriptedServer, session: requests.Session
    ) -> None:
        """Anonymous ids, numeric ids, an alias with both ids and a deeply nested value pass."""
        deep: Any = []
        for _ in range(300):  # deeper than orjson encodes: measured the slow way
            deep = [deep]
        batch = _batch(
            {"type": "page", "anonymousId": "a1"},
            {"type": "identify", "userId": 7},
            {"type": "alias", "previousId": "a1", "userId": "u1"},
            {**TRACK, "properties": {"deep": deep}},
        )
        response = session.post(f"{segment_server.url}/v1/batch", json=batch, timeout=5)

        assert 200 == response.status_code, response.text
        assert 4 == len(segment_server.messages)
