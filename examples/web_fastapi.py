"""
A FastAPI app whose requests are attributed to the visitor analytics.js saw.

The ASGI ``SegmentMiddleware`` runs each request in an identity scope (the
``ajs_anonymous_id`` cookie, the user ``identify(scope)`` returns, and the request's
context) and, with ``page=True``, sends a ``page`` per request named for the route. When
the app's lifespan ends it flushes the client: uvicorn ends the process on SIGTERM
without running ``atexit``.

It opens no socket of its own: Starlette's test client makes one request, and the
messages go to a local sink. The middleware needs no extra; the example needs FastAPI
and the test client's ``httpx2``.

Run::

    python -m pip install 'otel-segment[examples]'
    python examples/web_fastapi.py
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.testclient import TestClient

import otel_segment
from otel_segment.integrations.asgi import Scope, SegmentMiddleware
from otel_segment.sink import Sink, format_message


def api_key_user(scope: Scope) -> str | None:
    """The user id: here, the caller's ``X-Api-User`` header (a real app checks a token)."""
    headers = dict(scope["headers"])
    user = headers.get(b"x-api-user")
    return None if user is None else bytes(user).decode()


def create_app(client: otel_segment.Client) -> FastAPI:
    """The app, with the middleware."""
    app = FastAPI()

    @app.get("/reports/{report_id}")
    async def report(report_id: int) -> dict[str, object]:
        current = otel_segment.current_identity() or otel_segment.Identity()
        client.track(
            current.user_id,
            "Report Viewed",
            {"report_id": report_id},
            anonymous_id=current.anonymous_id,
            context=dict(current.context),
        )
        return {"report_id": report_id, "user": current.user_id}

    app.add_middleware(SegmentMiddleware, client=client, page=True, identify=api_key_user)
    return app


def main() -> None:
    """Make one request and print what Segment got once the app shut down."""
    with (
        Sink() as sink,
        otel_segment.Client("demo-key", host=sink.url, flush_interval=60) as client,
    ):
        cookies = {"ajs_anonymous_id": '"anon-7"'}
        with TestClient(create_app(client), cookies=cookies) as browser:  # runs the lifespan
            response = browser.get("/reports/17?range=7d", headers={"X-Api-User": "u1"})
            print(f"GET /reports/17 -> {response.status_code} {response.json()}")
        # No flush() here: the lifespan's end flushed the client.
        for message in sink.messages:
            print(format_message(message))


if __name__ == "__main__":
    main()
