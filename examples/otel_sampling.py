"""
Trace sampling does not drop analytics.

The trace backend keeps 10 % of traces (``ParentBased(TraceIdRatioBased(0.1))``).
``SegmentSampler`` records every span that carries ``segment.*`` markers at its start,
even in dropped traces, and ``SegmentSpanProcessor`` maps those record-only spans,
which the SDK's own processors skip. So Segment gets every sign-up while the trace
backend (here an in-memory exporter behind a BatchSpanProcessor) gets only the sample.

Run: ``python examples/otel_sampling.py`` (no write key, no network: a local sink).
"""

from __future__ import annotations

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

import otel_segment
from otel_segment.sink import Sink

REQUESTS = 200


def main() -> None:
    """Run the example."""
    with Sink() as sink, otel_segment.Client("demo-key", host=sink.url) as client:
        sampler = otel_segment.SegmentSampler(ParentBased(TraceIdRatioBased(0.1)))
        provider = TracerProvider(sampler=sampler)
        backend = InMemorySpanExporter()  # stands in for an OTLP exporter
        provider.add_span_processor(BatchSpanProcessor(backend))
        provider.add_span_processor(otel_segment.SegmentSpanProcessor(client=client))
        tracer = provider.get_tracer("signup")

        for n in range(REQUESTS):
            with tracer.start_as_current_span("POST /signup"):  # sampled at 10 %
                marked = {"segment.event": "Signed Up", "enduser.id": f"user-{n}"}
                with tracer.start_as_current_span("create account", attributes=marked):
                    pass

        provider.shutdown()  # flushes the batch processor, then the client
        signed_up = sum(m["event"] == "Signed Up" for m in sink.messages)
        traced = len(backend.get_finished_spans())
        print(f"sampler: {sampler.get_description()}")
        print(f"requests: {REQUESTS}")
        print(f"trace backend: {traced} spans ({traced // 2} sampled traces)")
        print(f"segment: {signed_up} 'Signed Up' events")


if __name__ == "__main__":
    main()
