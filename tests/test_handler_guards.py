"""Tests for SegmentHandler's guards and life cycle: recursion, close, clients, mappers."""

from __future__ import annotations

import logging
import time
import uuid
from typing import TYPE_CHECKING, Any

import pytest
from _logging import CREATED, CREATED_ISO, ListHandler

import otel_segment
from otel_segment import Client, RetryPolicy, SegmentHandler, annotate

if TYPE_CHECKING:
    from collections.abc import Iterator

    from _server import ScriptedServer


@pytest.fixture
def debug_everywhere() -> Iterator[logging.Logger]:
    """The root logger and urllib3 at DEBUG (restored afterwards); yields the root logger."""
    root, urllib3 = logging.getLogger(), logging.getLogger("urllib3")
    levels = root.level, urllib3.level
    root.setLevel(logging.DEBUG)
    urllib3.setLevel(logging.DEBUG)
    yield root
    root.setLevel(levels[0])
    urllib3.setLevel(levels[1])


class TestRecursion:
    """The pipeline's own records never come back through the handler."""

    @pytest.mark.parametrize(
        ("name", "forwarded"),
        [
            ("otel_segment", False),
            ("otel_segment.pipeline.batching", False),
            ("urllib3", False),
            ("urllib3.connectionpool", False),
            ("requests", False),
            ("requests.adapters", False),
            ("otel_segmentation", True),
            ("app.urllib3", True),
        ],
    )
    def test_ignored_loggers(self, client: Client, name: str, forwarded: bool) -> None:
        """Annotated records of ignored loggers (and their children) are not sent."""
        handler = SegmentHandler(client=client)
        record = logging.getLogger(name).makeRecord(
            name, logging.INFO, "f", 1, "Signed Up", (), None, extra=annotate(user_id="u1")
        )

        assert forwarded == handler.handle(record)
        handler.close()

    def test_no_loop_with_debug_logging_everywhere(
        self, segment_server: ScriptedServer, debug_everywhere: logging.Logger
    ) -> None:
        """A mapper that maps every record, on the root at DEBUG, a failing server: no loop."""
        segment_server.respond_many(500, 50)
        seen: list[str] = []

        def every_record(record: logging.LogRecord) -> dict[str, Any]:
            seen.append(record.name)
            return {"user_id": "u1", "event": record.getMessage()}

        from_urllib3 = ListHandler()
        logging.getLogger("urllib3").addHandler(from_urllib3)
        retry = RetryPolicy(max_attempts=3, backoff=lambda _: 0.0)
        client = Client("test-key", host=segment_server.url, retry=retry)
        handler = SegmentHandler(client=client, mapper=every_record)
        debug_everywhere.addHandler(handler)
        name = f"tests.guards.{uuid.uuid4().hex}"
        try:
            logging.getLogger(name).info("Signed Up")
            assert client.flush(5)
        finally:
            debug_everywhere.removeHandler(handler)
            logging.getLogger("urllib3").removeHandler(from_urllib3)
            handler.close()
            client.shutdown(5)

        stats = client.stats()
        counts = (stats["enqueued"], stats["delivered"], stats["failed"], stats["retried"])
        assert (1, 0, 1, 2) == counts
        assert 3 == len(segment_server.requests)
        assert [name] == seen
        assert from_urllib3.records  # urllib3 did log, in the worker

    def test_records_logged_by_the_pipeline_are_not_sent(
        self, segment_server: ScriptedServer, app_logger: logging.Logger
    ) -> None:
        """A record logged in the worker (here from on_error) is not forwarded."""
        segment_server.respond(400)
        seen = ListHandler()

        def on_error(_error: Exception, _messages: list[dict[str, Any]]) -> None:
            app_logger.info("Delivery Failed", extra=annotate(user_id="ops"))

        client = Client("test-key", host=segment_server.url, on_error=on_error)
        app_logger.addHandler(seen)
        app_logger.addHandler(SegmentHandler(client=client))
        try:
            app_logger.info("Signed Up", extra=annotate(user_id="u1"))
            assert client.flush(5)
        finally:
            client.shutdown(5)

        assert ["Signed Up", "Delivery Failed"] == [r.getMessage() for r in seen.records]
        assert (1, 1) == (client.stats()["enqueued"], client.stats()["failed"])

    def test_mapper_that_logs_does_not_recurse(
        self, app_logger: logging.Logger, client: Client
    ) -> None:
        """A record logged while the handler emits is not forwarded."""

        def chatty(record: logging.LogRecord) -> dict[str, Any]:
            app_logger.info("mapping", extra=annotate(user_id="u1"))
            return {"user_id": "u1", "event": record.getMessage()}

        app_logger.addHandler(SegmentHandler(client=client, mapper=chatty))
        app_logger.info("Signed Up")

        assert 1 == client.stats()["enqueued"]


def _signed_up(server: ScriptedServer, logger: logging.Logger, **options: Any) -> SegmentHandler:
    """A handler owning a client of *server* (with *options*) on *logger*, which logs once."""
    handler = SegmentHandler(write_key="test-key", host=server.url, **options)
    logger.addHandler(handler)
    logger.info("Signed Up", extra=annotate(user_id="u1"))
    return handler


