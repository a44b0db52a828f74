"""
Benchmark otel_segment against segment-analytics-python, side by side, in one invocation.

Usage: ``python bench/run.py [--rounds N] [--skip-bridges]`` (``nox -s bench -- --rounds 1``);
``python bench/run.py quality`` runs only ``bench/quality.py`` (plans, before_send, validate);
``identity`` and ``integrations`` likewise run only ``bench/identity.py`` / ``integrations.py``.
``python bench/run.py gateway [options]`` runs the gateway benchmark (``bench/gateway.py``).

Starts two sink processes (one answering at once, one after 50 ms), then runs
``bench/core.py`` for each library and scenario, each in a fresh process, alternating the
libraries' order from round to round; prints the median of each figure with its ratio to
segment-analytics-python, the target and PASS/MISS, and a last line ``RESULT {json}``.
Then runs every ``bench/bridge_*.py``, ``bench/identity.py``, ``bench/integrations.py`` and
``bench/quality.py`` and prints what each printed.
See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from importlib import metadata
from typing import TYPE_CHECKING, Any, Final

from _common import HERE, SinkProcess, report

if TYPE_CHECKING:
    from pathlib import Path

LIBRARIES: Final = ("otel_segment", "segment")
SCENARIOS: Final = ("burst", "latency")
LATENCY_SECONDS: Final = 0.05
WORKER_TIMEOUT_SECONDS: Final = 300
BRIDGE_TIMEOUT_SECONDS: Final = 600
SUITES: Final = ("identity", "integrations", "quality")

Results = dict[str, dict[str, dict[str, float]]]  # scenario -> library -> figure -> median


@dataclass(frozen=True, slots=True)
class Figure:
    """One row of the table; *target* compares otel_segment / segment when given."""

    label: str
    scenario: str
    key: str
    digits: int = 0
    target: tuple[str, float] | None = None  # ("<=", 0.2) or (">=", 5.0)


FIGURES: Final = (
    Figure("caller µs per track()", "burst", "caller_us", 2, ("<=", 1 / 5)),
    Figure("delivered msgs/s, 100k burst", "burst", "delivered_per_s", 0, (">=", 5.0)),
    Figure("process CPU ms per 1,000 msgs", "burst", "cpu_ms_per_1000", 1, ("<=", 1 / 4)),
    Figure("peak RSS MiB (burst run)", "burst", "peak_rss_mib", 1, ("<=", 1 / 2)),
    Figure("50 ms sink: calls offered/s", "latency", "offered_per_s"),
    Figure("50 ms sink: dropped", "latency", "dropped"),
    Figure("50 ms sink: delivered", "latency", "delivered"),
    Figure("50 ms sink: delivered msgs/s", "latency", "delivered_per_s", 0, (">=", 5.0)),
)

DETAILS: Final = (
    Figure("caller: CPU µs per call", "burst", "caller_cpu_us", 2),
    Figure("caller: µs waiting for a CPU", "burst", "caller_runqueue_us", 2),
    Figure("burst: seconds to deliver 100k", "burst", "delivered_seconds", 2),
    Figure("burst: requests", "burst", "requests"),
    Figure("burst: largest batch (msgs)", "burst", "largest_batch"),
    Figure("burst: sink CPU share", "burst", "sink_cpu_share", 2),
    Figure("RSS MiB after import + client", "burst", "start_rss_mib", 1),
    Figure("50 ms sink: seconds to deliver", "latency", "delivered_seconds", 2),
    Figure("50 ms sink: requests", "latency", "requests"),
    Figure("50 ms sink: largest batch", "latency", "largest_batch"),
    Figure("50 ms sink: peak RSS MiB", "latency", "peak_rss_mib", 1),
)


def run_worker(library: str, scenario: str, sink: SinkProcess) -> dict[str, Any]:
    """Run ``bench/core.py`` once in a fresh process; its ``RESULT`` dict."""
    command = [sys.executable, str(HERE / "core.py"), library, scenario, sink.url, sink.control_url]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=WORKER_TIMEOUT_SECONDS, check=False
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode or not lines:
        sys.stderr.write(done.stdout + done.stderr)
        raise RuntimeError(f"{library} {scenario} failed (exit code {done.returncode})")
    result: dict[str, Any] = json.loads(lines[-1].removeprefix("RESULT "))
    if not result.get("complete", True):
        print(f"  ! {library} {scenario}: the sink did not confirm every message", flush=True)
    return result


def run_rounds(rounds: int, sinks: dict[str, SinkProcess]) -> Results:
    """Every library and scenario *rounds* times, alternating the order; the medians."""
    raw: dict[str, dict[str, list[dict[str, Any]]]] = {
        scenario: {library: [] for library in LIBRARIES} for scenario in SCENARIOS
    }
    for number in range(rounds):
        order = LIBRARIES if number % 2 == 0 else tuple(reversed(LIBRARIES))
        for scenario in SCENARIOS:
            for library in order:
                started = time.monotonic()
                result = run_worker(library, scenario, sinks[scenario])
                raw[scenario][library].append(result)
                took = time.monotonic() - started
                print(f"  round {number + 1}/{rounds} {scenario:<7} {library:<12} {took:5.1f} s")
    return {
        scenario: {library: _medians(runs) for library, runs in by_library.items()}
        for scenario, by_library in raw.items()
    }


def _medians(runs: list[dict[str, Any]]) -> dict[str, float]:
    keys = [key for key, value in runs[0].items() if isinstance(value, int | float)]
    return {key: statistics.median(run[key] for run in runs) for key in keys}


def _number(value: float, digits: int) -> str:
    return f"{value:,.{digits}f}"


def verdict(figure: Figure, ours: float, theirs: float) -> tuple[str, str, str, bool | None]:
    """Ratio, target and PASS/MISS text for one row, and whether it passed."""
    if figure.key == "dropped":
        passed = ours == 0
        return "", "none dropped", "PASS" if passed else "MISS", passed
    if figure.target is None:
        return "", "", "", None
    ratio = ours / theirs if theirs else float("inf")
    op, bound = figure.target
    passed = ratio <= bound if op == "<=" else ratio >= bound
    shown = f"1/{1 / bound:.0f}" if bound < 1 else f"{bound:.0f}x"
    return (
        f"{ratio:.3g}x",
        f"{'≤' if op == '<=' else '≥'} {shown}",
        "PASS" if passed else "MISS",
        passed,
    )


def print_table(results: Results, rounds: int) -> dict[str, bool]:
    """Print the figures and the details; the pass/miss of every targeted row."""
    version = metadata.version("segment-analytics-python")
    print(f"\notel_segment vs segment-analytics-python {version}: median of {rounds} round(s)")
    header = f"{'figure':<32}{'otel_segment':>14}{'segment':>14}{'ratio':>9}  {'target':<14}"
    print(header)
    print("-" * len(header))
    verdicts: dict[str, bool] = {}
    for figure in FIGURES:
        ours, theirs = (results[figure.scenario][lib][figure.key] for lib in LIBRARIES)
        ratio, target, mark, passed = verdict(figure, ours, theirs)
        if passed is not None:
            verdicts[figure.label] = passed
        row = f"{figure.label:<32}{_number(ours, figure.digits):>14}"
        print(f"{row}{_number(theirs, figure.digits):>14}{ratio:>9}  {target:<14}{mark}")
    print("\ndetails")
    for figure in DETAILS:
        ours, theirs = (results[figure.scenario][lib][figure.key] for lib in LIBRARIES)
        row = f"{figure.label:<32}{_number(ours, figure.digits):>14}"
        ratio = f"{ours / theirs:.3g}x" if theirs else ""
        print(f"{row}{_number(theirs, figure.digits):>14}{ratio:>9}")
    return verdicts


def run_bridges(scripts: list[Path] | None = None) -> None:
    """Run every ``bench/bridge_*.py`` and the 0.2 suites (or *scripts*); print their output."""
    if scripts is None:
        scripts = [*sorted(HERE.glob("bridge_*.py")), *(HERE / f"{name}.py" for name in SUITES)]
    for script in scripts:
        print(f"\n== {script.name} ==", flush=True)
        try:
            done = subprocess.run(
                [sys.executable, str(script)],
                capture_output=True,
                text=True,
                timeout=BRIDGE_TIMEOUT_SECONDS,
                check=False,
            )
        except subprocess.TimeoutExpired:
            print(f"  ! timed out after {BRIDGE_TIMEOUT_SECONDS} s")
            continue
        print(done.stdout.rstrip())
        if done.returncode:
            print(f"  ! exit code {done.returncode}\n{done.stderr.rstrip()}")


def main() -> None:
    """Parse the arguments, run the rounds, print the table, run the bridge benchmarks."""
    if sys.argv[1:2] == ["gateway"]:  # nox -s bench -- gateway [options]: bench/gateway.py
        from gateway import main as gateway_main  # noqa: PLC0415 - only for this run

        gateway_main(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--rounds", type=int, default=3, help="runs per figure (median)")
    parser.add_argument("--skip-bridges", action="store_true", help="only the core table")
    parser.add_argument(
        "suite", nargs="?", choices=SUITES, help="run only this suite (bench/SUITE.py)"
    )
    args = parser.parse_args()
    if args.suite is not None:
        run_bridges([HERE / f"{args.suite}.py"])
        return
    load = os.getloadavg()[0]
    print(f"python {platform.python_version()}, {os.cpu_count()} CPUs, load {load:.2f}")
    sinks = {"burst": SinkProcess(0.0), "latency": SinkProcess(LATENCY_SECONDS)}
    try:
        results = run_rounds(max(args.rounds, 1), sinks)
    finally:
        for sink in sinks.values():
            sink.close()
    verdicts = print_table(results, max(args.rounds, 1))
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")
    report(None, {"medians": results, "pass": verdicts})
    if not args.skip_bridges:
        run_bridges()


if __name__ == "__main__":
    main()
