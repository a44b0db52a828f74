"""
A gateway benchmark sender: OTLP/HTTP protobuf requests of annotated log records.

Usage: ``python bench/gateway_sender.py FIRST REQUESTS RECORDS URL [URL ...]``. Builds
REQUESTS bodies of RECORDS "Signed Up" records (``seq`` from FIRST), waits for a line on
stdin (the start signal), posts them one after another over keep-alive connections,
round-robin over the URLs, retrying 429/503 after Retry-After, and prints
``{"latencies": [...], "refused": N}`` (seconds per accepted request, retries included).
"""

from __future__ import annotations

import http.client
import json
import sys
import time
from urllib.parse import urlsplit

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

_HEADERS = {"Content-Type": "application/x-protobuf"}


def body(first: int, records: int) -> bytes:
    """One request: *records* annotated log records from seq *first*."""
    request = ExportLogsServiceRequest()
    resource_logs = request.resource_logs.add()
    resource_logs.resource.attributes.append(
        KeyValue(key="service.name", value=AnyValue(string_value="bench"))
    )
    scope = resource_logs.scope_logs.add()
    now = time.time_ns()
    for seq in range(first, first + records):
        record = scope.log_records.add()
        record.time_unix_nano = now + seq
        record.event_name = "Order Completed"
        record.trace_id = seq.to_bytes(16, "big")
        record.span_id = (seq + 1).to_bytes(8, "big")
        record.attributes.extend(
            [
                KeyValue(key="enduser.id", value=AnyValue(string_value=f"user-{seq % 997}")),
                KeyValue(key="segment.properties.seq", value=AnyValue(int_value=seq)),
                KeyValue(key="segment.properties.total", value=AnyValue(double_value=42.5)),
                KeyValue(key="segment.properties.plan", value=AnyValue(string_value="pro")),
                KeyValue(key="http.route", value=AnyValue(string_value="/checkout")),
            ]
        )
    return request.SerializeToString()


def main() -> None:
    """Build, wait for the start, send, report."""
    first, count, records = (int(x) for x in sys.argv[1:4])
    targets = [urlsplit(url) for url in sys.argv[4:]]
    bodies = [body(first + n * records, records) for n in range(count)]
    connections = [
        http.client.HTTPConnection(t.hostname or "127.0.0.1", t.port or 80, timeout=60)
        for t in targets
    ]
    sys.stdin.readline()
    latencies: list[float] = []
    refused = 0
    for number, data in enumerate(bodies):
        connection = connections[number % len(connections)]
        started = time.perf_counter()
        while True:
            connection.request("POST", "/v1/logs", data, _HEADERS)
            response = connection.getresponse()
            response.read()
            if response.status == 200:
                break
            if response.status not in {429, 503}:
                raise SystemExit(f"unexpected status {response.status}")
            refused += 1
            time.sleep(float(response.getheader("retry-after") or 1))
        latencies.append(time.perf_counter() - started)
    for connection in connections:
        connection.close()
    print(json.dumps({"latencies": latencies, "refused": refused}), flush=True)


if __name__ == "__main__":
    main()
