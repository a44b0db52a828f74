"""
Analytics from OpenTelemetry log records: a record with an event name is a track.

``SegmentLogExporter`` is a logs-SDK exporter. Records with an ``event_name`` (or an
``otel.event.name`` attribute) become tracks; their attributes map as a span's do, a
mapping body adds properties, and the record's time is the message's. Plain records
are ignored.

Run: ``python examples/otel_logs.py`` (no write key, no network: a local sink).
"""

from __future__ import annotations

from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

import otel_segment
from otel_segment.sink import Sink, format_message


def main() -> None:
    """Run the example."""
    with Sink() as sink, otel_segment.Client("demo-key", host=sink.url) as client:
        provider = LoggerProvider(resource=Resource.create({"service.name": "billing"}))
        exporter = otel_segment.SegmentLogExporter(client=client)
        provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
        logger = provider.get_logger("billing")
        tracer = TracerProvider().get_tracer("billing")

        with tracer.start_as_current_span("charge"):  # the record carries the trace ids
            logger.emit(
                event_name="Invoice Paid",
                body={"amount": 99.0, "currency": "EUR"},
                attributes={"enduser.id": "u1", "segment.properties.plan": "pro"},
            )
        logger.emit(
            event_name="Plan Changed",
            attributes={
                "segment.type": "identify",
                "enduser.id": "u1",
                "segment.traits.plan": "pro",
            },
        )
        logger.emit(body="cache warmed in 120 ms")  # no event name: ignored

        provider.shutdown()  # the exporter flushes the client (it does not own it)
        for message in sink.messages:
            print(format_message(message))
        print(f"trace_id={sink.messages[0]['context']['trace']['trace_id']}")


if __name__ == "__main__":
    main()
