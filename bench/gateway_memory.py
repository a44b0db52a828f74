"""
Peak RSS of a gateway process fed one body of about 20 MiB of minimal log records.

Usage: ``python bench/gateway_memory.py [--marked] [--max-queue-size N]``. Starts an
in-process sink and ``otel-segment gateway``, posts one OTLP/HTTP protobuf body just
under the 20 MiB limit, and prints the answer, the time it took and the gateway's VmHWM
before and after. Records are unmarked (ignored: the parsed protobuf is what costs
memory), or with ``--marked`` tracks with an event name and a user (then the queue must
take them all: ``--max-queue-size 1000000``, else the gateway answers 413 early).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Final

import requests
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord

from otel_segment.sink import Sink

LIMIT: Final = 20 * 1024 * 1024
BASE_NS: Final = 1_700_000_000_000_000_000


def _record(seq: int, *, marked: bool) -> LogRecord:
    record = LogRecord(time_unix_nano=BASE_NS + seq)
    if marked:
        record.event_name = "Signed Up"
        pair = record.attributes.add()
        pair.key = "enduser.id"
        pair.value.string_value = "u1"
    return record


def body(*, marked: bool) -> tuple[bytes, int]:
    """The request body just under 20 MiB, and its number of records."""
    entry = len(_record(0, marked=marked).SerializeToString()) + 2
    count = (LIMIT - 64) // entry
    request = ExportLogsServiceRequest()
    records = request.resource_logs.add().scope_logs.add().log_records
    records.extend(_record(seq, marked=marked) for seq in range(count))
    return request.SerializeToString(), count


def _peak_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    """Run it once and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].strip())
    parser.add_argument("--marked", action="store_true", help="tracks, not unmarked records")
    parser.add_argument("--max-queue-size", default="10000")
    args = parser.parse_args()
    data, count = body(marked=args.marked)
    with Sink() as sink:
        command = [
            *(sys.executable, "-m", "otel_segment", "gateway", "--write-key", "k"),
            *("--http", "127.0.0.1:0", "--grpc", "none", "--host", sink.url),
            *("--max-queue-size", args.max_queue_size),
        ]
        gateway = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
        assert gateway.stderr is not None
        port = 0
        for line in gateway.stderr:
            logged = json.loads(line)
            if logged["message"] == "gateway listening":
                port = logged["http_port"]
                break
        threading.Thread(target=gateway.stderr.read, daemon=True).start()
        before = _peak_mib(gateway.pid)
        started = time.perf_counter()
        response = requests.post(
            f"http://127.0.0.1:{port}/v1/logs",
            data=data,
            headers={"Content-Type": "application/x-protobuf"},
            timeout=300,
        )
        took = time.perf_counter() - started
        after = _peak_mib(gateway.pid)
        gateway.terminate()
        gateway.wait(120)
    print(
        f"{count} {'marked' if args.marked else 'unmarked'} records, {len(data)} bytes: "
        f"HTTP {response.status_code} in {took:.2f} s; "
        f"gateway peak RSS {before:.1f} MiB idle, {after:.1f} MiB after"
    )


if __name__ == "__main__":
    main()
