"""
The SQLite spool's cost: caller µs per track() and delivered msgs/s, spool off vs on.

Usage: ``python bench/bridge_spool.py [--messages N] [--rounds R]``.

Each round runs both modes in a fresh client, alternating their order: ``memory``
(``spool=None``) and ``spool`` (``spool=<tmp>/spool.db``), each sending *N* ``track()``
calls (``flush_at=100``, a queue large enough for the whole burst, so nothing is dropped)
to an :class:`otel_segment.sink.Sink` in a child process (``bench/sink_proc.py``, so the
sink's CPU is not charged to the client). Caller cost: wall time of the loop of calls on
the caller's thread divided by *N*. Delivered msgs/s: *N* over the time from the first
call until the sink counted the last message. Figures are medians over the rounds.
Target: caller cost with the spool <= 2x without. Prints a table and ``RESULT {json}``.
"""

from __future__ import annotations

import gc
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Final

from _common import CONFIRM_TIMEOUT_SECONDS, WARM_UP, SinkProcess, run_and_report

import otel_segment

MODES: Final = ("memory", "spool")
MAX_RATIO: Final = 2.0
PROPERTIES: Final = {"order_id": "o-98765", "total": 42.5, "currency": "EUR", "items": 3}


def run_mode(mode: str, sink: SinkProcess, messages: int) -> dict[str, float]:
    """One client, *messages* calls: caller µs per call, delivered msgs/s, spool bytes."""
    with tempfile.TemporaryDirectory() as directory:
        spool = Path(directory, "spool.db") if mode == "spool" else None
        client = otel_segment.Client(
            "bench-key",
            host=sink.url,
            flush_at=100,
            flush_interval=0.5,
            max_queue_size=messages + WARM_UP,
            spool=spool,
        )
        try:
            for number in range(WARM_UP):
                client.track("user-1234", "Order Completed", {**PROPERTIES, "n": number})
            client.flush(CONFIRM_TIMEOUT_SECONDS)
            sink.control.reset()
            gc.collect()
            started = time.perf_counter()
            for number in range(messages):
                client.track("user-1234", "Order Completed", {**PROPERTIES, "n": number})
            called = time.perf_counter()
            burst_bytes = directory_bytes(directory)
            reached = sink.control.wait(messages)
            delivered = time.perf_counter()
            stats = client.stats()
        finally:
            client.shutdown(CONFIRM_TIMEOUT_SECONDS)
        closed_bytes = directory_bytes(directory)
    return {
        "caller_us": (called - started) / messages * 1e6,
        "delivered_per_s": messages / (delivered - started),
        "received": reached["count"],
        "dropped": stats["dropped"],
        "spool_kib_after_calls": burst_bytes / 1024,
        "spool_kib_after_shutdown": closed_bytes / 1024,
    }


def directory_bytes(directory: str) -> int:
    """Bytes of the files in *directory* (the spool, its WAL and lock files)."""
    return sum(path.stat().st_size for path in Path(directory).iterdir())


def run(messages: int, rounds: int) -> dict[str, Any]:
    """Every mode *rounds* times, alternating the order; the medians and the verdict."""
    runs: dict[str, list[dict[str, float]]] = {mode: [] for mode in MODES}
    with SinkProcess() as sink:
        for number in range(rounds):
            for mode in MODES if number % 2 == 0 else tuple(reversed(MODES)):
                runs[mode].append(run_mode(mode, sink, messages))
    medians = {
        mode: {key: statistics.median(run[key] for run in results) for key in results[0]}
        for mode, results in runs.items()
    }
    ratio = medians["spool"]["caller_us"] / medians["memory"]["caller_us"]
    return {
        "bench": "bridge_spool",
        "messages": messages,
        "rounds": rounds,
        "medians": medians,
        "caller_ratio": ratio,
        "target_ratio_max": MAX_RATIO,
        "ok": ratio <= MAX_RATIO,
        "cpus": os.cpu_count(),
        "load": os.getloadavg()[0],
    }


def table(result: dict[str, Any]) -> str:
    """The medians as an aligned table."""
    memory, spool = result["medians"]["memory"], result["medians"]["spool"]
    rows = [
        ("caller µs per track()", "caller_us", 2),
        ("delivered msgs/s", "delivered_per_s", 0),
        ("messages received", "received", 0),
        ("dropped", "dropped", 0),
        ("spool files KiB, after the calls", "spool_kib_after_calls", 0),
        ("spool files KiB, after shutdown", "spool_kib_after_shutdown", 0),
    ]
    title = (
        f"spool off vs on: median of {result['rounds']} rounds of "
        f"{result['messages']:,} track() calls, flush_at 100"
    )
    lines = [title, f"{'':34}{'memory':>12}{'spool':>12}{'ratio':>8}"]
    for label, key, digits in rows:
        ratio = f"{spool[key] / memory[key]:.2f}x" if memory[key] else ""
        lines.append(f"{label:34}{memory[key]:>12,.{digits}f}{spool[key]:>12,.{digits}f}{ratio:>8}")
    verdict = "PASS" if result["ok"] else "MISS"
    lines.append(
        f"caller cost with the spool: {result['caller_ratio']:.2f}x without "
        f"(target <= {MAX_RATIO:.0f}x) {verdict}"
    )
    return "\n".join(lines)


if __name__ == "__main__":
    run_and_report(sys.argv[1:], "The SQLite spool's cost.", ("messages", 100_000), run, table)
