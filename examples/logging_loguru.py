"""
Analytics from loguru: a SegmentHandler added as a loguru sink.

Runs with no write key: it starts a Segment-compatible sink on 127.0.0.1 and a client
pointed at it. loguru hands a standard handler a record whose extras are nested in
``record.extra``; bound values and keyword arguments land there, so ``segment=...``
(``**annotate(...)``) marks a record and the other extras become its properties or
traits. Add the handler with ``format="{message}"`` so that the record's message (the
default event name) is just the message.

Run (it needs the ``examples`` extra)::

    python -m pip install 'otel-segment[examples]'
    python examples/logging_loguru.py
"""

from __future__ import annotations

from loguru import logger

import otel_segment
from otel_segment.sink import Sink, format_message


def main() -> None:
    """Run the example."""
    with Sink() as sink, otel_segment.Client("demo-key", host=sink.url) as client:
        handler = otel_segment.SegmentHandler(client=client)
        sink_id = logger.add(handler, format="{message}", level="INFO")

        logger.info("cache warmed")  # not annotated: a log line, no message
        logger.bind(**otel_segment.annotate(user_id="u1"), plan="pro").info("Signed Up")
        logger.info("Order Completed", total=42.5, **otel_segment.annotate(user_id="u1"))
        shop = logger.bind(**otel_segment.annotate("group", user_id="u1", group_id="acme"))
        shop.info("u1 joined acme", employees=42)

        handler.flush()
        for message in sink.messages:
            print(format_message(message))
        logger.remove(sink_id)  # closes the handler; the client is ours to shut down
        print(client.stats())


if __name__ == "__main__":
    main()
