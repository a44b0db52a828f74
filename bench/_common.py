"""
Plumbing shared by the benchmark scripts: the sink process, timing a call, the output.

- :class:`SinkProcess` runs ``bench/sink_proc.py`` in a child process (so the sink's CPU is
  charged to no client) and :class:`Control` talks to its control endpoint.
- :func:`per_call_us` times a call in a loop after a warm-up.
- :func:`parse_counts` reads the ``--iterations N --rounds R`` style options of a bridge
  script; :func:`report` prints its table and the ``RESULT {json}`` line;
  :func:`run_and_report` does both around a script's ``run`` and ``table``.

``bench/core.py`` imports this module in the process whose peak RSS it measures, so only
what core.py imports anyway is imported at the top; the rest is imported where it is used.
"""

from __future__ import annotations

import gc
import http.client
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Self
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from collections.abc import Callable

HERE: Final = Path(__file__).resolve().parent
WARM_UP: Final = 2_000
"""Untimed calls before a timed loop."""
CONFIRM_TIMEOUT_SECONDS: Final = 120.0
"""How long the sink is asked to wait for messages."""


class Control:
    """The sink process's control endpoint (see ``bench/sink_proc.py``)."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self._address = (parts.hostname or "127.0.0.1", parts.port or 80)

    def _call(self, method: str, path: str) -> dict[str, Any]:
        connection = http.client.HTTPConnection(*self._address, timeout=CONFIRM_TIMEOUT_SECONDS + 5)
        try:
            connection.request(method, path)
            result: dict[str, Any] = json.loads(connection.getresponse().read())
        finally:
            connection.close()
        return result

    def count(self) -> dict[str, Any]:
        """The sink's counters since the last reset."""
        return self._call("GET", "/count")

    def reset(self) -> None:
        """Zero the sink's counters."""
        self._call("POST", "/reset")

    def wait(self, n: int) -> dict[str, Any]:
        """Block until the sink counted *n* messages; its counters."""
        return self._call("GET", f"/wait?n={n}&timeout={CONFIRM_TIMEOUT_SECONDS}")


class SinkProcess:
    """A ``bench/sink_proc.py`` child: its sink URL and control endpoint; ends when closed."""

    def __init__(self, latency_seconds: float = 0.0, *, accept_only: bool = False) -> None:
        import subprocess  # noqa: PLC0415 - see the module docstring

        self.latency_seconds = latency_seconds
        options = ["--latency", str(latency_seconds)] + (["--accept-only"] if accept_only else [])
        self._process: subprocess.Popen[str] = subprocess.Popen(
            [sys.executable, str(HERE / "sink_proc.py"), *options],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        line = self._process.stdout.readline() if self._process.stdout is not None else ""
        if not line:
            self.close()
            raise RuntimeError("the sink process did not start")
        addresses = json.loads(line)
        self.url: str = addresses["url"]
        self.control_url: str = addresses["control"]
        self.control = Control(self.control_url)

    def close(self) -> None:
        """Close its stdin (it stops serving) and wait for it."""
        import subprocess  # noqa: PLC0415 - see the module docstring

        if self._process.stdin is not None:
            self._process.stdin.close()
        try:
            self._process.wait(10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        if self._process.stdout is not None:
            self._process.stdout.close()

    def __enter__(self) -> Self:
        """Use in a ``with`` block; closed on exit."""
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Close."""
        self.close()


def per_call_us(
    call: Callable[[], object], iterations: int, warm_up: int = WARM_UP
) -> tuple[float, float]:
    """Run *call* *iterations* times after a warm-up: µs per call, wall and thread CPU."""
    for _ in range(warm_up):
        call()
    gc.collect()
    start, cpu_start = time.perf_counter(), time.thread_time()
    for _ in range(iterations):
        call()
    wall, cpu = time.perf_counter() - start, time.thread_time() - cpu_start
    return wall / iterations * 1e6, cpu / iterations * 1e6


def parse_counts(
    argv: list[str], description: str, count: str, default: int, rounds: int = 3
) -> tuple[int, int]:
    """``--COUNT N`` (*default*) and ``--rounds R`` (*rounds*; at least 1) from *argv*."""
    import argparse  # noqa: PLC0415 - see the module docstring

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(f"--{count}", type=int, default=default, dest="count", metavar="N")
    parser.add_argument("--rounds", type=int, default=rounds, metavar="R")
    args = parser.parse_args(argv)
    return args.count, max(args.rounds, 1)


def report(table: str | None, result: dict[str, Any], *, sort_keys: bool = False) -> None:
    """Print *table* (if any), then ``RESULT {json}`` of *result*."""
    if table is not None:
        print(table)
    print("RESULT " + json.dumps(result, sort_keys=sort_keys), flush=True)


def run_and_report(
    argv: list[str],
    description: str,
    count: tuple[str, int],
    run: Callable[[int, int], dict[str, Any]],
    table: Callable[[dict[str, Any]], str],
    rounds: int = 3,
) -> None:
    """Parse ``--COUNT N --rounds R``, ``run(N, R)``, print its table and ``RESULT {json}``."""
    number, rounds = parse_counts(argv, description, *count, rounds)
    result = run(number, rounds)
    report(table(result), result)
