"""
A WSGI app for gunicorn (``--preload``): each request tracks one event and sends one page.

The client is built at import, in gunicorn's master, before the workers fork; each
worker must get a working pipeline of its own and flush it when SIGTERM stops it.
``GET /hit?n=7`` tracks ``Hit`` with ``{"n": 7}`` and the request's ids.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import parse_qs

import otel_segment
from otel_segment.integrations.wsgi import SegmentMiddleware

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

client = otel_segment.Client(flush_interval=0.05)  # $SEGMENT_WRITE_KEY, $SEGMENT_HOST


def hit(environ: dict[str, object], start_response: Callable[..., object]) -> Iterable[bytes]:
    """Track one ``Hit``, with the ids of the request's scope."""
    current = otel_segment.current_identity()
    assert current is not None
    n = int(parse_qs(str(environ.get("QUERY_STRING", "")))["n"][0])
    client.track(
        user_id=current.user_id,
        event="Hit",
        properties={"n": n},
        context=dict(current.context),
        anonymous_id=current.anonymous_id,
    )
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]


application = SegmentMiddleware(hit, client=client, page=True)
