"""
The gateway benchmark's sink: counts each ``seq`` property it receives, in a process of its own.

Usage: ``python bench/gateway_sink.py TOTAL``. Prints ``{"url": ...}``; then, for each
line ``wait N TIMEOUT`` on stdin, waits until N messages arrived and prints
``{"count", "distinct", "duplicated", "reached"}``. Ends when stdin closes.
"""

from __future__ import annotations

import json
import sys
import threading
from functools import partial
from typing import TYPE_CHECKING

from otel_segment.sink import Sink

if TYPE_CHECKING:
    from otel_segment.sink import ReceivedRequest


def _reached(state: dict[str, int], wanted: int) -> bool:
    return state["count"] >= wanted


def main() -> None:
    """Serve, count, answer."""
    total = int(sys.argv[1])
    seen = bytearray(total)
    state = {"count": 0, "duplicated": 0, "distinct": 0}
    changed = threading.Condition()
    sinks: list[Sink] = []

    def on_batch(request: ReceivedRequest) -> None:
        with changed:
            for message in request.messages:
                seq = int(message["properties"]["seq"])
                state["count"] += 1
                if seen[seq]:
                    state["duplicated"] += 1
                else:
                    seen[seq] = 1
                    state["distinct"] += 1
            changed.notify_all()
        for sink in sinks:
            sink.clear()

    with Sink(on_batch=on_batch, keep=False) as running:
        sinks.append(running)
        print(json.dumps({"url": running.url}), flush=True)
        for line in sys.stdin:
            _, wanted, timeout = line.split()
            with changed:
                reached = changed.wait_for(partial(_reached, state, int(wanted)), float(timeout))
                print(json.dumps({**state, "reached": reached}), flush=True)


if __name__ == "__main__":
    main()
