"""
Analytics from the logging you already have: SegmentHandler configured by dictConfig.

Runs with no write key: it starts a Segment-compatible sink on 127.0.0.1, configures
logging with a console handler and a ``SegmentHandler`` (which builds and owns its
client from the keys ``write_key``, ``host``, ``flush_at`` ...), logs a few records,
and shows what the sink received. Only annotated records become messages; the others
are ordinary log lines.

Run: ``python examples/logging_dictconfig.py`` (no write key, no network: a local sink).
"""

from __future__ import annotations

import logging
import logging.config

import otel_segment
from otel_segment.sink import Sink, format_message


def configure_logging(host: str) -> None:
    """Console output plus Segment, both on the root logger."""
    logging.config.dictConfig(
        {
            "version": 1,
            "disable_existing_loggers": False,
            "formatters": {"plain": {"format": "%(levelname)-7s %(name)s: %(message)s"}},
            "handlers": {
                "console": {"class": "logging.StreamHandler", "formatter": "plain"},
                "segment": {
                    "class": "otel_segment.SegmentHandler",
                    "level": "INFO",
                    "write_key": "demo-key",
                    "host": host,
                    "flush_at": 50,
                },
            },
            "root": {"level": "INFO", "handlers": ["console", "segment"]},
        }
    )


def segment_handler() -> otel_segment.SegmentHandler:
    """The SegmentHandler that dictConfig attached to the root logger."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler, otel_segment.SegmentHandler):
            return handler
    raise LookupError("no SegmentHandler on the root logger")


def main() -> None:
    """Run the example."""
    with Sink() as sink:
        configure_logging(sink.url)
        log = logging.getLogger("shop")

        log.info("service started")  # not annotated: a log line, no message
        log.info("Signed Up", extra=otel_segment.annotate(user_id="u1", plan="pro"))
        log.info(
            "u1 changed their profile",
            extra=otel_segment.annotate("identify", user_id="u1", email="ada@example.com"),
        )
        log.info("Pricing", extra=otel_segment.annotate("page", user_id="u1", category="Shop"))
        # The plain dict form; other extra fields join the properties.
        log.info(
            "Order Completed",
            extra={"segment": {"user_id": "u1", "properties": {"total": 42.5}}, "currency": "EUR"},
        )
        # A bad annotation (no user id) is counted and reported, never raised.
        log.info("Broken", extra=otel_segment.annotate(plan="pro"))

        [handler] = [
            h for h in logging.getLogger().handlers if isinstance(h, otel_segment.SegmentHandler)
        ]
        handler.flush()
        for message in sink.messages:
            print(format_message(message))
        if handler.client is not None:
            print(handler.client.stats())
        logging.shutdown()  # closes the handler, which shuts its own client down


if __name__ == "__main__":
    main()
