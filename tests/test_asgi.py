"""Tests for otel_segment.integrations.asgi: Starlette's test client, FastAPI under uvicorn."""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import logging
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from _helpers import WRITE_KEY, delivered
from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.testclient import TestClient

import otel_segment
from otel_segment.integrations.asgi import Message, Scope, SegmentMiddleware

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from _helpers import Clients
    from _server import ScriptedServer
    from starlette.requests import Request
    from starlette.websockets import WebSocket

COOKIE = {"ajs_anonymous_id": '"anon-7"'}


def _identity() -> dict[str, Any] | None:
    current = otel_segment.current_identity()
    if current is None:
        return None
    return {
        "user_id": current.user_id,
        "anonymous_id": current.anonymous_id,
        "context": dict(current.context),
    }


async def whoami(request: Request) -> JSONResponse:
    """Answer with the identity in force while the endpoint runs."""
    del request
    return JSONResponse(_identity())


async def login(request: Request) -> JSONResponse:
    """Log the user in mid-request."""
    otel_segment.set_identity(user_id=request.path_params["user"])
    return JSONResponse(_identity(), status_code=201)


async def broken(request: Request) -> JSONResponse:
    """Fail before answering."""
    raise LookupError(request.url.path)


async def echo(websocket: WebSocket) -> None:
    """A websocket: answers with the identity it sees (none: websockets pass through)."""
    await websocket.accept()
    await websocket.send_json(_identity())
    await websocket.close()


def starlette_app(lifespan: Any = None, **options: Any) -> Starlette:
    """A Starlette app with the middleware; *options* are the middleware's."""
    app = Starlette(
        lifespan=lifespan,
        routes=[
            Route("/items/{item_id}", whoami),
            Route("/login/{user}", login, methods=["POST"]),
            Route("/broken", broken),
            WebSocketRoute("/ws", echo),
        ],
    )
    app.add_middleware(SegmentMiddleware, **options)
    return app


def get(app: Starlette, path: str = "/items/1", **headers: str) -> Any:
    """GET *path* through Starlette's test client, with the analytics.js cookie."""
    with TestClient(app, cookies=COOKIE) as browser:
        return browser.get(path, headers=headers).json()


class TestScope:
    """Each HTTP request runs in an identity scope read from its headers."""

    def test_scope_from_the_request(self) -> None:
        """Cookie, identify, ip, userAgent, locale and page, as analytics.js fills them."""
        app = starlette_app(identify=lambda _scope: 42)
        seen = get(
            app,
            "/items/9?color=red",
            **{"User-Agent": "Mozilla/5.0", "Accept-Language": "pt-BR", "Referer": "https://r/"},
        )

        expected = {
            "user_id": "42",
            "anonymous_id": "anon-7",
            "context": {
                "page": {
                    "path": "/items/9",
                    "search": "?color=red",
                    "referrer": "https://r/",
                    "url": "http://testserver/items/9?color=red",
                },
                "userAgent": "Mozilla/5.0",
                "locale": "pt-BR",
            },
        }
        assert expected == seen

    def test_forwarded_for(self) -> None:
        """trust_forwarded: the first X-Forwarded-For hop is the sender's address."""
        headers = {"X-Forwarded-For": "203.0.113.9, 10.0.0.1"}
        assert "203.0.113.9" == get(starlette_app(trust_forwarded=True), **headers)["context"]["ip"]
        assert "ip" not in get(starlette_app(collect_ip=False), **headers)["context"]

    def test_websocket_and_lifespan_pass_through(self) -> None:
        """A websocket has no scope; the lifespan runs as without the middleware."""
        phases: list[str] = []

        @contextlib.asynccontextmanager
        async def lifespan(app: Starlette) -> AsyncIterator[None]:
            del app
            phases.append("startup")
            yield
            phases.append("shutdown")

        app = starlette_app(lifespan)
        with TestClient(app) as browser, browser.websocket_connect("/ws") as websocket:
            assert websocket.receive_json() is None
        assert ["startup", "shutdown"] == phases

    def test_identify_that_fails(self) -> None:
        """An identify that raises: served, with no user id."""
        seen = get(starlette_app(identify=lambda _scope: 1 / 0))
        assert (None, "anon-7") == (seen["user_id"], seen["anonymous_id"])

    def test_malformed_scope(self, caplog: pytest.LogCaptureFixture) -> None:
        """Headers that are not byte pairs: served without a scope, and a warning."""
        sent: list[Message] = []
        scope: Scope = {
            "type": "http",
            "method": "GET",
            "path": "/items/3",
            "headers": [(b"cookie", 1)],
            "query_string": b"",
        }

        async def receive() -> Message:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: Message) -> None:
            sent.append(message)

        with caplog.at_level(logging.WARNING, logger="otel_segment"):
            asyncio.run(starlette_app()(scope, receive, send))
        assert 200 == sent[0]["status"]
        assert b"null" == sent[1]["body"]
        assert "could not read the request's identity" in caplog.text

    def test_options_are_checked(self) -> None:
        """A wrong option fails at construction, naming it."""
        with pytest.raises(TypeError, match="app must be an ASGI callable"):
            SegmentMiddleware(None)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="trust_forwarded must be a bool"):
            SegmentMiddleware(whoami, trust_forwarded=1)  # type: ignore[arg-type]


