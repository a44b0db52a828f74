"""
What each web middleware adds to a request of a hello-world app; a table and ``RESULT``.

Usage: ``python bench/integrations.py [--requests N] [--rounds R]`` (2,000 and 30; needs
the frameworks of the ``test`` dependency group; a framework not installed is skipped).

Method. Each app is timed without and with the middleware, in the same process and
round, by calling it directly, with no server and no sockets:

- **wsgi**: a WSGI hello world, called with a browser-like environ (the analytics.js
  cookie, User-Agent, Accept-Language, Referer), its body read and closed;
- **asgi**: an ASGI hello world, called with the same request as an ASGI scope and
  awaited in one ``asyncio.run``;
- **django**: Django's ``WSGIHandler`` (no other middleware, one URL), built once with
  and once without ``SegmentMiddleware`` in ``MIDDLEWARE``;
- **flask**: a Flask app's WSGI callable, with and without ``init_app``.

*added* = with - without, µs per request. With ``page=True`` each request also builds,
encodes and queues a ``page`` message, through a ``Client(send=False)`` (which does all
but queue it). Target: *added* <= 25 µs without pages. Each figure is the best of *R*
rounds of *N* requests after a warm-up, in CPU time of the calling thread
(``time.thread_time``): on a shared machine, wall time also counts the waits for a CPU.
"""

from __future__ import annotations

import asyncio
import gc
import importlib.util
import io
import sys
import time
from typing import TYPE_CHECKING, Any, Final

from _common import WARM_UP, per_call_us, run_and_report

import otel_segment
from otel_segment.integrations import asgi, wsgi

if TYPE_CHECKING:
    from collections.abc import Callable

MAX_ADDED_US: Final = 25.0

HEADERS: Final = {
    "cookie": "theme=dark; ajs_anonymous_id=%22e5d8c2b0-6f7a-4d4e-9a51-2f3c1b7e9d10%22",
    "user-agent": "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    "accept-language": "en-US,en;q=0.5",
    "referer": "https://www.example.com/blog/launch",
    "host": "shop.example.com",
}
ENVIRON: Final = {
    "REQUEST_METHOD": "GET",
    "SCRIPT_NAME": "",
    "PATH_INFO": "/",
    "QUERY_STRING": "utm_source=newsletter",
    "SERVER_NAME": "shop.example.com",
    "SERVER_PORT": "443",
    "SERVER_PROTOCOL": "HTTP/1.1",
    "REMOTE_ADDR": "203.0.113.9",
    "wsgi.url_scheme": "https",
    "wsgi.input": io.BytesIO(),
    **{"HTTP_" + name.upper().replace("-", "_"): value for name, value in HEADERS.items()},
}
SCOPE: Final = {
    "type": "http",
    "asgi": {"version": "3.0"},
    "http_version": "1.1",
    "method": "GET",
    "scheme": "https",
    "path": "/",
    "raw_path": b"/",
    "query_string": b"utm_source=newsletter",
    "root_path": "",
    "headers": [(name.encode(), value.encode()) for name, value in HEADERS.items()],
    "client": ("203.0.113.9", 50000),
    "server": ("shop.example.com", 443),
}


def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
    """A server's start_response that sends nothing."""
    del status, headers, exc_info
    return None


def hello_wsgi(environ: dict[str, Any], respond: Callable[..., Any]) -> list[bytes]:
    """The WSGI hello world."""
    del environ
    respond("200 OK", [("Content-Type", "text/plain")])
    return [b"Hello, world!"]


async def hello_asgi(scope: Any, receive: Any, send: Any) -> None:
    """The ASGI hello world."""
    del scope, receive
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"Hello, world!"})


def wsgi_request(app: Callable[..., Any]) -> Callable[[], object]:
    """One request to the WSGI *app*: call, read and close the body."""

    def request() -> object:
        body = app(dict(ENVIRON), start_response)
        chunks = list(body)
        close = getattr(body, "close", None)
        if close is not None:
            close()
        return chunks

    return request


def asgi_us(app: Callable[..., Any], requests: int) -> float:
    """CPU µs per request to the ASGI *app*, awaited in one event loop."""

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        del message

    async def loop() -> float:
        for _ in range(WARM_UP):
            await app(dict(SCOPE), receive, send)
        gc.collect()
        start = time.thread_time()
        for _ in range(requests):
            await app(dict(SCOPE), receive, send)
        return (time.thread_time() - start) / requests * 1e6

    return asyncio.run(loop())


