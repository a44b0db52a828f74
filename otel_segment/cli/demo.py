"""
``otel-segment demo``: logging, OpenTelemetry and a decorator feeding one client.

With no ``--host``, a local sink is started and every batch it receives is shown as it
arrives; with ``--host`` / ``--write-key`` (or ``$SEGMENT_HOST`` / ``$SEGMENT_WRITE_KEY``)
the same scenario goes to a real endpoint.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import sys
import threading
from typing import TYPE_CHECKING

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

from otel_segment.cli.common import CLI_RETRY, as_flags, write_key_for
from otel_segment.pipeline.client import Client
from otel_segment.sink import Sink, format_message
from otel_segment.sources.handler import SegmentHandler
from otel_segment.sources.otel import SegmentSpanProcessor

if TYPE_CHECKING:
    import argparse

    from otel_segment.sink import ReceivedRequest

__all__ = ["run_demo"]

_DEMO_WRITE_KEY = "demo-write-key"


@dataclasses.dataclass(frozen=True, slots=True)
class _User:
    id: str
    email: str


@dataclasses.dataclass(frozen=True, slots=True)
class _Order:
    id: str
    total: float
    currency: str


def run_demo(args: argparse.Namespace) -> int:
    """Run the scripted scenario; returns the exit status."""
    lock = threading.Lock()

    def show(request: ReceivedRequest) -> None:
        with lock:
            size = len(request.body)
            print(f"-- batch of {len(request.messages)} message(s), {size} bytes")
            for message in request.messages:
                trace = message.get("context", {}).get("trace", {}).get("trace_id")
                joined = f"  trace={trace[:12]}..." if trace else ""
                print(f"   {format_message(message)}{joined}")
            sys.stdout.flush()

    with contextlib.ExitStack() as stack:
        if args.host:
            host, write_key = args.host, write_key_for(args.host, args.write_key)
            print(f"sending to {host}")
        else:
            sink = stack.enter_context(Sink(on_batch=show))
            host, write_key = sink.url, args.write_key or _DEMO_WRITE_KEY
            print(f"local sink on {sink.url} (no write key needed)")
        errors: list[Exception] = []
        try:
            client = Client(
                write_key,
                host,
                flush_interval=0.2,
                gzip=args.gzip,
                timeout=args.timeout,
                retry=CLI_RETRY,  # someone is watching: give up in seconds, not minutes
                on_error=lambda error, _messages: errors.append(error),
            )
        except (TypeError, ValueError) as exc:
            print(f"otel-segment demo: {as_flags(str(exc))}", file=sys.stderr)
            return 2
        stack.enter_context(client)
        _scenario(client)
        delivered = client.flush(timeout=10)
        print(f"stats: {client.stats()}")
        if delivered and not client.stats()["failed"]:
            return 0
        reason = errors[0] if errors else "the queue did not drain within 10 s"
        print(f"otel-segment demo: not delivered to {host}: {reason}", file=sys.stderr)
        return 1


def _delivered(client: Client) -> bool:
    """Wait for this step's messages; ``False`` if some failed (the scenario stops)."""
    return client.flush(timeout=10) and not client.stats()["failed"]


def _scenario(client: Client) -> None:
    """A user signs up, is identified, joins a group, views a page, completes an order."""
    log = logging.getLogger("demo_shop")  # not under "otel_segment": those records are ours
    log.propagate = False
    log.setLevel(logging.INFO)
    handler = SegmentHandler(client=client)
    log.addHandler(handler)
    provider = TracerProvider(
        resource=Resource.create({"service.name": "demo-shop", "service.version": "1.0"})
    )
    provider.add_span_processor(SegmentSpanProcessor(client=client))
    tracer = provider.get_tracer("otel_segment.demo")
    user = _User("u-42", "ada@example.com")

    @client.tracked(
        "Order Completed",
        user_id="user.id",
        properties=["order.id", "order.total", "order.currency"],
    )
    def checkout(user: _User, order: _Order) -> str:
        return f"receipt-{order.id} for {user.email}"

    try:
        print("1. logging: a user signs up, and is identified")
        log.info(
            "Signed Up", extra={"segment": {"user_id": user.id}, "plan": "trial", "source": "ads"}
        )
        log.info(
            "identify",
            extra={
                "segment": {"type": "identify", "user_id": user.id, "traits": {"email": user.email}}
            },
        )
        if not _delivered(client):
            return
        print("2. OpenTelemetry: a span joins the team; a request span views a page")
        with tracer.start_as_current_span(
            "join team",
            attributes={
                "segment.type": "group",
                "enduser.id": user.id,
                "segment.group_id": "acme",
                "segment.traits.name": "Acme Inc.",
            },
        ):
            pass
        with tracer.start_as_current_span(
            "GET /pricing",
            attributes={
                "segment.type": "page",
                "enduser.id": user.id,
                "segment.name": "Pricing",
                "segment.properties.path": "/pricing",
            },
        ):
            pass
        if not _delivered(client):
            return
        print("3. decorator: @client.tracked on checkout(), called inside a span")
        with tracer.start_as_current_span("POST /checkout"):
            checkout(user, _Order("o-1001", 42.5, "EUR"))
        client.flush(timeout=10)
    finally:
        log.removeHandler(handler)
        handler.close()
        provider.shutdown()
