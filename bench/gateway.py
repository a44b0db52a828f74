"""
Benchmark the gateway: sender processes → OTLP/HTTP protobuf → gateway process(es) → sink.

Usage: ``python bench/gateway.py [--senders S] [--requests N] [--records R]``
(``nox -s bench -- gateway ...``). For each scenario — one replica, two replicas, one
replica with ``--spool``, and an overload (four times the senders at one replica) — it
starts a counting sink process, the gateway process(es) (``otel-segment gateway``) and the
sender processes, which each post N requests of R annotated log records, retrying 429/503
after Retry-After. Figures:

- *records/s*: all records / (start signal until the sink counted them all);
- *records per gateway CPU-second*: all records / the gateways' CPU time (user + system,
  from /proc) spent from listening until the sink counted them all;
- *p50/p99 ms*: latency of an accepted request, as a sender saw it (refusals included);
- *peak RSS MiB*: the largest gateway's VmHWM; *refused*: 429/503 answers;
- *lost* / *duplicated*: records the sink never got / got more than once.

Prints a table, the targets with PASS/MISS, and ``RESULT {json}``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

HERE: Final = Path(__file__).resolve().parent
TICKS: Final = os.sysconf("SC_CLK_TCK")
WAIT_SECONDS: Final = 300


@dataclass(frozen=True, slots=True)
class Scenario:
    """One row: how many replicas, with a spool or not, how many senders per base sender."""

    name: str
    replicas: int
    spool: bool
    sender_factor: int = 1


SCENARIOS: Final = (
    Scenario("1 replica", 1, spool=False),
    Scenario("2 replicas", 2, spool=False),
    Scenario("1 replica, --spool", 1, spool=True),
    Scenario("1 replica, overload (4x senders)", 1, spool=False, sender_factor=4),
)


class Gateway:
    """An ``otel-segment gateway`` process on 127.0.0.1."""

    def __init__(self, sink_url: str, spool: str | None) -> None:
        command = [
            sys.executable,
            "-m",
            "otel_segment",
            "gateway",
            "--http",
            "127.0.0.1:0",
            "--grpc",
            "none",
            "--write-key",
            "bench",
            "--host",
            sink_url,
        ]
        if spool:
            command += ["--spool", spool]
        self.process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
        assert self.process.stderr is not None
        for line in self.process.stderr:
            entry = json.loads(line)
            if entry["message"] == "gateway listening":
                self.url = f"http://127.0.0.1:{entry['http_port']}"
                break
        else:
            raise RuntimeError("the gateway did not start")
        self.cpu_at_start = self.cpu_seconds()

    def cpu_seconds(self) -> float:
        """User + system CPU time of the process so far."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICKS

    def peak_rss_mib(self) -> float:
        """The process's peak resident set size (VmHWM)."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def stop(self) -> int:
        """SIGTERM and wait; the exit status."""
        self.process.terminate()
        status = self.process.wait(60)
        if self.process.stderr is not None:
            self.process.stderr.close()
        return status


def _output(process: subprocess.Popen[str]) -> dict[str, Any]:
    """A sender's report, once it exits."""
    assert process.stdout is not None
    report: dict[str, Any] = json.loads(process.stdout.read())
    process.stdout.close()
    if process.wait(WAIT_SECONDS):
        raise RuntimeError("a sender failed")
    return report


def run(scenario: Scenario, senders: int, requests: int, records: int) -> dict[str, Any]:
    """One scenario's figures."""
    senders *= scenario.sender_factor
    total = senders * requests * records
    sink = subprocess.Popen(
        [sys.executable, str(HERE / "gateway_sink.py"), str(total)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert sink.stdin is not None
    assert sink.stdout is not None
    sink_url = json.loads(sink.stdout.readline())["url"]
    with tempfile.TemporaryDirectory() as spools:
        gateways = [
            Gateway(sink_url, f"{spools}/gateway-{n}.db" if scenario.spool else None)
            for n in range(scenario.replicas)
        ]
        urls = [gateway.url for gateway in gateways]
        processes = [
            subprocess.Popen(
                [
                    sys.executable,
                    str(HERE / "gateway_sender.py"),
                    str(k * requests * records),
                    str(requests),
                    str(records),
                    *urls[k % len(urls) :],
                    *urls[: k % len(urls)],
                ],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            for k in range(senders)
        ]
        started = time.perf_counter()
        for process in processes:
            assert process.stdin is not None
            process.stdin.write("go\n")
            process.stdin.close()
        outputs = [_output(process) for process in processes]
        sink.stdin.write(f"wait {total} {WAIT_SECONDS}\n")
        sink.stdin.flush()
        counted = json.loads(sink.stdout.readline())
        elapsed = time.perf_counter() - started
        cpu = sum(gateway.cpu_seconds() - gateway.cpu_at_start for gateway in gateways)
        rss = max(gateway.peak_rss_mib() for gateway in gateways)
        statuses = [gateway.stop() for gateway in gateways]
    sink.stdin.close()
    sink.wait(30)
    latencies = sorted(x for output in outputs for x in output["latencies"])
    return {
        "records": total,
        "records_per_s": total / elapsed,
        "records_per_cpu_s": total / cpu if cpu else 0.0,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
        "peak_rss_mib": rss,
        "refused": sum(output["refused"] for output in outputs),
        "lost": total - counted["distinct"],
        "duplicated": counted["duplicated"],
        "exit_status": max(statuses),
    }


def main(argv: list[str] | None = None) -> None:
    """Run every scenario, print the table and the targets."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--senders", type=int, default=2, help="sender processes (default 2)")
    parser.add_argument("--requests", type=int, default=20, help="requests per sender")
    parser.add_argument("--records", type=int, default=1000, help="log records per request")
    args = parser.parse_args(argv)
    print(
        f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}; {args.senders} senders x "
        f"{args.requests} requests x {args.records} records"
    )
    results = {s.name: run(s, args.senders, args.requests, args.records) for s in SCENARIOS}
    header = (
        f"{'scenario':34} {'rec/s':>8} {'rec/CPU-s':>10} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'RSS MiB':>8} {'refused':>8} {'lost':>5} {'dup':>5}"
    )
    print(header)
    for name, r in results.items():
        print(
            f"{name:34} {r['records_per_s']:8.0f} {r['records_per_cpu_s']:10.0f} "
            f"{r['p50_ms']:8.1f} {r['p99_ms']:8.1f} {r['peak_rss_mib']:8.1f} "
            f"{r['refused']:8d} {r['lost']:5d} {r['duplicated']:5d}"
        )
    checks = {
        "≥ 30,000 records per gateway CPU-second without a spool": all(
            r["records_per_cpu_s"] >= 30_000 for n, r in results.items() if "spool" not in n
        ),
        "≥ 15,000 with --spool": results["1 replica, --spool"]["records_per_cpu_s"] >= 15_000,
        "peak RSS < 200 MB at any load": all(
            r["peak_rss_mib"] * 1.048576 < 200 for r in results.values()
        ),
        "0 lost, 0 duplicated, exit 0": all(
            (r["lost"], r["duplicated"], r["exit_status"]) == (0, 0, 0) for r in results.values()
        ),
    }
    for label, ok in checks.items():
        print(f"  {'PASS' if ok else 'MISS'}  {label}")
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")
    print("RESULT " + json.dumps({"results": results, "pass": checks}), flush=True)


if __name__ == "__main__":
    main()