class TestClose:
    """close() ends what the handler owns, and only that."""

    def test_owned_client_is_shut_down(
        self, segment_server: ScriptedServer, app_logger: logging.Logger
    ) -> None:
        """With client keyword arguments the handler owns its client and closes it."""
        handler = _signed_up(segment_server, app_logger, flush_at=10)
        handler.close()
        handler.close()

        assert handler.client is not None
        assert (True, 10) == (handler.client.closed, handler.client.config.flush_at)
        assert 1 == len(segment_server.messages)
        assert "test-key" not in repr(handler)

    def test_given_client_stays_open(self, client: Client) -> None:
        """A handler given a client leaves it running when closed."""
        handler = SegmentHandler(client=client)
        handler.close()

        assert (client, False) == (handler.client, client.closed)

    def test_records_after_close_are_dropped(
        self, client: Client, app_logger: logging.Logger
    ) -> None:
        """A closed handler still attached somewhere drops records."""
        handler = SegmentHandler(client=client)
        app_logger.addHandler(handler)
        handler.close()
        app_logger.info("Signed Up", extra=annotate(user_id="u1"))

        assert 0 == client.stats()["enqueued"]

    def test_flush_delivers(
        self, segment_server: ScriptedServer, app_logger: logging.Logger
    ) -> None:
        """flush() delivers what is queued without waiting for the flush interval."""
        handler = _signed_up(segment_server, app_logger, flush_interval=60)
        started = time.monotonic()
        handler.flush()

        assert 1 == len(segment_server.messages)
        assert time.monotonic() - started < 5

    @pytest.mark.parametrize(
        ("arguments", "error"),
        [
            ({"client": "not a client"}, TypeError),
            ({"mapper": "not callable"}, TypeError),
            ({"write_key": "k", "flush_at": 0}, ValueError),
            ({"write_key": "k", "colour": "red"}, TypeError),
        ],
    )
    def test_bad_arguments_raise(self, arguments: dict[str, Any], error: type[Exception]) -> None:
        """Construction fails loudly."""
        with pytest.raises(error):
            SegmentHandler(**arguments)

    def test_client_and_client_arguments_raise(self, client: Client) -> None:
        """A client and client keyword arguments together are refused."""
        with pytest.raises(TypeError, match="not both"):
            SegmentHandler(client=client, flush_at=10)


class TestDefaultClient:
    """Without a client, the handler feeds the process-wide default client."""

    def test_configured_after_the_handler(
        self,
        segment_server: ScriptedServer,
        app_logger: logging.Logger,
    ) -> None:
        """The default client is looked up when a record comes, not at construction."""
        handler = SegmentHandler()
        app_logger.addHandler(handler)
        default = otel_segment.configure(write_key="test-key", host=segment_server.url)
        try:
            app_logger.info("Signed Up", extra=annotate(user_id="u1"))
            handler.flush()
            handler.close()
            assert segment_server.wait_for_messages(1, 5)
            assert (None, False) == (handler.client, default.closed)
        finally:
            otel_segment.shutdown(5)

    def test_flush_builds_no_client(self) -> None:
        """flush() before any record builds no default client."""
        handler = SegmentHandler()
        handler.flush()
        handler.close()

        assert otel_segment.default_client is None


class TestMapper:
    """A mapper replaces the default mapping."""

    def test_mapper_fields_are_sent(
        self,
        app_logger: logging.Logger,
        client: Client,
        segment_server: ScriptedServer,
    ) -> None:
        """The mapper's fields make the message; None skips; timestamp is record.created."""

        def by_user(record: logging.LogRecord) -> dict[str, Any] | None:
            user = record.__dict__.get("user")
            if user is None:
                return None
            return {"type": "identify", "user_id": user, "traits": {"level": record.levelname}}

        app_logger.addHandler(SegmentHandler(client=client, mapper=by_user))
        app_logger.info("no user here")
        record = app_logger.makeRecord(
            app_logger.name, logging.WARNING, "f", 1, "x", (), None, extra={"user": "u1"}
        )
        record.created = CREATED
        app_logger.handle(record)

        assert client.flush(5)
        [message] = segment_server.messages
        expected = ("identify", "u1", {"level": "WARNING"}, CREATED_ISO)
        assert expected == (
            message["type"],
            message["userId"],
            message["traits"],
            message["timestamp"],
        )

    @pytest.mark.parametrize("result", [["not", "a", "mapping"], {"user": "u1"}, ZeroDivisionError])
    def test_mapper_errors_are_rejected(
        self, app_logger: logging.Logger, client: Client, result: object
    ) -> None:
        """A mapper that raises or returns something unusable: counted, not raised."""

        def mapper(_record: logging.LogRecord) -> Any:
            if result is ZeroDivisionError:
                return 1 / 0
            return result

        app_logger.addHandler(SegmentHandler(client=client, mapper=mapper))
        app_logger.info("Signed Up")

        assert (1, 0) == (client.stats()["rejected"], client.stats()["enqueued"])
