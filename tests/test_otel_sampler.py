"""Tests for sampling-safe analytics: SegmentSampler and record-only spans."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    Decision,
    ParentBased,
    Sampler,
    TraceIdRatioBased,
)
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags, TraceState

from otel_segment import Client, SegmentSampler, SegmentSpanExporter, SegmentSpanProcessor

if TYPE_CHECKING:
    from _server import ScriptedServer

MARKED = {"segment.event": "Viewed", "enduser.id": "u1"}
SAMPLED_LOW_BITS = 0x1  # TraceIdRatioBased(0.5) samples ids whose low 64 bits are small
DROPPED_LOW_BITS = 0xFFFF_FFFF_FFFF_FFF0


class _KnownIds(IdGenerator):
    """Trace ids sampled by TraceIdRatioBased(0.5) in pairs: two yes, two no, two yes..."""

    def __init__(self) -> None:
        self._spans = 0
        self._traces = 0

    def generate_span_id(self) -> int:
        self._spans += 1
        return self._spans

    def generate_trace_id(self) -> int:
        self._traces += 1
        low = DROPPED_LOW_BITS if (self._traces - 1) // 2 % 2 else SAMPLED_LOW_BITS
        return (self._traces << 64) | low


def _provider(root: Sampler) -> TracerProvider:
    return TracerProvider(
        sampler=SegmentSampler(root), id_generator=_KnownIds(), shutdown_on_exit=False
    )


class TestSegmentSampler:
    """Marked spans are recorded whatever root decides; the trace backend sees root's choice."""

    def test_always_off(self, client: Client, segment_server: ScriptedServer) -> None:
        """Under ALWAYS_OFF, marked spans still reach Segment and no trace exporter."""
        provider = _provider(ALWAYS_OFF)
        backend = InMemorySpanExporter()
        provider.add_span_processor(BatchSpanProcessor(backend))
        provider.add_span_processor(SegmentSpanProcessor(client=client))
        tracer = provider.get_tracer("test")
        for n in range(3):
            with tracer.start_as_current_span(f"s{n}", attributes=MARKED) as span:
                assert (True, False) == (
                    span.is_recording(),
                    span.get_span_context().trace_flags.sampled,
                )
        with tracer.start_as_current_span("plain") as span:
            assert not span.is_recording()
        assert provider.force_flush(5000)
        assert client.flush(5)
        provider.shutdown()

        assert 3 == len(segment_server.messages)
        assert () == backend.get_finished_spans()

    def test_ratio_sampler(self, client: Client, segment_server: ScriptedServer) -> None:
        """Under a ratio sampler every marked span is delivered; the backend gets half."""
        provider = _provider(TraceIdRatioBased(0.5))
        backend = InMemorySpanExporter()
        provider.add_span_processor(BatchSpanProcessor(backend))
        provider.add_span_processor(SegmentSpanProcessor(client=client))
        tracer = provider.get_tracer("test")
        trace_ids: dict[str, int] = {}
        for n in range(10):
            for name, attributes in ((f"marked{n}", MARKED), (f"plain{n}", {})):
                with tracer.start_as_current_span(name, attributes=attributes) as span:
                    trace_ids[name] = span.get_span_context().trace_id
        assert provider.force_flush(5000)
        assert client.flush(5)
        provider.shutdown()

        sampled = {name for name, i in trace_ids.items() if i & 0xFF == SAMPLED_LOW_BITS}
        delivered = {int(m["context"]["trace"]["trace_id"], 16) for m in segment_server.messages}
        assert 10 == len(sampled)
        assert sampled == {span.name for span in backend.get_finished_spans()}
        assert {i for name, i in trace_ids.items() if name.startswith("marked")} == delivered

    def test_parent_based_children(self, client: Client, segment_server: ScriptedServer) -> None:
        """Marked children of a dropped, unmarked parent are recorded and delivered."""
        provider = _provider(ParentBased(ALWAYS_OFF))
        provider.add_span_processor(SegmentSpanProcessor(client=client))
        tracer = provider.get_tracer("test")
        with (
            tracer.start_as_current_span("request"),
            tracer.start_as_current_span("child", attributes=MARKED),
        ):
            pass
        assert client.flush(5)
        provider.shutdown()

        assert ["Viewed"] == [m["event"] for m in segment_server.messages]

    def test_exporter_sees_only_sampled(
        self, client: Client, segment_server: ScriptedServer
    ) -> None:
        """The exporter under SimpleSpanProcessor skips record-only spans; the processor not."""
        provider = _provider(ALWAYS_OFF)
        exporter = SegmentSpanExporter(client=client)
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        tracer = provider.get_tracer("test")
        with tracer.start_as_current_span("s", attributes=MARKED):
            pass
        assert client.flush(5)
        assert [] == segment_server.messages

        provider.add_span_processor(SegmentSpanProcessor(client=client))
        with tracer.start_as_current_span("s", attributes=MARKED):
            pass
        assert client.flush(5)
        provider.shutdown()
        assert 1 == len(segment_server.messages)


