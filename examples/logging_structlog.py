"""
Analytics from structlog: its events go through stdlib logging to a SegmentHandler.

Runs with no write key: it starts a Segment-compatible sink on 127.0.0.1 and a client
pointed at it. structlog renders each event with ``render_to_log_kwargs``, so its
key-value pairs arrive as flat ``extra`` fields: ``segment=...`` (``**annotate(...)``)
marks an event for Segment, and the other pairs (bound ones included) become its
properties or traits.

Run (it needs the ``examples`` extra)::

    python -m pip install 'otel-segment[examples]'
    python examples/logging_structlog.py
"""

from __future__ import annotations

import logging

import structlog

import otel_segment
from otel_segment.sink import Sink, format_message


def configure_structlog() -> None:
    """structlog on top of stdlib logging, rendering events as logging keyword arguments."""
    structlog.configure(
        processors=[structlog.contextvars.merge_contextvars, structlog.stdlib.render_to_log_kwargs],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


def main() -> None:
    """Run the example."""
    with Sink() as sink, otel_segment.Client("demo-key", host=sink.url) as client:
        handler = otel_segment.SegmentHandler(client=client)
        logging.basicConfig(level=logging.INFO, format="%(levelname)-7s %(name)s: %(message)s")
        logging.getLogger().addHandler(handler)
        configure_structlog()
        log = structlog.get_logger("shop").bind(plan="pro")

        log.info("cache warmed", entries=1200)  # not annotated: a log line, no message
        log.info("Signed Up", **otel_segment.annotate(user_id="u1"))
        structlog.contextvars.bind_contextvars(request_id="r-7")
        log.info("Order Completed", total=42.5, **otel_segment.annotate(user_id="u1"))
        log.info("u1 upgraded", **otel_segment.annotate("identify", user_id="u1", seats=5))
        structlog.contextvars.clear_contextvars()

        handler.flush()
        for message in sink.messages:
            print(format_message(message))
        logging.getLogger().removeHandler(handler)
        handler.close()
        print(client.stats())


if __name__ == "__main__":
    main()
