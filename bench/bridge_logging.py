"""
The logging bridge's cost on the caller's thread; prints a table and ``RESULT {json}``.

Usage: ``python bench/bridge_logging.py [--iterations N] [--rounds R]``.

1. ``log.info("hello")`` on a logger without handlers, then with a
   :class:`otel_segment.SegmentHandler` attached (the record is not annotated, so the
   handler drops it): the cost the handler adds to every log call. Target: <= 1 µs.
2. An annotated record end to end (log call -> message queued): through
   ``SegmentHandler`` into an ``otel_segment.Client``, against the same record routed to
   segment-analytics-python by a minimal handler that calls its ``Client.track()``.
   Target: ours <= 1/3 of theirs.

Both clients really send, with ``flush_at=100`` and ``flush_interval=0.5`` and a queue
large enough for a round, to a :class:`otel_segment.sink.Sink` that this script starts in
a child process (so the sink's CPU is not charged to the caller's thread). Each figure is
the best of *R* rounds of *N* calls, after a warm-up, timed with ``time.perf_counter``
(wall: what the caller waits, including for the GIL while a client's worker threads run);
the annotated figures are also given in the caller thread's own CPU time
(``time.thread_time``), which the other threads do not affect.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import logging
import subprocess
import sys
import threading
import time
from typing import TYPE_CHECKING, Any, Final

import otel_segment

if TYPE_CHECKING:
    from collections.abc import Callable

    from otel_segment.sink import ReceivedRequest

WARM_UP: Final = 2_000
MAX_ADDED_US: Final = 1.0
MAX_RATIO: Final = 1 / 3
FLUSH_TIMEOUT_SECONDS: Final = 60.0
EVENT: Final = "Order Completed"
ANNOTATION: Final = {
    "segment": {
        "user_id": "user-1234",
        "properties": {"order_id": "o-98765", "total": 42.5, "currency": "EUR", "items": 3},
    }
}


class TrackHandler(logging.Handler):
    """The least a handler does to send an annotated record with segment-analytics-python."""

    def __init__(self, client: Any) -> None:
        super().__init__()
        self.client = client

    def emit(self, record: logging.LogRecord) -> None:
        annotation = record.__dict__.get("segment")
        if annotation is None:
            return
        self.client.track(
            user_id=annotation.get("user_id"),
            event=record.getMessage(),
            properties=annotation.get("properties"),
            timestamp=dt.datetime.fromtimestamp(record.created, dt.UTC),
        )


def serve_sink() -> None:
    """Child process: run a sink, print its URL, count messages until stdin closes."""
    from otel_segment.sink import Sink  # noqa: PLC0415 - only the child needs it

    counted = [0]
    lock = threading.Lock()

    def on_batch(request: ReceivedRequest) -> None:
        with lock:
            counted[0] += len(request.messages)
        sink.clear()  # keep memory flat

    sink = Sink(on_batch=on_batch).start()
    print(sink.url, flush=True)
    sys.stdin.read()
    sink.close()
    print(counted[0], flush=True)


def start_sink() -> tuple[subprocess.Popen[str], str]:
    """Start :func:`serve_sink` in a child process; return it and the sink's URL."""
    child = subprocess.Popen(
        [sys.executable, __file__, "--serve-sink"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    if child.stdout is None:
        raise RuntimeError("no pipe to the sink process")
    return child, child.stdout.readline().strip()


def stop_sink(child: subprocess.Popen[str]) -> int:
    """Stop the sink process; return how many messages it received."""
    out, _ = child.communicate(timeout=FLUSH_TIMEOUT_SECONDS)
    return int(out.strip() or 0)


def per_call_us(call: Callable[[], object], iterations: int) -> tuple[float, float]:
    """Run *call* *iterations* times after a warm-up: µs per call, wall and thread CPU."""
    for _ in range(WARM_UP):
        call()
    gc.collect()
    start, cpu_start = time.perf_counter(), time.thread_time()
    for _ in range(iterations):
        call()
    wall, cpu = time.perf_counter() - start, time.thread_time() - cpu_start
    return wall / iterations * 1e6, cpu / iterations * 1e6


def new_logger(name: str) -> logging.Logger:
    """A logger at INFO that does not propagate and has no handlers."""
    logger = logging.getLogger(name)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    logger.handlers.clear()
    return logger


def unannotated(client: otel_segment.Client, iterations: int, rounds: int) -> dict[str, float]:
    """Best µs per ``log.info("hello")`` without, then with, a SegmentHandler attached."""
    logger = new_logger("bench.bridge.plain")
    handler = otel_segment.SegmentHandler(client=client)
    without, with_handler = [], []
    for _ in range(rounds):
        without.append(per_call_us(lambda: logger.info("hello"), iterations)[0])
        logger.addHandler(handler)
        with_handler.append(per_call_us(lambda: logger.info("hello"), iterations)[0])
        logger.removeHandler(handler)
    handler.close()
    best_without, best_with = min(without), min(with_handler)
    return {"without": best_without, "with": best_with, "added": best_with - best_without}


def annotated(
    handler: logging.Handler, flush: Callable[[], object], iterations: int
) -> tuple[float, float]:
    """µs per annotated ``log.info`` through *handler* (wall, CPU); flushes the client after."""
    logger = new_logger(f"bench.bridge.{type(handler).__name__}")
    logger.addHandler(handler)
    try:
        return per_call_us(lambda: logger.info(EVENT, extra=ANNOTATION), iterations)
    finally:
        logger.removeHandler(handler)
        flush()


def theirs_client(url: str, queue_size: int) -> Any:
    """A segment-analytics-python client like ours, or ``None`` if it is not installed."""
    try:
        from segment.analytics import Client  # noqa: PLC0415 - optional for a run by hand
    except ImportError:
        return None
    return Client(
        "bench-key", host=url, upload_size=100, upload_interval=0.5, max_queue_size=queue_size
    )


def run(url: str, iterations: int, rounds: int) -> dict[str, Any]:
    """Measure both figures against the sink at *url*."""
    queue_size = 2 * (iterations + WARM_UP)
    client = otel_segment.Client(
        "bench-key", host=url, flush_at=100, flush_interval=0.5, max_queue_size=queue_size
    )
    theirs = theirs_client(url, queue_size)
    ours_handler = otel_segment.SegmentHandler(client=client)
    their_handler = None if theirs is None else TrackHandler(theirs)
    ours: list[tuple[float, float]] = []
    their: list[tuple[float, float]] = []
    try:
        plain = unannotated(client, iterations, rounds)
        for _ in range(rounds):
            ours.append(annotated(ours_handler, client.flush, iterations))
            if their_handler is not None:
                their.append(annotated(their_handler, theirs.flush, iterations))
    finally:
        ours_handler.close()
        client.shutdown(FLUSH_TIMEOUT_SECONDS)
        if theirs is not None:
            theirs.join()
    return {
        "bench": "bridge_logging",
        "iterations": iterations,
        "rounds": rounds,
        "unannotated_us": plain,
        "annotated_us": _compare([wall for wall, _ in ours], [wall for wall, _ in their]),
        "annotated_cpu_us": _compare([cpu for _, cpu in ours], [cpu for _, cpu in their]),
        "sent": rounds * (iterations + WARM_UP) * (2 if their else 1),
        "targets": {"added_us_max": MAX_ADDED_US, "ratio_max": MAX_RATIO},
    }


def _compare(ours: list[float], theirs: list[float]) -> dict[str, float | None]:
    best = min(theirs) if theirs else None
    return {
        "otel_segment": min(ours),
        "segment": best,
        "ratio": None if best is None else min(ours) / best,
    }


def table(result: dict[str, Any]) -> str:
    """The figures as a small aligned table."""
    plain, wall, cpu = result["unannotated_us"], result["annotated_us"], result["annotated_cpu_us"]
    added = f"added {plain['added']:+.2f} (target <= {MAX_ADDED_US:.2f})"
    rows = [
        ("", "wall", "cpu", ""),
        ("log.info, no handler", _us(plain["without"]), "", ""),
        ("log.info, SegmentHandler, unannotated", _us(plain["with"]), "", added),
        ("annotated, SegmentHandler -> otel_segment", *_pair(wall, cpu, "otel_segment"), ""),
        ("annotated, TrackHandler -> segment-analytics", *_pair(wall, cpu, "segment"), ""),
        ("ratio, ours / theirs", *_pair(wall, cpu, "ratio"), f"target <= {MAX_RATIO:.3f} (wall)"),
    ]
    title = (
        f"logging bridge, caller's thread: best of {result['rounds']} rounds "
        f"of {result['iterations']:,} calls (µs per call)"
    )
    lines = [f"{label:44} {a:>8} {b:>8}  {note}".rstrip() for label, a, b, note in rows]
    received = f"messages received by the sink: {result['received']:,} of {result['sent']:,}"
    return "\n".join([title, *lines, received])


def _us(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}" if value < 1 else f"{value:.2f}"


def _pair(wall: dict[str, Any], cpu: dict[str, Any], key: str) -> tuple[str, str]:
    return _us(wall[key]), _us(cpu[key])


def main(argv: list[str]) -> None:
    """Run the benchmark, print the table and ``RESULT {json}``."""
    parser = argparse.ArgumentParser(description="The logging bridge's caller cost.")
    parser.add_argument("--iterations", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--serve-sink", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_sink:
        serve_sink()
        return
    child, url = start_sink()
    try:
        result = run(url, args.iterations, args.rounds)
    finally:
        received = stop_sink(child)
    result["received"] = received
    result["ok"] = {
        "unannotated": result["unannotated_us"]["added"] <= MAX_ADDED_US,
        "annotated": _within(result["annotated_us"]["ratio"]),
        "delivered": received == result["sent"],
    }
    print(table(result))
    print("RESULT " + json.dumps(result), flush=True)


def _within(ratio: float | None) -> bool | None:
    return None if ratio is None else ratio <= MAX_RATIO


if __name__ == "__main__":
    main(sys.argv[1:])
