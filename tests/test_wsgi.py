"""Tests for otel_segment.integrations.wsgi: Werkzeug's test client, and gunicorn."""

from __future__ import annotations

import collections
import concurrent.futures
import gc
import http.client
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from _helpers import WRITE_KEY, delivered
from werkzeug.test import Client as WerkzeugClient

import otel_segment
from otel_segment.integrations.wsgi import PAGE_NAME_KEY, SegmentMiddleware

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

    from _helpers import Clients
    from _server import ScriptedServer

Environ = dict[str, Any]

COOKIE = "%22anon-7%22"
"""The value of an ajs_anonymous_id cookie as analytics.js classic writes it."""
PEER = {"REMOTE_ADDR": "127.0.0.1"}


def whoami(environ: Environ, start_response: Callable[..., object]) -> Iterable[bytes]:
    """Answer with the identity in force while the app runs, as JSON."""
    del environ
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps(_identity()).encode()]


def _no_response(status: str, *_: object) -> Callable[[bytes], object]:
    """A server's start_response that keeps nothing."""
    del status
    return lambda _chunk: None


def _identity() -> dict[str, Any] | None:
    current = otel_segment.current_identity()
    if current is None:
        return None
    return {
        "user_id": current.user_id,
        "anonymous_id": current.anonymous_id,
        "context": dict(current.context),
    }


def get(app: Callable[..., Iterable[bytes]], path: str = "/", **headers: str) -> Any:
    """GET *path* from 127.0.0.1 through Werkzeug's test client; the JSON answer."""
    browser = WerkzeugClient(app)
    cookie = headers.pop("Cookie", None)
    if cookie is not None:
        browser.set_cookie("ajs_anonymous_id", cookie)
    with browser.get(path, headers=headers, environ_base=PEER) as response:
        return response.get_json()


class TestScope:
    """Each request runs in an identity scope read from its headers."""

    def test_scope_from_the_request(self) -> None:
        """Cookie, identify, ip, userAgent, locale and page, as analytics.js fills them."""
        app = SegmentMiddleware(whoami, identify=lambda environ: environ["HTTP_X_USER"])
        seen = get(
            app,
            "/docs/start?ref=nav",
            Cookie=COOKIE,
            X_User="u1",
            User_Agent="Mozilla/5.0",
            Accept_Language="en-GB,en;q=0.8",
            Referer="https://search.example/",
        )

        expected = {
            "user_id": "u1",
            "anonymous_id": "anon-7",
            "context": {
                "page": {
                    "path": "/docs/start",
                    "search": "?ref=nav",
                    "referrer": "https://search.example/",
                    "url": "http://localhost/docs/start?ref=nav",
                },
                "ip": "127.0.0.1",
                "userAgent": "Mozilla/5.0",
                "locale": "en-GB",
            },
        }
        assert expected == seen

    def test_forwarded_for(self) -> None:
        """trust_forwarded: the first X-Forwarded-For hop; otherwise the peer."""
        headers = {"X-Forwarded-For": "203.0.113.9, 10.0.0.1"}
        trusting = SegmentMiddleware(whoami, trust_forwarded=True)
        assert "203.0.113.9" == get(trusting, **headers)["context"]["ip"]
        assert "127.0.0.1" == get(SegmentMiddleware(whoami), **headers)["context"]["ip"]
        assert "ip" not in get(SegmentMiddleware(whoami, collect_ip=False))["context"]

    def test_the_scope_ends_with_the_request(self) -> None:
        """The server's own context never sees the scope."""
        get(SegmentMiddleware(whoami, identify=lambda _environ: "u1"))
        assert otel_segment.current_identity() is None

    def test_streamed_body_is_inside_the_scope(self) -> None:
        """Each chunk of a streamed body is made inside the request's scope."""

        def stream(environ: Environ, start_response: Callable[..., object]) -> Iterator[bytes]:
            del environ
            start_response("200 OK", [])
            for _ in range(2):
                yield json.dumps(_identity()).encode() + b"\n"

        app = SegmentMiddleware(stream, identify=lambda _environ: "u1")
        with WerkzeugClient(app).get("/") as response:
            lines = response.get_data().splitlines()
        assert ["u1", "u1"] == [json.loads(line)["user_id"] for line in lines]

    @pytest.mark.parametrize(
        "junk",
        [
            lambda _environ: 1 / 0,
            lambda _environ: object(),
            lambda _environ: True,
            lambda _environ: {"id": "u1"},
        ],
    )
    def test_identify_that_fails(self, junk: Callable[[Environ], object]) -> None:
        """An identify that raises or returns junk: served, with no user id."""
        seen = get(SegmentMiddleware(whoami, identify=junk), Cookie=COOKIE)
        assert (None, "anon-7") == (seen["user_id"], seen["anonymous_id"])

    def test_malformed_environ(self, caplog: pytest.LogCaptureFixture) -> None:
        """An environ whose values are not strings: served without a scope, a warning."""
        answers: list[str] = []

        def start_response(status: str, *_: object) -> Callable[[bytes], object]:
            answers.append(status)
            return lambda _chunk: None

        app = SegmentMiddleware(whoami)
        environ: Environ = {"REQUEST_METHOD": "GET", "PATH_INFO": b"/bytes", "SCRIPT_NAME": ""}
        with caplog.at_level(logging.WARNING, logger="otel_segment"):
            body = app(environ, start_response)
        assert [b"null"] == list(body)
        assert ["200 OK"] == answers
        assert "could not read the request's identity" in caplog.text

    def test_context_made_only_when_read(self, caplog: pytest.LogCaptureFixture) -> None:
        """A header that cannot be read costs nothing until a message reads the scope."""

        def hello(environ: Environ, start_response: Callable[..., object]) -> Iterable[bytes]:
            del environ
            start_response("200 OK", [])
            return [b"hello"]

        environ: Environ = {"PATH_INFO": "/", "SCRIPT_NAME": "", "HTTP_COOKIE": 7}
        with caplog.at_level(logging.WARNING, logger="otel_segment"):
            assert [b"hello"] == list(SegmentMiddleware(hello)(dict(environ), _no_response))
            assert "could not read the request's identity" not in caplog.text
            app = SegmentMiddleware(whoami, identify=lambda _environ: "u1")
            seen = json.loads(b"".join(app(dict(environ), _no_response)))
        assert {"user_id": "u1", "anonymous_id": None, "context": {}} == seen
        assert "could not read the request's identity" in caplog.text

    def test_options_are_checked(self) -> None:
        """A wrong option fails at construction, naming it."""
        with pytest.raises(TypeError, match="app must be a WSGI callable"):
            SegmentMiddleware("app")  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="page must be a bool"):
            SegmentMiddleware(whoami, page="yes")  # type: ignore[arg-type]


