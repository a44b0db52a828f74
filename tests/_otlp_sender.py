"""
A sender process: OTLP log records through the OpenTelemetry SDK's own OTLP exporter.

Usage: ``python _otlp_sender.py http|grpc ENDPOINT FIRST BATCHES BATCH_SIZE``. It emits
BATCHES x BATCH_SIZE "Signed Up" records with ``segment.properties.seq`` from FIRST,
exports them batch by batch (the exporter retries as it does in production: 429/503,
RESOURCE_EXHAUSTED/UNAVAILABLE, with backoff and Retry-After/RetryInfo), and prints one
JSON line: the result of each export.
"""

from __future__ import annotations

import json
import sys

from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as GrpcExporter
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as HttpExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource


def main() -> None:
    """Emit, export, report."""
    protocol, endpoint, first, batches, size = sys.argv[1:6]
    kept = InMemoryLogExporter()  # type: ignore[no-untyped-call]
    provider = LoggerProvider(resource=Resource.create({"service.name": "sender"}))
    provider.add_log_record_processor(SimpleLogRecordProcessor(kept))
    logger = provider.get_logger("sender")
    total = int(batches) * int(size)
    for seq in range(int(first), int(first) + total):
        logger.emit(
            event_name="Signed Up",
            attributes={"enduser.id": f"u{seq}", "segment.properties.seq": seq},
        )
    records = list(kept.get_finished_logs())
    exporter = (
        HttpExporter(endpoint=endpoint, timeout=60)
        if protocol == "http"
        else GrpcExporter(endpoint=endpoint, insecure=True, timeout=60)
    )
    results = [
        exporter.export(records[start : start + int(size)]).name
        for start in range(0, total, int(size))
    ]
    exporter.shutdown()
    provider.shutdown()
    sys.stdout.write(json.dumps(results) + "\n")


if __name__ == "__main__":
    main()