class TestPages:
    """page=True: one page message per request, named for its route."""

    def test_page_named_for_the_route(
        self, clients: Clients, segment_server: ScriptedServer
    ) -> None:
        """The route's template names the page; its properties describe the response."""
        client = clients()
        get(starlette_app(client=client, page=True), "/items/9?color=red")

        [page] = delivered(client, segment_server, 1)
        assert ("/items/{item_id}", "anon-7") == (page["name"], page["anonymousId"])
        properties = page["properties"]
        assert 0 <= properties.pop("duration_ms") < 5_000
        expected = {
            "path": "/items/9",
            "search": "?color=red",
            "referrer": "",
            "url": "http://testserver/items/9?color=red",
            "status": 200,
        }
        assert expected == properties

    def test_login_and_failure(self, clients: Clients, segment_server: ScriptedServer) -> None:
        """set_identity() in an endpoint names the page's user; an exception makes it a 500."""
        client = clients()
        app = starlette_app(client=client, page=True)
        with TestClient(app, cookies=COOKIE, raise_server_exceptions=False) as browser:
            assert 201 == browser.post("/login/u2").status_code
            assert 500 == browser.get("/broken").status_code

        pages = {page["name"]: page for page in delivered(client, segment_server, 2)}
        assert ("u2", 201) == (pages["/login/{user}"]["userId"], _status(pages["/login/{user}"]))
        assert 500 == _status(pages["/broken"])

    def test_lifespan_shutdown_flushes(
        self, clients: Clients, segment_server: ScriptedServer
    ) -> None:
        """The app's shutdown sends what is queued: uvicorn may skip atexit."""
        client = clients(flush_interval=30)
        with TestClient(starlette_app(client=client, page=True)) as browser:
            browser.get("/items/1")
            assert 0 == len(segment_server.messages)
        assert segment_server.wait_for_messages(1)


def _status(page: dict[str, Any]) -> int:
    status: int = page["properties"]["status"]
    return status


class TestUnderUvicorn:
    """A FastAPI app in a uvicorn process, driven over HTTP, stopped with SIGTERM."""

    def test_requests_and_pages_arrive(self, segment_server: ScriptedServer) -> None:
        """Each request's identity reaches the endpoint; its track and page arrive at exit."""
        listener = socket.create_server(("127.0.0.1", 0))
        port = listener.getsockname()[1]
        env = {
            **os.environ,
            "SEGMENT_WRITE_KEY": WRITE_KEY,
            "SEGMENT_HOST": segment_server.url,
            "PYTHONPATH": str(Path(__file__).parent),
        }
        command = [sys.executable, "-m", "uvicorn", "--fd", str(listener.fileno())]
        server = subprocess.Popen(
            [*command, "--log-level", "warning", "_asgi_app:app"],
            env=env,
            pass_fds=[listener.fileno()],
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            answers = [_get(port, f"/items/{n}?n={n}", n) for n in range(5)]
        finally:
            listener.close()
            server.send_signal(signal.SIGTERM)
            _, errors = server.communicate(timeout=30)

        assert server.returncode in {0, -signal.SIGTERM}, errors
        assert [("u0", "anon-0", "/items/0"), ("u1", "anon-1", "/items/1")] == [
            (a["user_id"], a["anonymous_id"], a["page"]["path"]) for a in answers[:2]
        ]
        assert "127.0.0.1" == answers[0]["ip"]
        assert segment_server.wait_for_messages(10, 10)
        messages = segment_server.messages
        tracks = sorted(
            (m["userId"], m["properties"]["item_id"]) for m in messages if m["type"] == "track"
        )
        assert [(f"u{n}", n) for n in range(5)] == tracks
        pages = sorted(
            (m["userId"], m["name"], m["properties"]["status"])
            for m in messages
            if m["type"] == "page"
        )
        assert [(f"u{n}", "/items/{item_id}", 200) for n in range(5)] == pages


def _get(port: int, path: str, n: int) -> Any:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        headers = {"Cookie": f"ajs_anonymous_id=%22anon-{n}%22", "X-User": f"u{n}"}
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        assert 200 == response.status
        return json.loads(response.read())
    finally:
        connection.close()


class TestSampledSpans:
    """FastAPI's instrumentation at 1 % sampling: markers set in the endpoint still count."""

    def test_every_marked_request_arrives(
        self, clients: Clients, segment_server: ScriptedServer
    ) -> None:
        """100 requests, each marked in its endpoint: 100 events, with the request's user."""
        client = clients()
        sampler = otel_segment.SegmentSampler(ParentBased(TraceIdRatioBased(0.01)))
        provider = TracerProvider(sampler=sampler)
        provider.add_span_processor(otel_segment.SegmentSpanProcessor(client=client))
        app = FastAPI()

        @app.get("/signup")
        async def signup() -> dict[str, str]:
            current = otel_segment.current_identity()
            user = current.user_id if current is not None else None
            trace.get_current_span().set_attributes(
                {"segment.event": "Signed Up", "enduser.id": user or ""}
            )
            return {"ok": "yes"}

        FastAPIInstrumentor.instrument_app(app, tracer_provider=provider)
        app.add_middleware(SegmentMiddleware, identify=_header_user)
        try:
            with TestClient(app) as browser:
                for n in range(100):
                    browser.get("/signup", headers={"X-User": f"u{n}"})
        finally:
            FastAPIInstrumentor.uninstrument_app(app)
            provider.shutdown()

        events = [m for m in delivered(client, segment_server) if m.get("event") == "Signed Up"]
        assert sorted(f"u{n}" for n in range(100)) == sorted(m["userId"] for m in events)


def _header_user(scope: Scope) -> str | None:
    return dict(scope["headers"]).get(b"x-user", b"").decode() or None
