"""
Decorated functions sending analytics: ``@otel_segment.tracked`` and ``@otel_segment.snapshot``.

Runs with no write key: it starts a Segment-compatible sink on 127.0.0.1, configures the
default client to send there, calls a few decorated functions (a function, a method, a
coroutine function, a generator, one call that raises, one inside an OpenTelemetry
span), and shows what arrived. The decorators are applied at import time, before the
default client is configured: ``tracked`` looks the client up at each call, and
``snapshot`` registers on the default client as soon as it is built. The snapshot runs
every hour, and once more when the client shuts down: that is the report shown here.

Run: ``python examples/decorators.py`` (no write key, no network: a local sink).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING

from opentelemetry.sdk.trace import TracerProvider

import otel_segment
from otel_segment.sink import Sink, format_message

if TYPE_CHECKING:
    from collections.abc import Iterator


@dataclass
class User:
    id: str
    plan: str


@dataclass
class Report:
    kind: str
    pages: int


@otel_segment.tracked("Report Generated", user_id="user.id", properties=["report.kind", "fmt"])
def generate(user: User, report: Report, fmt: str = "pdf") -> str:
    return f"{user.id}-{report.kind}-{report.pages}p.{fmt}"


class Exporter:
    def __init__(self, owner_id: str) -> None:
        self.owner_id = owner_id

    @otel_segment.tracked(
        "Export Finished",
        user_id="self.owner_id",
        properties=lambda args, result: {"rows": result, "target": args["target"]},
    )
    def export(self, target: str) -> int:
        return 128 if target.startswith("s3://") else 0


@otel_segment.tracked("Invoice Sent", user_id="user.id", properties={"plan": "user.plan"})
async def send_invoice(user: User) -> str:
    await asyncio.sleep(0)
    return f"invoice for {user.id}"


@otel_segment.tracked("Rows Streamed", anonymous_id="session")
def stream_rows(session: str, count: int) -> Iterator[str]:
    for number in range(count):
        yield f"{session}/{number}"


@otel_segment.tracked("Card Charged", user_id="user.id", properties=["cents"])
def charge(user: User, cents: int) -> None:
    raise RuntimeError(f"card of {user.id} declined for {cents} cents")


@otel_segment.snapshot(every=3600, group_id="install-42")
def installation_state() -> dict[str, object]:
    return {"version": "7.1", "nodes": 12, "features": ["sso", "audit-log"]}


def main() -> None:
    """Run the example."""
    ada = User("u-1", "pro")
    tracer = TracerProvider(shutdown_on_exit=False).get_tracer("example")
    with Sink() as sink:
        otel_segment.configure(write_key="demo-key", host=sink.url)
        generate(ada, Report("quarterly", 12))
        Exporter("u-2").export("s3://bucket/export.csv")
        asyncio.run(send_invoice(ada))
        print("rows:", len(list(stream_rows("session-7", 5))))
        try:
            charge(ada, 4200)
        except RuntimeError as error:
            print("raised as usual:", error)
        with tracer.start_as_current_span("POST /reports") as span:
            generate(ada, Report("weekly", 3), fmt="csv")
            trace_id = format(span.get_span_context().trace_id, "032x")
        otel_segment.shutdown()  # the snapshot runs once more, then everything is sent
        for message in sink.messages:
            print(format_message(message))
        joined = [m for m in sink.messages if m["context"].get("trace", {}).get("trace_id")]
        print(f"joined to trace {trace_id}: {len(joined)} event(s)")


if __name__ == "__main__":
    main()