class TestDecisions:
    """should_sample itself."""

    def test_record_only_keeps_attributes_and_trace_state(self) -> None:
        """A dropped marked span is RECORD_ONLY, with its attributes and root's trace state."""
        state = TraceState([("vendor", "v1")])
        parent = NonRecordingSpan(
            SpanContext(1, 2, is_remote=True, trace_flags=TraceFlags(0), trace_state=state)
        )
        context = trace.set_span_in_context(parent)
        result = SegmentSampler(ALWAYS_OFF).should_sample(context, 1, "s", attributes=MARKED)

        assert Decision.RECORD_ONLY == result.decision
        assert MARKED == dict(result.attributes)
        assert state == result.trace_state

    @pytest.mark.parametrize("attributes", [None, {}, {"enduser.id": "u1"}])
    def test_unmarked_dropped(self, attributes: dict[str, str] | None) -> None:
        """Unmarked spans keep root's DROP."""
        result = SegmentSampler(ALWAYS_OFF).should_sample(None, 1, "s", attributes=attributes)

        assert Decision.DROP == result.decision

    def test_sampled_unchanged(self) -> None:
        """A span root samples gets root's result as it is."""
        result = SegmentSampler(ALWAYS_ON).should_sample(None, 1, "s", attributes=MARKED)

        assert Decision.RECORD_AND_SAMPLE == result.decision
        assert MARKED == dict(result.attributes)

    def test_description(self) -> None:
        """The description names the root sampler."""
        sampler = SegmentSampler(ParentBased(TraceIdRatioBased(0.25)))

        assert sampler.get_description().startswith("SegmentSampler{ParentBased{root:")
        assert "TraceIdRatioBased{0.25}" in sampler.get_description()

    def test_root_must_be_a_sampler(self) -> None:
        """Anything but a Sampler is refused."""
        with pytest.raises(TypeError, match="root must be an OpenTelemetry Sampler"):
            SegmentSampler(0.5)  # type: ignore[arg-type]


class TestLateMarkers:
    """A request span marked in its handler reaches Segment whatever the trace sampler chose."""

    @staticmethod
    def _serve(provider: TracerProvider, n: int) -> dict[int, bool]:
        """*n* server spans marked after they started; span id -> sampled."""
        tracer = provider.get_tracer("test")
        sampled: dict[int, bool] = {}
        for i in range(n):
            with tracer.start_as_current_span("GET /signup", kind=SpanKind.SERVER) as span:
                span.set_attribute("segment.event", "Signed Up")  # as a handler does
                span.set_attribute("enduser.id", f"u{i}")
                context = span.get_span_context()
                sampled[context.span_id] = context.trace_flags.sampled
        return sampled

    def test_hundred_of_hundred_arrive(
        self, client: Client, segment_server: ScriptedServer
    ) -> None:
        """Ratio 0.01: all 100 marked requests arrive; the backend sees only the sampled."""
        provider = TracerProvider(
            sampler=SegmentSampler(TraceIdRatioBased(0.01)), shutdown_on_exit=False
        )
        backend = InMemorySpanExporter()
        provider.add_span_processor(SimpleSpanProcessor(backend))
        provider.add_span_processor(SegmentSpanProcessor(client=client))
        sampled = self._serve(provider, 100)
        assert client.flush(5)
        provider.shutdown()

        assert 100 == len(segment_server.messages)
        assert {f"u{i}" for i in range(100)} == {m["userId"] for m in segment_server.messages}
        assert {i for i, yes in sampled.items() if yes} == {
            span.context.span_id for span in backend.get_finished_spans() if span.context
        }
        assert 0 == client.stats()["rejected"]

    def test_without_record_kinds_late_markers_follow_the_sampler(
        self, client: Client, segment_server: ScriptedServer
    ) -> None:
        """record_kinds=(): only the spans the trace sampler kept reach Segment (0.1)."""
        provider = TracerProvider(
            sampler=SegmentSampler(TraceIdRatioBased(0.5), record_kinds=()),
            shutdown_on_exit=False,
        )
        provider.add_span_processor(SegmentSpanProcessor(client=client))
        sampled = self._serve(provider, 20)
        assert client.flush(5)
        provider.shutdown()

        assert sum(sampled.values()) == len(segment_server.messages)

    @pytest.mark.parametrize(
        ("kind", "expected"),
        [
            (SpanKind.SERVER, Decision.RECORD_ONLY),
            (SpanKind.CONSUMER, Decision.RECORD_ONLY),
            (SpanKind.INTERNAL, Decision.DROP),
            (SpanKind.CLIENT, Decision.DROP),
            (None, Decision.DROP),
        ],
    )
    def test_default_kinds(self, kind: SpanKind | None, expected: Decision) -> None:
        """By default, dropped server and consumer spans stay recording; others are dropped."""
        result = SegmentSampler(ALWAYS_OFF).should_sample(None, 1, "s", kind=kind)

        assert expected == result.decision

    def test_every_kind(self) -> None:
        """record_kinds=SpanKind: every dropped span stays recording."""
        sampler = SegmentSampler(ALWAYS_OFF, record_kinds=SpanKind)

        assert {Decision.RECORD_ONLY} == {
            sampler.should_sample(None, 1, "s", kind=kind).decision for kind in SpanKind
        }

    def test_record_kinds_checked(self) -> None:
        """Anything but SpanKind members is refused."""
        with pytest.raises(TypeError, match="record_kinds"):
            SegmentSampler(ALWAYS_OFF, record_kinds=["server"])  # type: ignore[list-item]
