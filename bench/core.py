"""
One benchmark run of one library, in a fresh process; prints ``RESULT {json}``.

Usage: ``python bench/core.py LIBRARY SCENARIO SINK_URL CONTROL_URL`` with LIBRARY
``otel_segment`` or ``segment`` (segment-analytics-python) and SCENARIO:

- ``burst``: 100,000 ``track()`` calls in a tight loop after a warm-up, then flush;
  caller µs per call, delivered msgs/s (first call until the sink counted them all),
  process CPU ms per 1,000 messages, peak RSS. Queue large enough for the burst.
- ``latency``: against a sink that answers after 50 ms, 20,000 calls/s offered for 5 s
  (bursts of 200 every 10 ms on a monotonic schedule), then flush; delivered, dropped
  (calls that returned ``False``), delivered msgs/s. Queue of 10,000 (both defaults).

Only the library under test is imported, so the peak RSS is its own. ``bench/run.py``
starts the sink processes and runs this script for both libraries.
"""

from __future__ import annotations

import resource
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Protocol

from _common import CONFIRM_TIMEOUT_SECONDS, WARM_UP, Control, report

if TYPE_CHECKING:
    from collections.abc import Callable

N_MESSAGES: Final = 100_000
BURST_QUEUE: Final = 200_000
LATENCY_QUEUE: Final = 10_000
LATENCY_SECONDS: Final = 5.0
PACE_BATCH: Final = 200
PACE_STEP_SECONDS: Final = 0.01

SCHEDSTAT: Final = Path("/proc/thread-self/schedstat")

USER_ID: Final = "user-1234"
EVENT: Final = "Order Completed"
PROPERTIES: Final = {"order_id": "o-98765", "total": 42.5, "currency": "EUR", "items": 3}


class Library(Protocol):
    """What the driver needs of a client: its bound ``track``, ``flush`` and ``close``."""

    track: Callable[..., tuple[bool, Any]]

    def flush(self) -> None:
        """Block until everything queued is delivered."""

    def close(self) -> None:
        """Shut the client down."""


class _OtelSegment:
    def __init__(self, url: str, max_queue_size: int) -> None:
        import otel_segment  # noqa: PLC0415 - only the library under test is imported

        self.client = otel_segment.Client(
            "bench-key", host=url, flush_at=100, flush_interval=0.5, max_queue_size=max_queue_size
        )
        self.track = self.client.track

    def flush(self) -> None:
        self.client.flush(CONFIRM_TIMEOUT_SECONDS)

    def close(self) -> None:
        self.client.shutdown(10.0)


class _Segment:
    def __init__(self, url: str, max_queue_size: int) -> None:
        from segment.analytics import Client  # noqa: PLC0415 - ditto

        self.client = Client(
            "bench-key",
            host=url,
            upload_size=100,
            upload_interval=0.5,
            max_queue_size=max_queue_size,
        )
        self.track = self.client.track

    def flush(self) -> None:
        self.client.flush()

    def close(self) -> None:
        self.client.shutdown()


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _runqueue_seconds() -> float:
    """Time this thread was runnable but waited for a CPU (Linux schedstat), else 0."""
    try:
        return int(SCHEDSTAT.read_text(encoding="ascii").split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return 0.0


def _warm_up(lib: Library, control: Control) -> None:
    """Start the pipeline and its connection, then forget what the sink counted."""
    for _ in range(WARM_UP):
        lib.track(user_id=USER_ID, event=EVENT, properties=PROPERTIES)
    lib.flush()
    control.wait(WARM_UP)
    control.reset()


def burst(lib: Library, control: Control) -> dict[str, Any]:
    """100,000 calls in a tight loop, then flush; confirmed by the sink's count."""
    _warm_up(lib, control)
    track = lib.track
    cpu_start = time.process_time()
    thread_start, waited_start = time.thread_time(), _runqueue_seconds()
    start = time.perf_counter()
    for _ in range(N_MESSAGES):
        track(user_id=USER_ID, event=EVENT, properties=PROPERTIES)
    calls_seconds = time.perf_counter() - start
    thread_seconds = time.thread_time() - thread_start
    waited_seconds = _runqueue_seconds() - waited_start
    lib.flush()
    sink = control.wait(N_MESSAGES)
    delivered_seconds = time.perf_counter() - start
    cpu_seconds = time.process_time() - cpu_start
    return {
        "caller_us": calls_seconds / N_MESSAGES * 1e6,
        "caller_cpu_us": thread_seconds / N_MESSAGES * 1e6,
        "caller_runqueue_us": waited_seconds / N_MESSAGES * 1e6,
        "delivered": sink["count"],
        "delivered_per_s": sink["count"] / delivered_seconds,
        "delivered_seconds": delivered_seconds,
        "cpu_ms_per_1000": cpu_seconds * 1e3 / N_MESSAGES * 1000,
        "requests": sink["requests"],
        "largest_batch": sink["largest_batch"],
        "sink_cpu_share": sink["cpu_seconds"] / delivered_seconds,
        "complete": sink["reached"],
    }


def latency(lib: Library, control: Control) -> dict[str, Any]:
    """20,000 calls/s for 5 s against a slow sink, then flush."""
    _warm_up(lib, control)
    track = lib.track
    steps = round(LATENCY_SECONDS / PACE_STEP_SECONDS)
    dropped = 0
    start = time.perf_counter()
    for step in range(steps):
        ahead = start + step * PACE_STEP_SECONDS - time.perf_counter()
        if ahead > 0:
            time.sleep(ahead)
        for _ in range(PACE_BATCH):
            accepted, _msg = track(user_id=USER_ID, event=EVENT, properties=PROPERTIES)
            dropped += not accepted
    offered_seconds = time.perf_counter() - start
    calls = steps * PACE_BATCH
    lib.flush()
    sink = control.wait(calls - dropped)
    delivered_seconds = time.perf_counter() - start
    return {
        "calls": calls,
        "offered_per_s": calls / offered_seconds,
        "dropped": dropped,
        "delivered": sink["count"],
        "delivered_per_s": sink["count"] / delivered_seconds,
        "delivered_seconds": delivered_seconds,
        "requests": sink["requests"],
        "largest_batch": sink["largest_batch"],
        "sink_cpu_share": sink["cpu_seconds"] / delivered_seconds,
        "complete": sink["reached"],
    }


LIBRARIES: Final[dict[str, Callable[[str, int], Library]]] = {
    "otel_segment": _OtelSegment,
    "segment": _Segment,
}
SCENARIOS: Final = {"burst": (burst, BURST_QUEUE), "latency": (latency, LATENCY_QUEUE)}


def main(argv: list[str]) -> None:
    """Run one scenario for one library and print ``RESULT {json}``."""
    if len(argv) != 4 or argv[0] not in LIBRARIES or argv[1] not in SCENARIOS:
        sys.exit(f"usage: core.py {{{','.join(LIBRARIES)}}} {{{','.join(SCENARIOS)}}} SINK CONTROL")
    library, scenario, sink_url, control_url = argv
    run, max_queue_size = SCENARIOS[scenario]
    lib = LIBRARIES[library](sink_url, max_queue_size)
    rss_start = _rss_mib()
    result = run(lib, Control(control_url))
    result["peak_rss_mib"] = _rss_mib()
    result["start_rss_mib"] = rss_start
    lib.close()
    result.update(library=library, scenario=scenario)
    report(None, result)


if __name__ == "__main__":
    main(sys.argv[1:])
