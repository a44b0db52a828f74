"""
What identity, asyncio and late markers cost; a table and ``RESULT``.

Usage: ``python bench/identity.py [--iterations N] [--rounds R]``.

Figures (each the best of *R* rounds of *N* calls after a warm-up, ``time.perf_counter``):

- ``track()`` on a ``Client(send=False)`` (builds, validates and encodes, queues
  nothing): with explicit ids outside every scope, and with no ids inside
  ``identity(user_id=...)`` (and with a context). Target: the scope adds <= 0.5 µs.
  The difference is within this machine's noise, so the identity step itself
  (``pipeline.identify.complete``) is timed too, for a track whose ids come from a
  scope and for one that gives them outside every scope (the client skips the step
  for such a call after one ``ContextVar.get()``; the figure is what it would cost).
  ``valgrind --tool=callgrind`` counts are steadier: see the README.
- ``await client.aflush()`` during a 20,000-track burst (chunks of 200 calls, the loop
  turning between them; the flush awaited from the first chunk on): the longest gap
  between two turns of a 1 ms ticker task that began after the burst's last call, while
  the flush was awaited, and over the whole run (which includes the burst's own chunks,
  about 1.5 ms of calls each); and the same with no flush awaited (the loop polls
  ``stats()`` until all is delivered), the baseline: what the pipeline's own threads cost
  the loop. Target: the flush's wait stalls the loop < 5 ms. Against an accept-only sink
  process (``sink_proc.py --accept-only``: reads each body, parses nothing), as a remote
  endpoint costs this machine nothing; then against the checking Sink (``checking_sink_``),
  which on a 2-core machine keeps a core busy through the delivery. Each with the
  machine's floor (``floor_``): the gap of a loop that only ticks while another process
  delivers the same burst to the same sink, which no in-process design can beat.
- An unmarked server span under ``SegmentSampler(TraceIdRatioBased(0.01))`` with a
  ``SegmentSpanProcessor`` and a ``BatchSpanProcessor``: start and end, dropped
  (``record_kinds=()``) and kept recording (the default, for late markers), with no
  attributes and with 10 (as an HTTP instrumentation sets); the difference is what the
  default costs each unmarked request span the trace sampler drops.
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import TYPE_CHECKING, Any, Final

from _common import SinkProcess, per_call_us, run_and_report
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import TraceIdRatioBased
from opentelemetry.trace import SpanKind

import otel_segment
from otel_segment.pipeline import identify, messages

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from opentelemetry.trace import Tracer

BURST: Final = 20_000
CHUNK: Final = 200
TICK_SECONDS: Final = 0.001
ATTRIBUTES: Final = {f"http.attribute_{i}": f"value {i}" for i in range(10)}


def _interleaved(
    calls: dict[str, Callable[[], object]], iterations: int, rounds: int
) -> dict[str, float]:
    """
    µs per call of each of *calls*: the best of many short rounds, taken in turn.

    On a shared machine a long round catches other processes' bursts; short rounds in
    turn let each call's best round be a quiet one.
    """
    short = max(iterations // 25, 10)
    best = dict.fromkeys(calls, float("inf"))
    for _ in range(rounds * 25):
        for name, call in calls.items():
            best[name] = min(best[name], per_call_us(call, short, warm_up=short)[0])
    return best


def identity_cost(iterations: int, rounds: int) -> dict[str, float]:
    """µs per track: explicit ids, ids from a scope, and the identity step alone."""
    client = otel_segment.Client("bench-key", send=False)
    fields = ("user-1234", "Order Completed", None, None, None, None, None, None)
    no_ids = (None, *fields[1:])
    base = client._base_context  # noqa: SLF001 - what the client passes the step

    def step_outside() -> None:
        for _ in range(100):
            identify.complete(messages.track, fields, base, from_baggage=False)

    def step_in_scope() -> None:
        with otel_segment.identity(user_id="user-1234"):
            for _ in range(100):
                identify.complete(
                    messages.track, no_ids, base, from_baggage=False, scope=identify.SCOPE.get()
                )

    def scoped(**scope: Any) -> Callable[[], object]:
        def call() -> None:
            with otel_segment.identity(**scope):
                for _ in range(100):
                    client.track(event="Order Completed")

        return call

    def explicit() -> None:
        for _ in range(100):
            client.track(user_id="user-1234", event="Order Completed")

    try:
        found = _interleaved(
            {
                "explicit": explicit,
                "scope": scoped(user_id="user-1234"),
                "scope_context": scoped(user_id="user-1234", context={"ip": "203.0.113.9"}),
                "step": step_outside,
                "step_scope": step_in_scope,
            },
            iterations // 100,
            rounds,
        )
    finally:
        client.shutdown()
    return {
        "track_explicit_us": found["explicit"] / 100,
        "track_scope_us": found["scope"] / 100,
        "track_scope_context_us": found["scope_context"] / 100,
        "scope_added_us": (found["scope"] - found["explicit"]) / 100,
        "identify_step_no_scope_us": found["step"] / 100,
        "identify_step_scope_us": found["step_scope"] / 100,
    }


class _Ticker:
    """A 1 ms ticker task; the gaps between its turns, each with when it began."""

    def __init__(self) -> None:
        self.gaps: list[tuple[float, float]] = []
        self._running = True
        self._task = asyncio.create_task(self._tick())

    async def _tick(self) -> None:
        last = time.perf_counter()
        while self._running:
            await asyncio.sleep(TICK_SECONDS)
            now = time.perf_counter()
            self.gaps.append((last, now - last))
            last = now

    async def stop(self) -> None:
        """End the ticker after its next turn."""
        self._running = False
        await self._task

    def longest_ms(self, since: float, until: float = float("inf")) -> float:
        """The longest gap that began between *since* and *until*, in ms."""
        return max((gap for began, gap in self.gaps if since <= began < until), default=0.0) * 1e3


async def _stalls(client: otel_segment.Client, *, awaited: bool) -> dict[str, float]:
    """
    Loop gaps during a burst and its delivery: awaiting ``aflush()``, or (*awaited*
    false, the baseline) polling ``stats()`` each millisecond until all is delivered.
    """
    ticker = _Ticker()
    await asyncio.sleep(0.05)
    flushing = asyncio.create_task(client.aflush(60)) if awaited else None
    for i in range(0, BURST, CHUNK):
        for n in range(i, i + CHUNK):
            client.track(f"user-{n}", "Burst")
        await asyncio.sleep(0)
    burst_done = time.perf_counter()
    if flushing is not None:
        await flushing
        await client.aflush(60)
    else:
        while client.stats()["delivered"] < BURST:  # noqa: ASYNC110 - polling is the baseline
            await asyncio.sleep(TICK_SECONDS)
    flushed = time.perf_counter()
    await ticker.stop()
    # A gap that began before the burst's last call returned holds the burst's own last
    # chunk: counted in the whole run's figure, not in the wait's.
    return {
        "longest_gap_ms": ticker.longest_ms(burst_done, flushed),
        "run_longest_gap_ms": ticker.longest_ms(0.0),
        "wait_ms": (flushed - burst_done) * 1e3,
    }


_ANOTHER_PROCESS: Final = """
import sys
import otel_segment
burst = int(sys.argv[2])
client = otel_segment.Client("bench-key", host=sys.argv[1], max_queue_size=2 * burst)
for n in range(burst):
    client.track(f"user-{n}", "Burst")