class TestPages:
    """page=True: one page message per request, from inside its scope."""

    def test_one_page_per_request(self, clients: Clients, segment_server: ScriptedServer) -> None:
        """The page carries the scope's ids and context, and the response's status and time."""
        client = clients()
        app = SegmentMiddleware(whoami, client=client, page=True, identify=lambda _environ: 42)
        get(app, "/pricing?plan=pro", Cookie=COOKIE, Referer="https://x.example/")

        [page] = delivered(client, segment_server, 1)
        assert ("page", "/pricing", "42", "anon-7") == (
            page["type"],
            page["name"],
            page["userId"],
            page["anonymousId"],
        )
        properties = page["properties"]
        duration = properties.pop("duration_ms")
        assert 0 <= duration < 5_000
        assert {
            "path": "/pricing",
            "url": "http://localhost/pricing?plan=pro",
            "search": "?plan=pro",
            "referrer": "https://x.example/",
            "status": 200,
        } == properties
        assert "127.0.0.1" == page["context"]["ip"]
        assert "/pricing" == page["context"]["page"]["path"]

    def test_first_visit(self, clients: Clients, segment_server: ScriptedServer) -> None:
        """No cookie and no user: the page gets a fresh anonymous id, as analytics.js does."""
        client = clients()
        app = SegmentMiddleware(whoami, client=client, page=True)
        get(app, "/")
        get(app, "/")

        pages = delivered(client, segment_server, 2)
        ids = [page["anonymousId"] for page in pages]
        assert [None, None] == [page["userId"] for page in pages]
        assert all(str(uuid.UUID(anonymous)) == anonymous for anonymous in ids)
        assert ids[0] != ids[1]
        assert "/" == pages[0]["context"]["page"]["path"]

    def test_login_during_the_request(
        self, clients: Clients, segment_server: ScriptedServer
    ) -> None:
        """set_identity() in the app: the page is the new user's; a named route names it."""
        client = clients()

        def login(environ: Environ, start_response: Callable[..., object]) -> Iterable[bytes]:
            environ[PAGE_NAME_KEY] = "/login"
            otel_segment.set_identity(user_id="u2")
            start_response("302 Found", [("Location", "/")])
            return [b""]

        get(SegmentMiddleware(login, client=client, page=True), "/login?next=/")

        [page] = delivered(client, segment_server, 1)
        assert ("/login", "u2", 302) == (page["name"], page["userId"], page["properties"]["status"])

    def test_app_that_raises(self, clients: Clients, segment_server: ScriptedServer) -> None:
        """The app's exception reaches the server unchanged; the page says 500."""
        client = clients()

        def broken(environ: Environ, _start_response: Callable[..., object]) -> Iterable[bytes]:
            raise KeyError(environ["PATH_INFO"])

        app = SegmentMiddleware(broken, client=client, page=True)
        with pytest.raises(KeyError, match="/boom"):
            WerkzeugClient(app).get("/boom", environ_base=PEER)

        [page] = delivered(client, segment_server, 1)
        assert 500 == page["properties"]["status"]
        assert otel_segment.current_identity() is None

    def test_anonymous_request(self, clients: Clients, segment_server: ScriptedServer) -> None:
        """Neither cookie nor user: the page gets an anonymous id of its own."""
        client = clients()
        get(SegmentMiddleware(whoami, client=client, page=True))
        get(SegmentMiddleware(whoami, client=client, page=True))

        pages = delivered(client, segment_server, 2)
        ids = {page["anonymousId"] for page in pages}
        assert 2 == len(ids)
        assert all(len(anonymous) == 36 for anonymous in ids)

    def test_body_read_but_never_closed(
        self, clients: Clients, segment_server: ScriptedServer
    ) -> None:
        """A body read to its end sends the page; one left alone sends it when collected."""
        client = clients()
        app = SegmentMiddleware(whoami, client=client, page=True)
        environ = {"PATH_INFO": "/read", "wsgi.url_scheme": "http", "HTTP_HOST": "h"}
        assert [b"{"] == [chunk[:1] for chunk in app(environ, _start)]
        untouched = app({**environ, "PATH_INFO": "/untouched"}, _start)
        del untouched
        gc.collect()

        assert ["/read", "/untouched"] == [p["name"] for p in delivered(client, segment_server, 2)]

    @pytest.mark.usefixtures("no_write_key")
    def test_no_client(self, caplog: pytest.LogCaptureFixture) -> None:
        """No client and no write key: requests are served, one warning says why."""
        app = SegmentMiddleware(whoami, page=True)
        with caplog.at_level(logging.WARNING, logger="otel_segment"):
            assert get(app) is not None
            assert get(app) is not None
        assert 1 == caplog.text.count("no write key: page messages are not sent")

    def test_closed_client(self, clients: Clients, caplog: pytest.LogCaptureFixture) -> None:
        """A client shut down under the app: served, and a warning."""
        client = clients()
        client.shutdown()
        with caplog.at_level(logging.WARNING, logger="otel_segment"):
            assert get(SegmentMiddleware(whoami, client=client, page=True)) is not None
        assert "the page message of / was not sent" in caplog.text


