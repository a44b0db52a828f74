"""Tests for the span sources: exporter and processor semantics, client choice, mappers."""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING, Any

import pytest
import requests
from _helpers import delivered
from _otel import end_span, owned_client
from opentelemetry.instrumentation.requests import RequestsInstrumentor
from opentelemetry.sdk.trace import Event, ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExportResult,
)
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import otel_segment
from otel_segment import Client, SegmentSpanExporter, SegmentSpanProcessor

if TYPE_CHECKING:
    from collections.abc import Iterator

    from _server import ScriptedServer
    from opentelemetry.trace import Tracer


class TestExporter:
    """SegmentSpanExporter under the SDK's own processors."""

    @pytest.mark.parametrize("processor_type", [SimpleSpanProcessor, BatchSpanProcessor])
    def test_under_processor(
        self,
        processor_type: type[SimpleSpanProcessor | BatchSpanProcessor],
        provider: TracerProvider,
        client: Client,
        segment_server: ScriptedServer,
    ) -> None:
        """
        Spans reach the server through Simple- and BatchSpanProcessor alike.

        The SDK's processors do not pass force_flush on to their exporter: the provider's
        flush hands the spans over, the exporter's delivers them.
        """
        exporter = SegmentSpanExporter(client=client)
        provider.add_span_processor(processor_type(exporter))
        tracer = provider.get_tracer("test")
        for n in range(3):
            end_span(tracer, f"s{n}", {"segment.event": f"E{n}", "enduser.id": "u1"})

        assert provider.force_flush(5000)
        assert exporter.force_flush(5000)
        assert ["E0", "E1", "E2"] == [m["event"] for m in segment_server.messages]

    def test_invalid_messages_are_counted(
        self,
        provider: TracerProvider,
        client: Client,
        segment_server: ScriptedServer,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        """A span that makes no valid message is rejected, once; the batch goes on."""
        exporter = SegmentSpanExporter(client=client)
        tracer = provider.get_tracer("test")
        spans: list[ReadableSpan] = []
        for attributes in (
            {"segment.event": "No User"},
            {"segment.type": "trak", "enduser.id": "u1"},
            {"segment.event": "Fine", "enduser.id": "u1"},
        ):
            span = tracer.start_span("s", attributes=attributes)
            span.end()
            spans.append(span)  # type: ignore[arg-type]
        with caplog.at_level(logging.WARNING, "otel_segment"):
            result = exporter.export(spans)

        assert SpanExportResult.SUCCESS == result
        assert ["Fine"] == [m["event"] for m in delivered(client, segment_server)]
        assert 2 == client.stats()["rejected"]
        assert "trak" in caplog.text
        assert "user_id or an anonymous_id" in caplog.text

    def test_hand_made_spans(self, client: Client, segment_server: ScriptedServer) -> None:
        """Spans built by hand (plain attributes, no context or resource) map as well."""
        event = Event("e", {"segment.event": "From Event"}, timestamp=2_000_000_000_000_000_000)
        span = ReadableSpan(
            "made",
            attributes={"segment.event": "Made", "enduser.id": "u1"},
            events=[event],
            start_time=1_000_000_000_000_000_000,
            end_time=1_000_000_000_250_000_000,
        )
        result = SegmentSpanExporter(client=client).export([span])

        messages = delivered(client, segment_server)
        assert SpanExportResult.SUCCESS == result
        assert [("Made", "u1"), ("From Event", "u1")] == [
            (m["event"], m["userId"]) for m in messages
        ]
        assert ["2001-09-09T01:46:40.250+00:00", "2033-05-18T03:33:20.000+00:00"] == [
            m["timestamp"] for m in messages
        ]
        assert 250.0 == messages[0]["properties"]["duration_ms"]
        assert {"library"} == set(messages[0]["context"])

    def test_span_without_times(self, client: Client, segment_server: ScriptedServer) -> None:
        """A span with no start or end time is sent now, without duration_ms."""
        span = ReadableSpan("made", attributes={"segment.event": "Timeless", "enduser.id": "u1"})
        before = dt.datetime.now(dt.UTC).replace(microsecond=0)

        assert SpanExportResult.SUCCESS == SegmentSpanExporter(client=client).export([span])
        [message] = delivered(client, segment_server)
        assert "duration_ms" not in message["properties"]
        assert before <= dt.datetime.fromisoformat(message["timestamp"])

    def test_client_closed_during_export(
        self, provider: TracerProvider, client: Client, segment_server: ScriptedServer
    ) -> None:
        """A client shut down in the middle of an export fails it; what went before arrives."""

        def mapper(span: ReadableSpan) -> Any:
            if span.name == "second":
                client.shutdown()
            return {"event": span.name, "user_id": "u1"}

        exporter = SegmentSpanExporter(client=client, mapper=mapper)
        spans = [provider.get_tracer("test").start_span(name) for name in ("first", "second")]
        for span in spans:
            span.end()

        assert SpanExportResult.FAILURE == exporter.export(spans)  # type: ignore[arg-type]
        assert ["first"] == [m["event"] for m in segment_server.messages]

    def test_after_shutdown(self, client: Client, provider: TracerProvider) -> None:
        """After shutdown, export fails and force_flush is False; the client lives on."""
        exporter = SegmentSpanExporter(client=client)
        exporter.shutdown()
        exporter.shutdown()
        span = provider.get_tracer("test").start_span("s", attributes={"segment.event": "E"})
        span.end()

        assert SpanExportResult.FAILURE == exporter.export([span])  # type: ignore[list-item]
        assert not exporter.force_flush()
        assert not client.closed

    def test_closed_client_fails_export(self, client: Client, provider: TracerProvider) -> None:
        """A client shut down elsewhere makes export report FAILURE, not raise."""
        exporter = SegmentSpanExporter(client=client)
        client.shutdown()
        span = provider.get_tracer("test").start_span("s", attributes={"segment.event": "E"})
        span.end()

        assert SpanExportResult.FAILURE == exporter.export([span])  # type: ignore[list-item]


class _BrokenClient(Client):
    """A client whose message() fails unexpectedly, as a bug would."""

    def message(self, type: str, **_fields: Any) -> Any:
        raise LookupError(f"bug building a {type}")


class TestNeverRaises:
    """An unexpected error is logged; it never reaches the code that ended the span."""

    @pytest.fixture
    def broken(self, segment_server: ScriptedServer) -> Iterator[Client]:
        """A broken client, shut down afterwards."""
        with _BrokenClient("k", host=segment_server.url) as client:
            yield client

    def test_processor(
        self, provider: TracerProvider, broken: Client, caplog: pytest.LogCaptureFixture
    ) -> None:
        """on_end swallows and logs the error."""
        provider.add_span_processor(SegmentSpanProcessor(client=broken))
        with caplog.at_level(logging.ERROR, "otel_segment"):
            end_span(provider.get_tracer("test"), "s", {"segment.event": "E", "enduser.id": "u1"})

        assert "mapping a span failed" in caplog.text

    def test_exporter(
        self, provider: TracerProvider, broken: Client, caplog: pytest.LogCaptureFixture
    ) -> None:
        """export() returns FAILURE and logs the error."""
        span = provider.get_tracer("test").start_span("s", attributes={"segment.event": "E"})
        span.end()
        with caplog.at_level(logging.ERROR, "otel_segment"):
            result = SegmentSpanExporter(client=broken).export([span])  # type: ignore[list-item]

        assert SpanExportResult.FAILURE == result
        assert "bug building a track" in caplog.text


class TestClientChoice:
    """client=, client options, or the default client; shutdown closes only an owned one."""

    def test_given_client_is_flushed_not_closed(
        self, provider: TracerProvider, client: Client, segment_server: ScriptedServer
    ) -> None:
        """Provider shutdown delivers what the processor queued; the client stays open."""
        provider.add_span_processor(SegmentSpanProcessor(client=client))
        end_span(provider.get_tracer("test"), "s", {"segment.event": "E", "enduser.id": "u1"})
        provider.shutdown()

        assert 1 == len(segment_server.messages)
        assert not client.closed

    def test_owned_client(self, provider: TracerProvider, segment_server: ScriptedServer) -> None:
        """Client options build a client the processor owns and shuts down."""
        processor = SegmentSpanProcessor(write_key="k", host=segment_server.url)
        provider.add_span_processor(processor)
        end_span(provider.get_tracer("test"), "s", {"segment.event": "E", "enduser.id": "u1"})
        owned = owned_client(processor)
        assert processor.force_flush(5000)
        assert 1 == len(segment_server.messages)
        provider.shutdown()

        assert owned.closed
        assert not processor.force_flush()

    def test_owned_exporter_client(self, segment_server: ScriptedServer) -> None:
        """An exporter's own client is shut down with it."""
        exporter = SegmentSpanExporter(write_key="k", host=segment_server.url)
        owned = owned_client(exporter)
        exporter.shutdown()

        assert owned.closed

    def test_default_client(
        self,
        provider: TracerProvider,
        client: Client,
        segment_server: ScriptedServer,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """With no client, the process-wide default client is used, and not shut down."""
        monkeypatch.setattr(otel_segment, "default_client", client)
        exporter = SegmentSpanExporter()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        end_span(provider.get_tracer("test"), "s", {"segment.event": "E", "enduser.id": "u1"})
        assert exporter.force_flush(5000)
        exporter.shutdown()

        assert ["E"] == [m["event"] for m in segment_server.messages]
        assert not client.closed

    @pytest.mark.usefixtures("no_write_key")
    def test_no_usable_default_client(
        self, provider: TracerProvider, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Without a write key anywhere, export fails, logs once and never raises."""
        exporter = SegmentSpanExporter()
        span = provider.get_tracer("test").start_span("s", attributes={"segment.event": "E"})
        span.end()
        with caplog.at_level(logging.ERROR, "otel_segment"):
            results = [exporter.export([span]) for _ in range(2)]  # type: ignore[list-item]

        assert [SpanExportResult.FAILURE] * 2 == results
        assert 1 == caplog.text.count("no usable client")
        assert exporter.force_flush()

    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({"client": "not a client"}, "client must be an otel_segment.Client"),
            ({"mapper": 42}, "mapper must be callable"),
        ],
    )
    def test_bad_arguments(self, kwargs: dict[str, Any], message: str) -> None:
        """Wrong argument types fail at construction, naming the argument."""
        for source in (SegmentSpanExporter, SegmentSpanProcessor):
            with pytest.raises(TypeError, match=message):
                source(**kwargs)

    def test_client_and_options(self, client: Client) -> None:
        """A client and client options together are refused."""
        with pytest.raises(TypeError, match="not both"):
            SegmentSpanProcessor(client=client, write_key="k")


class TestMapper:
    """A mapper callable replaces the default mapping."""

    def test_mapper_results(
        self,
        provider: TracerProvider,
        client: Client,
        segment_server: ScriptedServer,
        finished: InMemorySpanExporter,
    ) -> None:
        """A dict, a list or None; "type" defaults to track; the span's trace is added."""

        def mapper(span: ReadableSpan) -> Any:
            match span.name:
                case "one":
                    return {"event": "One", "user_id": "u1"}
                case "two":
                    return [
                        {"type": "identify", "user_id": "u1", "traits": {"a": 1}},
                        {"event": "Two", "user_id": "u1", "context": {"trace": {"x": 1}}},
                    ]
                case _:
                    return None

        provider.add_span_processor(SegmentSpanProcessor(client=client, mapper=mapper))
        tracer = provider.get_tracer("test")
        for name in ("one", "two", "three"):
            end_span(tracer, name, {})

        messages = delivered(client, segment_server)
        first = finished.get_finished_spans()[0]
        assert [("track", "One"), ("identify", None), ("track", "Two")] == [
            (m["type"], m.get("event")) for m in messages
        ]
        assert format(first.context.span_id, "016x") == messages[0]["context"]["trace"]["span_id"]
        assert {"x": 1} == messages[2]["context"]["trace"]

    def test_mapper_errors_are_rejected(
        self, provider: TracerProvider, client: Client, segment_server: ScriptedServer
    ) -> None:
        """A mapper that raises or returns no mapping costs one rejection; export succeeds."""

        def mapper(span: ReadableSpan) -> Any:
            if span.name == "boom":
                raise RuntimeError("mapper bug")
            if span.name == "odd":
                return ["not a mapping"]
            return {"event": "Ok", "user_id": "u1"}

        exporter = SegmentSpanExporter(client=client, mapper=mapper)
        tracer = provider.get_tracer("test")
        spans = []
        for name in ("boom", "odd", "fine"):
            span = tracer.start_span(name)
            span.end()
            spans.append(span)

        assert SpanExportResult.SUCCESS == exporter.export(spans)  # type: ignore[arg-type]
        assert ["Ok"] == [m["event"] for m in delivered(client, segment_server)]
        assert 2 == client.stats()["rejected"]


class TestOwnRequests:
    """The client's own uploads create no spans, even with requests instrumented."""

    @pytest.fixture
    def instrumented(self) -> Iterator[InMemorySpanExporter]:
        """`requests` instrumented on a provider of its own; uninstrumented afterwards."""
        provider = TracerProvider(shutdown_on_exit=False)
        exporter = InMemorySpanExporter()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        instrumentor = RequestsInstrumentor()
        instrumentor.instrument(tracer_provider=provider)
        yield exporter
        instrumentor.uninstrument()
        provider.shutdown()

    def test_no_spans_for_uploads(
        self,
        instrumented: InMemorySpanExporter,
        tracer: Tracer,
        client: Client,
        segment_server: ScriptedServer,
    ) -> None:
        """A plain request makes a span; delivering batches makes none."""
        with requests.post(f"{segment_server.url}/v1/batch", json={"batch": []}, timeout=5):
            pass
        assert 1 == len(instrumented.get_finished_spans())
        instrumented.clear()

        end_span(tracer, "s", {"segment.event": "E", "enduser.id": "u1"})
        client.track("u1", "Direct")

        assert 2 == len(delivered(client, segment_server))
        assert () == instrumented.get_finished_spans()


class TestRecursion:
    """Spans ending inside the pipeline (e.g. in on_error) are never mapped."""

    def test_export_in_on_error(
        self, provider: TracerProvider, segment_server: ScriptedServer
    ) -> None:
        """An export made on the worker (in on_error) succeeds and sends nothing."""
        results: list[SpanExportResult] = []
        span = provider.get_tracer("test").start_span("s", attributes={"segment.event": "E"})
        span.end()
        exporter = SegmentSpanExporter()

        def on_error(_error: Exception, _messages: list[dict[str, Any]]) -> None:
            results.append(exporter.export([span]))  # type: ignore[list-item]

        segment_server.respond(400)
        with Client("k", host=segment_server.url, on_error=on_error) as client:
            client.track("u1", "Refused")
            assert client.flush(5)

            assert [SpanExportResult.SUCCESS] == results
            assert 1 == client.stats()["enqueued"]

    def test_span_in_on_error(
        self, provider: TracerProvider, segment_server: ScriptedServer
    ) -> None:
        """A marked span ended in on_error, on the worker, sends nothing back."""
        tracer = provider.get_tracer("test")

        def on_error(_error: Exception, _messages: list[dict[str, Any]]) -> None:
            end_span(tracer, "in on_error", {"segment.event": "Loop", "enduser.id": "u1"})

        segment_server.respond(400)
        with Client("k", host=segment_server.url, on_error=on_error) as client:
            provider.add_span_processor(SegmentSpanProcessor(client=client))
            client.track("u1", "Refused")
            assert client.flush(5)

            assert (1, 1) == (client.stats()["enqueued"], client.stats()["failed"])


class TestSpanProcessorOnAClosedClient:
    """A marked span ended after its shared client was shut down is not lost in silence."""

    def test_is_reported(
        self,
        provider: TracerProvider,
        segment_server: ScriptedServer,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        """One warning under otel_segment names the reason, however many spans follow."""
        client = Client("k", host=segment_server.url)
        provider.add_span_processor(SegmentSpanProcessor(client=client))
        tracer = provider.get_tracer("test")
        client.shutdown()

        with caplog.at_level(logging.WARNING, "otel_segment"):
            for _ in range(3):
                with tracer.start_as_current_span("s", attributes={"segment.event": "E"}):
                    pass

        reports = [r.getMessage() for r in caplog.records if r.name == "otel_segment"]
        assert ["OpenTelemetry data not sent: the client was shut down"] == reports