print("burst", flush=True)
client.flush(60)
print("flushed", flush=True)
client.shutdown(30)
"""


async def _floor(url: str) -> float:
    """
    The machine's floor: the longest gap of a loop that only ticks while another process
    delivers the same burst (from that burst's end until its flush returns), in ms.
    """
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _ANOTHER_PROCESS, url, str(BURST), stdout=asyncio.subprocess.PIPE
    )
    assert child.stdout is not None  # asked for above
    ticker = _Ticker()
    await child.stdout.readline()
    burst_done = time.perf_counter()
    flushed_line = await child.stdout.readline()
    flushed = time.perf_counter()
    await ticker.stop()
    if await child.wait() or not flushed_line:
        raise RuntimeError("the delivering process failed")
    return ticker.longest_ms(burst_done, flushed)


def aflush_stalls(rounds: int) -> dict[str, float]:
    """
    The loop's longest gaps while aflush() is awaited during a 20,000-track burst: against
    an accept-only sink and the checking Sink, each with the machine's floor.
    """
    result: dict[str, float] = {}
    for sink_name, accept_only in (("", True), ("checking_sink_", False)):
        with SinkProcess(accept_only=accept_only) as sink:
            for _ in range(rounds):
                found = {
                    **_prefixed("aflush_", _delivered_stalls(sink.url, awaited=True)),
                    **_prefixed("no_flush_", _delivered_stalls(sink.url, awaited=False)),
                    "floor_longest_gap_ms": asyncio.run(_floor(sink.url)),
                }
                for key, value in _prefixed(sink_name, found).items():
                    result[key] = max(result.get(key, 0.0), value)
    return result


def _delivered_stalls(url: str, *, awaited: bool) -> dict[str, float]:
    """:func:`_stalls` of a fresh client, which must deliver the whole burst."""
    client = otel_segment.Client("bench-key", host=url, max_queue_size=BURST * 2)
    try:
        found = asyncio.run(_stalls(client, awaited=awaited))
        delivered = client.stats()["delivered"]
    finally:
        client.shutdown(30)
    if delivered != BURST:
        raise RuntimeError(f"{delivered} of {BURST} delivered")
    return found


def _prefixed(prefix: str, figures: dict[str, float]) -> dict[str, float]:
    return {prefix + key: value for key, value in figures.items()}


def _tracer(record_kinds: Iterable[SpanKind], client: otel_segment.Client) -> Tracer:
    sampler = otel_segment.SegmentSampler(TraceIdRatioBased(0.01), record_kinds=record_kinds)
    provider = TracerProvider(sampler=sampler, shutdown_on_exit=False)
    provider.add_span_processor(otel_segment.SegmentSpanProcessor(client=client))
    provider.add_span_processor(BatchSpanProcessor(InMemorySpanExporter()))
    return provider.get_tracer("bench")


def span_cost(iterations: int, rounds: int) -> dict[str, float]:
    """µs to start and end an unmarked server span, dropped or kept recording."""
    client = otel_segment.Client("bench-key", send=False)
    dropped, recording = _tracer((), client), _tracer((SpanKind.SERVER,), client)

    def spans(tracer: Tracer, attributes: dict[str, str] | None) -> Callable[[], None]:
        def call() -> None:
            for _ in range(100):
                tracer.start_span("GET /", kind=SpanKind.SERVER, attributes=attributes).end()

        return call

    try:
        found = _interleaved(
            {
                "dropped": spans(dropped, None),
                "recording": spans(recording, None),
                "dropped_10": spans(dropped, ATTRIBUTES),
                "recording_10": spans(recording, ATTRIBUTES),
            },
            iterations // 100,
            rounds,
        )
    finally:
        client.shutdown()
    per_span = {key: value / 100 for key, value in found.items()}
    return {
        "server_span_dropped_us": per_span["dropped"],
        "server_span_recording_us": per_span["recording"],
        "late_marker_cost_us": per_span["recording"] - per_span["dropped"],
        "server_span_dropped_10_attributes_us": per_span["dropped_10"],
        "server_span_recording_10_attributes_us": per_span["recording_10"],
        "late_marker_cost_10_attributes_us": per_span["recording_10"] - per_span["dropped_10"],
    }


def run(iterations: int, rounds: int) -> dict[str, Any]:
    """Every figure of the module docstring."""
    return {
        **identity_cost(iterations, rounds),
        **span_cost(iterations, rounds),
        **aflush_stalls(rounds),
    }


def table(result: dict[str, Any]) -> str:
    """The figures, one a line."""
    return "\n".join(f"{key:<40} {value:10.3f}" for key, value in result.items())


if __name__ == "__main__":
    run_and_report(sys.argv[1:], __doc__ or "", ("iterations", 50_000), run, table)
