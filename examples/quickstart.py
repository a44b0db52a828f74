"""
Send a few messages to a local sink and print what arrived.

Runs with no write key: it starts a Segment-compatible sink on 127.0.0.1, points a
client at it, sends one message of each type, and shows the batch as received.

Run: ``python examples/quickstart.py`` (no write key, no network: a local sink).
"""

from __future__ import annotations

import otel_segment
from otel_segment.sink import Sink, format_message


def main() -> None:
    """Run the quick start."""
    with Sink() as sink, otel_segment.Client("demo-key", host=sink.url) as client:
        client.identify("u1", {"email": "ada@example.com", "plan": "pro"})
        client.track("u1", "Signed Up", {"referrer": "newsletter"})
        client.page("u1", "Docs", "Quick start", {"path": "/docs/quickstart"})
        client.group("u1", "acme", {"name": "Acme Inc.", "employees": 42})
        client.alias("anon-7", "u1")
        client.track(anonymous_id="anon-7", event="Viewed Pricing")
        client.flush()
        for message in sink.messages:
            print(format_message(message))
        print(client.stats())


if __name__ == "__main__":
    main()
