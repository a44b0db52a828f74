"""
A FastAPI app for uvicorn: each request tracks one event; the middleware sends a page.

The client reads ``$SEGMENT_WRITE_KEY`` and ``$SEGMENT_HOST``, and flushes at exit when
SIGTERM stops uvicorn. ``GET /items/{item_id}`` answers with the request's identity.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

import otel_segment
from otel_segment.integrations.asgi import Scope, SegmentMiddleware

client = otel_segment.Client(flush_interval=30)  # only the shutdown sends
app = FastAPI()


def user_header(scope: Scope) -> str | None:
    """The user id: the ``X-User`` header, as a stand-in for a session lookup."""
    for name, value in scope["headers"]:
        if name == b"x-user":
            return bytes(value).decode()
    return None


@app.get("/items/{item_id}")
async def item(item_id: int) -> dict[str, Any]:
    """Track ``Item Viewed`` with the ids of the request's scope; answer with them."""
    current = otel_segment.current_identity()
    assert current is not None
    client.track(
        user_id=current.user_id,
        event="Item Viewed",
        properties={"item_id": item_id},
        context=dict(current.context),
        anonymous_id=current.anonymous_id,
    )
    return {"user_id": current.user_id, "anonymous_id": current.anonymous_id, **current.context}


app.add_middleware(SegmentMiddleware, client=client, page=True, identify=user_header)
