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
large enough for a round, to a :class:`otel_segment.sink.Sink` in a child process
(``bench/sink_proc.py``, so the sink's CPU is not charged to the caller's thread). Each figure is
the best of *R* rounds of *N* calls, after a warm-up, timed with ``time.perf_counter``
(wall: what the caller waits, including for the GIL while a client's worker threads run);
the annotated figures are also given in the caller thread's own CPU time
(``time.thread_time``), which the other threads do not affect.
"""

from __future__ import annotations

import datetime as dt
import logging
import sys
from typing import TYPE_CHECKING, Any, Final

from _common import WARM_UP, SinkProcess, parse_counts, per_call_us, report

import otel_segment

if TYPE_CHECKING:
    from collections.abc import Callable

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
    iterations, rounds = parse_counts(
        argv, "The logging bridge's caller cost.", "iterations", 50_000
    )
    with SinkProcess() as sink:
        result = run(sink.url, iterations, rounds)
        received = sink.control.count()["count"]
    result["received"] = received
    result["ok"] = {
        "unannotated": result["unannotated_us"]["added"] <= MAX_ADDED_US,
        "annotated": _within(result["annotated_us"]["ratio"]),
        "delivered": received == result["sent"],
    }
    report(table(result), result)


def _within(ratio: float | None) -> bool | None:
    return None if ratio is None else ratio <= MAX_RATIO


if __name__ == "__main__":
    main(sys.argv[1:])