def _start(status: str, headers: list[tuple[str, str]], *_: object) -> Callable[[bytes], None]:
    del status, headers
    return lambda _chunk: None


class TestUnderGunicorn:
    """Four preloaded sync workers, 2,000 requests, SIGTERM: every event arrives once."""

    REQUESTS = 2_000

    def test_every_event_arrives_once(self, segment_server: ScriptedServer) -> None:
        """Each answered request's track and page arrive exactly once after SIGTERM."""
        listener = socket.create_server(("127.0.0.1", 0))
        port = listener.getsockname()[1]
        env = {
            **os.environ,
            "SEGMENT_WRITE_KEY": WRITE_KEY,
            "SEGMENT_HOST": segment_server.url,
            "PYTHONPATH": str(Path(__file__).parent),
        }
        command = [sys.executable, "-m", "gunicorn", "--preload", "--workers", "4"]
        command += ["--bind", f"fd://{listener.fileno()}", "_gunicorn_app:application"]
        server = subprocess.Popen(
            command, env=env, pass_fds=[listener.fileno()], stderr=subprocess.PIPE, text=True
        )
        try:
            with concurrent.futures.ThreadPoolExecutor(8) as pool:
                statuses = list(pool.map(lambda n: _hit(port, n), range(self.REQUESTS)))
        finally:
            listener.close()
            server.send_signal(signal.SIGTERM)
            _, errors = server.communicate(timeout=30)

        assert 0 == server.returncode, errors
        assert [200] * self.REQUESTS == statuses
        assert segment_server.wait_for_messages(2 * self.REQUESTS, 10)
        messages = segment_server.messages
        assert 2 * self.REQUESTS == len({m["messageId"] for m in messages})
        kinds = collections.Counter(m["type"] for m in messages)
        assert {"track": self.REQUESTS, "page": self.REQUESTS} == kinds
        hits = sorted(m["properties"]["n"] for m in messages if m["type"] == "track")
        assert list(range(self.REQUESTS)) == hits
        assert {f"anon-{n}" for n in range(self.REQUESTS)} == {m["anonymousId"] for m in messages}


def _hit(port: int, n: int) -> int:
    """One ``GET /hit?n=N`` with its own anonymous id; the status."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("GET", f"/hit?n={n}", headers={"Cookie": f"ajs_anonymous_id=anon-{n}"})
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()
