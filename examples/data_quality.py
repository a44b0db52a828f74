"""
Data quality: scrub messages with before_send, and check them against a tracking plan.

Run: ``python examples/data_quality.py`` (no write key: it sends to a local sink).

A structlog-style ``request_id`` that leaked into identify traits is scrubbed by
``before_send``, health checks are dropped, every track carries the app's super
properties, and messages that break ``examples/tracking_plan.json`` are reported (and
still sent: ``on_violation="report"``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import otel_segment
from otel_segment.sink import Sink

PLAN = Path(__file__).with_name("tracking_plan.json")


def scrub(message: dict[str, Any]) -> dict[str, Any] | None:
    """Drop health checks; remove request ids from properties and traits."""
    if message.get("event") == "Health Checked":
        return None  # counted in stats()["filtered"]
    for field in ("properties", "traits"):
        message.get(field, {}).pop("request_id", None)
    return message


def report(error: Exception, _messages: list[dict[str, Any]]) -> None:
    """on_error: print each violation, field by field."""
    if isinstance(error, otel_segment.PlanViolation):
        for problem in error.errors:
            print(f"violation in {error.event or error.message_type}: {problem}")


def main() -> None:
    """Send a few messages through the hooks and show what arrived."""
    logging.getLogger("otel_segment").setLevel(logging.ERROR)  # the example prints instead
    plan = otel_segment.TrackingPlan.load(PLAN, unplanned="violation")
    with (
        Sink() as sink,
        otel_segment.Client(
            "demo-key",
            host=sink.url,
            before_send=scrub,
            super_properties={"app": "shop", "app_version": "7.1"},
            plan=plan,
            on_violation="report",
            on_error=report,
        ) as client,
    ):
        client.identify("u1", {"email": "ada@example.com", "request_id": "req-9f2"})
        client.track("u1", "Signed Up", {"plan": "pro"})
        client.track("u1", "Order Completed", {"order_id": "o-1", "total": "42.50"})
        client.track("u1", "Health Checked")
        client.track("u1", "Coupon Applied", {"code": "SPRING"})
        client.flush()
        for message in sink.messages:
            payload = message.get("properties", message.get("traits"))
            print(f"sent {message['type']} {message.get('event', '')}: {payload}")
        stats = client.stats()
        print(f"filtered={stats['filtered']} violations={stats['violations']}")


if __name__ == "__main__":
    main()
