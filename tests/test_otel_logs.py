"""Tests for SegmentLogExporter: OTel log records with an event name become tracks."""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING, Any

import pytest
from _helpers import delivered
from _otel import owned_client, shut_down_after
from opentelemetry._logs import LogRecord
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import (
    BatchLogRecordProcessor,
    InMemoryLogRecordExporter,
    LogRecordExportResult,
    SimpleLogRecordProcessor,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

from otel_segment import Client, SegmentLogExporter

if TYPE_CHECKING:
    from collections.abc import Iterator

    from _server import ScriptedServer
    from opentelemetry.sdk._logs import ReadableLogRecord
    from opentelemetry.sdk._logs._internal import Logger

RESOURCE = Resource.create({"service.name": "billing", "service.version": "2.0"})
WHEN_NS = 1_767_225_600_123_456_789  # 2026-01-01T00:00:00.123456789Z


@pytest.fixture
def provider() -> Iterator[LoggerProvider]:
    """A logger provider with a service resource, shut down afterwards."""
    yield from shut_down_after(LoggerProvider(resource=RESOURCE, shutdown_on_exit=False))


@pytest.fixture
def logger(provider: LoggerProvider, client: Client) -> Logger:
    """A logger whose records go to a SegmentLogExporter under SimpleLogRecordProcessor."""
    provider.add_log_record_processor(SimpleLogRecordProcessor(SegmentLogExporter(client=client)))
    return provider.get_logger("test")  # type: ignore[return-value]


class TestEventRecords:
    """A record with an event name is a track."""

    def test_event_name_field(
        self, logger: Logger, client: Client, segment_server: ScriptedServer
    ) -> None:
        """event_name, user, properties, a mapping body, the record's time and the app."""
        logger.emit(
            event_name="Invoice Paid",
            timestamp=WHEN_NS,
            body={"amount": 12, "currency": "EUR"},
            attributes={"enduser.id": "u1", "segment.properties.amount": 12.5},
        )

        [message] = delivered(client, segment_server)
        assert ("track", "Invoice Paid", "u1") == (
            message["type"],
            message["event"],
            message["userId"],
        )
        assert {"amount": 12.5, "currency": "EUR"} == message["properties"]
        assert "2026-01-01T00:00:00.123+00:00" == message["timestamp"]
        assert {"name": "billing", "version": "2.0"} == message["context"]["app"]
        assert "trace" not in message["context"]

    def test_event_name_attribute(
        self, logger: Logger, client: Client, segment_server: ScriptedServer
    ) -> None:
        """An otel.event.name attribute names the event too."""
        logger.emit(body="ignored text", attributes={"otel.event.name": "Seen", "session.id": "a"})

        [message] = delivered(client, segment_server)
        assert ("Seen", None, "a") == (message["event"], message["userId"], message["anonymousId"])

    def test_observed_time(
        self, logger: Logger, client: Client, segment_server: ScriptedServer
    ) -> None:
        """Without a timestamp, the observed time is the message's time."""
        before = dt.datetime.now(dt.UTC).replace(microsecond=0)
        logger.emit(event_name="E", attributes={"enduser.id": "u1"})

        [message] = delivered(client, segment_server)
        assert before <= dt.datetime.fromisoformat(message["timestamp"])

    def test_trace_ids(
        self, logger: Logger, client: Client, segment_server: ScriptedServer
    ) -> None:
        """A record emitted in a span carries that span's ids."""
        tracer_provider = TracerProvider(shutdown_on_exit=False)
        with tracer_provider.get_tracer("test").start_as_current_span("s") as span:
            logger.emit(event_name="E", attributes={"enduser.id": "u1"})
        tracer_provider.shutdown()

        [message] = delivered(client, segment_server)
        context = span.get_span_context()
        assert {
            "trace_id": format(context.trace_id, "032x"),
            "span_id": format(context.span_id, "016x"),
        } == message["context"]["trace"]

    def test_segment_type(
        self, logger: Logger, client: Client, segment_server: ScriptedServer
    ) -> None:
        """segment.type makes another call, with or without an event name."""
        logger.emit(
            event_name="Profile Updated",
            attributes={
                "segment.type": "identify",
                "enduser.id": "u1",
                "segment.traits.plan": "pro",
            },
        )
        logger.emit(body="Pricing", attributes={"segment.type": "page", "enduser.id": "u1"})

        messages = delivered(client, segment_server)
        assert [("identify", {"plan": "pro"}), ("page", "Pricing")] == [
            (messages[0]["type"], messages[0]["traits"]),
            (messages[1]["type"], messages[1]["name"]),
        ]

    def test_segment_event_alone(
        self, logger: Logger, client: Client, segment_server: ScriptedServer
    ) -> None:
        """segment.event marks a record without an event name."""
        logger.emit(body="text", attributes={"segment.event": "Exported", "enduser.id": "u1"})

        [message] = delivered(client, segment_server)
        assert "Exported" == message["event"]


class TestIgnoredAndInvalid:
    """Plain log records are ignored; invalid ones are counted."""

    def test_plain_records(
        self, logger: Logger, client: Client, segment_server: ScriptedServer
    ) -> None:
        """A record with no event name and no marker sends nothing."""
        logger.emit(body="disk almost full", attributes={"enduser.id": "u1"})

        assert [] == delivered(client, segment_server)
        assert 0 == client.stats()["enqueued"]

    def test_no_user(self, logger: Logger, client: Client, segment_server: ScriptedServer) -> None:
        """An event with no user or anonymous id is rejected, not sent."""
        logger.emit(event_name="Anonymous Thing")

        assert [] == delivered(client, segment_server)
        assert 1 == client.stats()["rejected"]


class TestExporter:
    """Exporter semantics: batch processor, mapper, flush, shutdown."""

    def test_batch_processor(
        self, provider: LoggerProvider, client: Client, segment_server: ScriptedServer
    ) -> None:
        """Under BatchLogRecordProcessor, records arrive once flushed."""
        exporter = SegmentLogExporter(client=client)
        provider.add_log_record_processor(BatchLogRecordProcessor(exporter))
        logger = provider.get_logger("test")
        for n in range(3):
            logger.emit(event_name=f"E{n}", attributes={"enduser.id": "u1"})

        assert provider.force_flush(5000)
        assert exporter.force_flush(5000)
        assert ["E0", "E1", "E2"] == [m["event"] for m in segment_server.messages]

    def test_mapper(
        self, provider: LoggerProvider, client: Client, segment_server: ScriptedServer
    ) -> None:
        """A mapper sees every record and decides; the record's trace is added."""

        def mapper(item: ReadableLogRecord) -> Any:
            body = item.log_record.body
            return {"event": f"Log: {body}", "anonymous_id": "svc"} if body else None

        provider.add_log_record_processor(
            SimpleLogRecordProcessor(SegmentLogExporter(client=client, mapper=mapper))
        )
        logger = provider.get_logger("test")
        logger.emit(body="hello")
        logger.emit(severity_text="INFO")

        [message] = delivered(client, segment_server)
        assert ("Log: hello", "svc") == (message["event"], message["anonymousId"])

    def test_shutdown_and_flush(self, client: Client, segment_server: ScriptedServer) -> None:
        """A given client is flushed, not closed; afterwards export fails and flush is False."""
        memory = InMemoryLogRecordExporter()  # type: ignore[no-untyped-call]
        provider = LoggerProvider(shutdown_on_exit=False)
        provider.add_log_record_processor(SimpleLogRecordProcessor(memory))
        exporter = SegmentLogExporter(client=client)
        provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
        provider.get_logger("test").emit(event_name="E", attributes={"enduser.id": "u1"})
        provider.shutdown()

        assert 1 == len(segment_server.messages)
        assert not client.closed
        assert not exporter.force_flush()
        assert LogRecordExportResult.FAILURE == exporter.export(memory.get_finished_logs())

    def test_api_record_without_resource(
        self, client: Client, segment_server: ScriptedServer
    ) -> None:
        """A bare API record (no resource, no trace) maps too."""
        record = LogRecord(event_name="Bare", attributes={"enduser.id": "u1"}, timestamp=WHEN_NS)
        exporter = SegmentLogExporter(client=client)

        assert LogRecordExportResult.SUCCESS == exporter.export([record])  # type: ignore[list-item]
        [message] = delivered(client, segment_server)
        assert ("Bare", {"library"}) == (message["event"], set(message["context"]))

    def test_export_in_pipeline(self, segment_server: ScriptedServer) -> None:
        """An export made on the worker (in on_error) succeeds and sends nothing."""
        results: list[LogRecordExportResult] = []
        record = LogRecord(event_name="Loop", attributes={"enduser.id": "u1"})

        def on_error(_error: Exception, _messages: list[dict[str, Any]]) -> None:
            results.append(exporter.export([record]))  # type: ignore[list-item]

        segment_server.respond(400)
        with Client("k", host=segment_server.url, on_error=on_error) as client:
            exporter = SegmentLogExporter(client=client)
            client.track("u1", "Refused")
            assert client.flush(5)

            assert [LogRecordExportResult.SUCCESS] == results
            assert 1 == client.stats()["enqueued"]

    def test_unexpected_error(
        self, segment_server: ScriptedServer, caplog: pytest.LogCaptureFixture
    ) -> None:
        """An unexpected error fails the export and is logged; it is not raised."""

        class BrokenClient(Client):
            def message(self, type: str, **_fields: Any) -> Any:
                raise LookupError(f"bug building a {type}")

        record = LogRecord(event_name="E", attributes={"enduser.id": "u1"})
        with (
            BrokenClient("k", host=segment_server.url) as broken,
            caplog.at_level(logging.ERROR, "otel_segment"),
        ):
            result = SegmentLogExporter(client=broken).export([record])  # type: ignore[list-item]

        assert LogRecordExportResult.FAILURE == result
        assert "exporting log records failed" in caplog.text

    def test_owned_client(self, segment_server: ScriptedServer) -> None:
        """Client options build a client the exporter owns and shuts down."""
        exporter = SegmentLogExporter(write_key="k", host=segment_server.url)
        owned = owned_client(exporter)
        exporter.shutdown()

        assert owned.closed