def django_handlers(client: otel_segment.Client) -> dict[str, Callable[..., Any]]:
    """Django's WSGI handler without the middleware, with it, and with pages."""
    from django.conf import settings  # noqa: PLC0415 - optional
    from django.core.handlers.wsgi import WSGIHandler  # noqa: PLC0415
    from django.http import HttpResponse  # noqa: PLC0415
    from django.test import override_settings  # noqa: PLC0415
    from django.urls import path  # noqa: PLC0415

    settings.configure(
        ROOT_URLCONF=__name__,
        ALLOWED_HOSTS=["*"],
        SECRET_KEY="bench",
        MIDDLEWARE=[],
    )
    import django  # noqa: PLC0415

    django.setup()
    globals()["urlpatterns"] = [path("", lambda _request: HttpResponse(b"Hello, world!"))]
    otel_segment.default_client = client  # the middleware's pages go to the default client
    middleware = ["otel_segment.integrations.django.SegmentMiddleware"]
    handlers: dict[str, Callable[..., Any]] = {"without": WSGIHandler()}
    with override_settings(MIDDLEWARE=middleware):
        handlers["with"] = WSGIHandler()
    with override_settings(MIDDLEWARE=middleware, OTEL_SEGMENT_MIDDLEWARE={"page": True}):
        handlers["with pages"] = WSGIHandler()
    return handlers


def flask_apps(client: otel_segment.Client) -> dict[str, Callable[..., Any]]:
    """A Flask hello world without the integration, with it, and with pages."""
    from flask import Flask  # noqa: PLC0415 - optional

    from otel_segment.integrations.flask import init_app  # noqa: PLC0415

    apps: dict[str, Callable[..., Any]] = {}
    for name, wrapped, page in (
        ("without", False, False),
        ("with", True, False),
        ("with pages", True, True),
    ):
        app = Flask(f"bench-{name}")
        app.get("/")(lambda: "Hello, world!")
        if wrapped:
            init_app(app, client=client, page=page)
        apps[name] = app
    return apps


def subjects(client: otel_segment.Client) -> dict[str, dict[str, Callable[..., Any]]]:
    """Each framework's apps: without, with and with pages."""
    found: dict[str, dict[str, Callable[..., Any]]] = {
        "wsgi": {
            "without": hello_wsgi,
            "with": wsgi.SegmentMiddleware(hello_wsgi, client=client),
            "with pages": wsgi.SegmentMiddleware(hello_wsgi, client=client, page=True),
        },
        "asgi": {
            "without": hello_asgi,
            "with": asgi.SegmentMiddleware(hello_asgi, client=client),
            "with pages": asgi.SegmentMiddleware(hello_asgi, client=client, page=True),
        },
    }
    if importlib.util.find_spec("django") is not None:
        found["django"] = django_handlers(client)
    if importlib.util.find_spec("flask") is not None:
        found["flask"] = flask_apps(client)
    return found


def run(requests: int, rounds: int) -> dict[str, Any]:
    """Every framework, *rounds* times; the best figures."""
    client = otel_segment.Client("bench", send=False)
    try:
        apps = subjects(client)
        best = {name: dict.fromkeys(variants, float("inf")) for name, variants in apps.items()}
        for _ in range(rounds):
            for name, variants in apps.items():
                for variant, app in variants.items():
                    if name == "asgi":
                        figure = asgi_us(app, requests)
                    else:
                        figure = per_call_us(wsgi_request(app), requests)[1]
                    best[name][variant] = min(best[name][variant], figure)
    finally:
        client.shutdown()
    frameworks = {
        name: {
            **figures,
            "added_us": figures["with"] - figures["without"],
            "added_with_pages_us": figures["with pages"] - figures["without"],
        }
        for name, figures in best.items()
    }
    return {
        "bench": "integrations",
        "requests": requests,
        "rounds": rounds,
        "frameworks": frameworks,
        "target_added_us_max": MAX_ADDED_US,
        "ok": all(f["added_us"] <= MAX_ADDED_US for f in frameworks.values()),
    }


def table(result: dict[str, Any]) -> str:
    """The figures as an aligned table."""
    lines = [
        (
            f"middleware overhead on a hello world: best of {result['rounds']} rounds of "
            f"{result['requests']:,} requests (CPU µs per request)"
        ),
        (
            f"{'':8} {'without':>8} {'with':>8} {'added':>7} {'w/ pages':>9} {'added':>7}"
            f"  target added <= {MAX_ADDED_US:.0f}"
        ),
    ]
    for name, f in result["frameworks"].items():
        verdict = "PASS" if f["added_us"] <= MAX_ADDED_US else "MISS"
        lines.append(
            f"{name:8} {f['without']:8.2f} {f['with']:8.2f} {f['added_us']:7.2f} "
            f"{f['with pages']:9.2f} {f['added_with_pages_us']:7.2f}  {verdict}"
        )
    lines.append("pages: each request also builds and encodes a page message (send=False)")
    return "\n".join(lines)


if __name__ == "__main__":
    run_and_report(
        sys.argv[1:],
        "What each web middleware adds to a request.",
        ("requests", 2_000),
        run,
        table,
        rounds=30,  # many short rounds: the best one is a quiet one on a shared machine
    )
