"""
Analytics from the spans a service already makes: a span marked with ``segment.*``
attributes becomes a Segment message when it ends.

Runs with no write key: it starts a Segment-compatible sink on 127.0.0.1, points a
client at it, ends a few spans and prints what arrived.

Run: ``python examples/otel_traces.py`` (no write key, no network: a local sink).
"""

from __future__ import annotations

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import Status, StatusCode

import otel_segment
from otel_segment.sink import Sink, format_message


def main() -> None:
    """Run the example."""
    with Sink() as sink, otel_segment.Client("demo-key", host=sink.url) as client:
        resource = Resource.create({"service.name": "shop", "service.version": "1.4.0"})
        provider = TracerProvider(resource=resource)
        provider.add_span_processor(otel_segment.SegmentSpanProcessor(client=client))
        tracer = provider.get_tracer("shop.checkout")

        # A track: the event, the user (enduser.id), properties from segment.properties.*.
        with tracer.start_as_current_span(
            "checkout",
            attributes={
                "segment.event": "Order Completed",
                "enduser.id": "u1",
                "segment.properties.total": 42.5,
                "segment.properties.currency": "EUR",
            },
        ) as span:
            # A span event with markers is a message of its own, at the event's time.
            span.add_event(
                "coupon", {"segment.event": "Coupon Applied", "segment.properties.code": "SPRING"}
            )

        # Any call: segment.type picks it; traits from segment.traits.*.
        with tracer.start_as_current_span(
            "update profile",
            attributes={
                "segment.type": "identify",
                "enduser.id": "u1",
                "segment.traits.plan": "pro",
            },
        ):
            pass

        # A failed operation: the track says so (status, error, error_message).
        with tracer.start_as_current_span(
            "payment", attributes={"segment.event": "Payment Failed", "enduser.id": "u1"}
        ) as span:
            span.set_status(Status(StatusCode.ERROR, "card declined"))

        # Unmarked spans cost a lookup and send nothing.
        with tracer.start_as_current_span("SELECT orders"):
            pass

        provider.shutdown()  # the processor flushes the client (it does not own it)
        for message in sink.messages:
            print(format_message(message))
        first = sink.messages[0]["context"]
        print(f"context.app={first['app']} context.trace.trace_id={first['trace']['trace_id']}")


if __name__ == "__main__":
    main()
