"""Tests for otel_segment.sources.handler: SegmentHandler and annotate(), with real loggers."""

from __future__ import annotations

import datetime as dt
import functools
import logging
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeAlias

import pytest
from _helpers import delivered
from _logging import CREATED, CREATED_ISO, ListHandler
from opentelemetry.sdk.trace import TracerProvider

import otel_segment
from otel_segment import Client, SegmentHandler, annotate

if TYPE_CHECKING:
    from collections.abc import Callable

    from _server import ScriptedServer

Received: TypeAlias = "Callable[[int], list[dict[str, Any]]]"
"""``received(n)``: flush the client; the server's messages once *n* arrived."""


@pytest.fixture
def handler(client: Client, app_logger: logging.Logger) -> SegmentHandler:
    """A SegmentHandler feeding *client*, attached to *app_logger*."""
    handler = SegmentHandler(client=client)
    app_logger.addHandler(handler)
    return handler


@pytest.fixture
def received(client: Client, segment_server: ScriptedServer) -> Received:
    """Flushes *client*; returns the server's messages once a given number arrived."""
    return functools.partial(delivered, client, segment_server)


def log_at(logger: logging.Logger, msg: str, extra: dict[str, Any]) -> None:
    """Log *msg* at INFO through *logger* with ``record.created`` set to CREATED."""
    record = logger.makeRecord(logger.name, logging.INFO, __file__, 1, msg, (), None, extra=extra)
    record.created = CREATED
    logger.handle(record)


class TestMessageTypes:
    """Each message type arrives with the record's defaults applied."""

    @pytest.mark.usefixtures("handler")
    def test_track_defaults(self, app_logger: logging.Logger, received: Received) -> None:
        """Type defaults to track; the message is the event; record.created the timestamp."""
        log_at(app_logger, "Signed Up", {"segment": {"user_id": "u1"}})

        [message] = received(1)
        expected = {"type": "track", "event": "Signed Up", "userId": "u1", "properties": {}}
        assert expected == {key: message[key] for key in expected}
        assert CREATED_ISO == message["timestamp"]

    @pytest.mark.usefixtures("handler")
    @pytest.mark.parametrize(
        ("annotation", "expected"),
        [
            (
                {"type": "identify", "user_id": "u1", "traits": {"plan": "pro"}},
                {"type": "identify", "userId": "u1", "traits": {"plan": "pro"}},
            ),
            (
                {"type": "page", "user_id": "u1", "category": "Docs"},
                {"type": "page", "name": "Pricing", "category": "Docs", "properties": {}},
            ),
            (
                {"type": "screen", "anonymous_id": "a1", "name": "Home"},
                {"type": "screen", "anonymousId": "a1", "name": "Home"},
            ),
            (
                {"type": "group", "user_id": "u1", "group_id": "acme", "traits": {"seats": 5}},
                {"type": "group", "groupId": "acme", "traits": {"seats": 5}},
            ),
            (
                {"type": "alias", "previous_id": "anon-7", "user_id": "u1"},
                {"type": "alias", "previousId": "anon-7", "userId": "u1"},
            ),
            (
                {"user_id": "u1", "event": "Order Completed", "properties": {"total": 42.5}},
                {"type": "track", "event": "Order Completed", "properties": {"total": 42.5}},
            ),
        ],
    )
    def test_each_type(
        self,
        app_logger: logging.Logger,
        received: Received,
        annotation: dict[str, Any],
        expected: dict[str, Any],
    ) -> None:
        """The annotation's type and fields make the message; explicit names win."""
        log_at(app_logger, "Pricing", {"segment": annotation})

        [message] = received(1)
        assert expected == {key: message.get(key) for key in expected}
        assert CREATED_ISO == message["timestamp"]

    @pytest.mark.usefixtures("handler")
    def test_explicit_common_fields(self, app_logger: logging.Logger, received: Received) -> None:
        """context, integrations, message_id and timestamp given are used as given."""
        when = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)
        app_logger.info(
            "Signed Up",
            extra=annotate(
                user_id=7,
                context={"ip": "10.0.0.1"},
                integrations={"All": False},
                message_id="m-1",
                timestamp=when,
            ),
        )

        [message] = received(1)
        actual = (message["userId"], message["messageId"], message["timestamp"])
        assert ("7", "m-1", "2024-05-01T12:00:00.000+00:00") == actual
        assert ("10.0.0.1", {"All": False}) == (message["context"]["ip"], message["integrations"])


class TestExtras:
    """A record's other extra fields become properties or traits."""

    @pytest.mark.usefixtures("handler")
    def test_extras_join_properties(self, app_logger: logging.Logger, received: Received) -> None:
        """Extras join properties, explicit properties win, private names are left out."""
        extra = {
            "segment": {"user_id": "u1", "properties": {"plan": "pro"}},
            "plan": "free",
            "total": 42.5,
            "_secret": "x",
        }
        app_logger.info("Order Completed", extra=extra)

        [message] = received(1)
        assert {"plan": "pro", "total": 42.5} == message["properties"]

    @pytest.mark.usefixtures("handler")
    @pytest.mark.parametrize("kind", ["identify", "group"])
    def test_extras_join_traits(
        self, app_logger: logging.Logger, received: Received, kind: str
    ) -> None:
        """For identify and group, extras join traits."""
        annotation = {"type": kind, "user_id": "u1", "group_id": "acme", "traits": {"a": 1}}
        if kind == "identify":
            del annotation["group_id"]
        app_logger.info("changed", extra={"segment": annotation, "seats": 5})

        [message] = received(1)
        assert {"a": 1, "seats": 5} == message["traits"]

    def test_standard_attributes_left_out(
        self,
        app_logger: logging.Logger,
        handler: SegmentHandler,
        received: Received,
    ) -> None:
        """LogRecord attributes, and message/asctime set by a formatter, are no extras."""
        formatting = ListHandler(formats=True)
        formatting.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        app_logger.handlers.insert(0, formatting)  # runs before the SegmentHandler

        app_logger.info("Signed Up %s", "now", extra=annotate(user_id="u1"), stack_info=True)

        [message] = received(1)
        assert ("Signed Up now", {}) == (message["event"], message["properties"])
        assert {"asctime", "message"} <= formatting.records[0].__dict__.keys()
        assert handler in app_logger.handlers

    @pytest.mark.usefixtures("handler")
    def test_values_converted_once_by_the_encoder(
        self, app_logger: logging.Logger, received: Received
    ) -> None:
        """Extras are passed as they are; the encoder converts them on the wire."""
        when = dt.datetime(2024, 5, 1, tzinfo=dt.UTC)
        app_logger.info(
            "Paid", extra={"segment": {"user_id": "u1"}, "amount": Decimal("1.10"), "at": when}
        )

        [message] = received(1)
        assert {"amount": "1.10", "at": "2024-05-01T00:00:00+00:00"} == message["properties"]

    @pytest.mark.usefixtures("handler")
    def test_alias_has_no_place_for_extras(
        self, app_logger: logging.Logger, received: Received
    ) -> None:
        """An alias carries no properties: its record's extras are not sent."""
        app_logger.info(
            "merged", extra={**annotate("alias", previous_id="a", user_id="u1"), "x": 1}
        )

        [message] = received(1)
        assert "properties" not in message
        assert "traits" not in message


class TestUnannotated:
    """Records without an annotation are dropped at once."""

    @pytest.mark.usefixtures("handler")
    def test_only_annotated_records_are_sent(
        self, app_logger: logging.Logger, client: Client, received: Received
    ) -> None:
        """Plain records, with or without extras, send nothing."""
        app_logger.debug("starting")
        app_logger.info("cache warmed", extra={"entries": 12})
        app_logger.error("failed", exc_info=False)
        app_logger.info("no annotation", extra={"segment": None})
        app_logger.info("Signed Up", extra=annotate(user_id="u1"))

        [message] = received(1)
        assert "Signed Up" == message["event"]
        assert (1, 0) == (client.stats()["enqueued"], client.stats()["rejected"])

    def test_handle_returns_false(
        self, app_logger: logging.Logger, handler: SegmentHandler
    ) -> None:
        """handle() reports whether the record was emitted."""
        plain = app_logger.makeRecord(app_logger.name, logging.INFO, "f", 1, "x", (), None)
        marked = app_logger.makeRecord(
            app_logger.name, logging.INFO, "f", 1, "x", (), None, extra=annotate(user_id="u1")
        )

        assert (False, True) == (handler.handle(plain), handler.handle(marked))

    def test_filters_apply_to_annotated_records(
        self,
        app_logger: logging.Logger,
        handler: SegmentHandler,
        received: Received,
    ) -> None:
        """A handler filter can drop an annotated record."""
        handler.addFilter(lambda record: record.getMessage() != "skip me")
        app_logger.info("skip me", extra=annotate(user_id="u1"))
        app_logger.info("keep me", extra=annotate(user_id="u1"))

        [message] = received(1)
        assert "keep me" == message["event"]


class TestBadAnnotations:
    """A bad annotation is counted and reported, never raised; other records go through."""

    @pytest.mark.usefixtures("handler")
    @pytest.mark.parametrize(
        ("extra", "reason"),
        [
            ({"segment": {"properties": {"plan": "pro"}}}, "user_id"),
            ({"segment": {"user_id": "u1", "properties": "pro"}}, "properties"),
            ({"segment": {"user_id": ["u1"]}}, "user_id"),
            ({"segment": {"user_id": "u1", "traits": {}}}, "traits"),
            ({"segment": {"type": "purchase", "user_id": "u1"}}, "purchase"),
            ({"segment": "u1"}, "mapping"),
            ({"segment": {"user_id": "u1", "colour": "red"}}, "colour"),
            ({"segment": {"type": "group", "user_id": "u1"}}, "group_id"),
        ],
    )
    def test_rejected_and_counted(
        self,
        app_logger: logging.Logger,
        client: Client,
        received: Received,
        caplog: pytest.LogCaptureFixture,
        capsys: pytest.CaptureFixture[str],
        extra: dict[str, Any],
        reason: str,
    ) -> None:
        """The bad record counts as rejected with a warning naming the problem."""
        with caplog.at_level(logging.WARNING, logger="otel_segment"):
            app_logger.info("Signed Up", extra=extra)
            app_logger.info("Signed Up", extra=annotate(user_id="u2"))

        [message] = received(1)
        assert "u2" == message["userId"]
        assert (1, 1) == (client.stats()["rejected"], client.stats()["enqueued"])
        warnings = [r.getMessage() for r in caplog.records if r.name == "otel_segment"]
        assert 1 == len(warnings)
        assert reason in warnings[0]
        assert "" == capsys.readouterr().err

    def test_unformattable_message_is_rejected(
        self,
        app_logger: logging.Logger,
        handler: SegmentHandler,
        client: Client,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """A record whose message cannot be formatted is counted, not raised."""
        app_logger.handlers = [handler]  # pytest's capture handlers fail on a bad format
        app_logger.info("%d items", "many", extra=annotate(user_id="u1"))

        assert 1 == client.stats()["rejected"]
        assert "" == capsys.readouterr().err

    @pytest.mark.usefixtures("handler")
    def test_warnings_are_rate_limited(
        self, app_logger: logging.Logger, client: Client, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Many bad records: each is counted, one warning is logged."""
        with caplog.at_level(logging.WARNING, logger="otel_segment"):
            for _ in range(5):
                app_logger.info("Signed Up", extra=annotate())

        assert 5 == client.stats()["rejected"]
        assert 1 == len([r for r in caplog.records if r.name == "otel_segment"])

    @pytest.mark.usefixtures("handler")
    def test_unprintable_property_is_rejected(
        self, app_logger: logging.Logger, client: Client, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A property whose __str__ raises is a counted rejection, not a logging error."""

        class Unprintable:
            def __str__(self) -> str:
                raise RuntimeError("no text")

        app_logger.info("Signed Up", extra={**annotate(user_id="u1"), "thing": Unprintable()})

        assert 1 == client.stats()["rejected"]
        assert "--- Logging error ---" not in capsys.readouterr().err

    def test_closed_client_drops_with_a_warning(
        self,
        app_logger: logging.Logger,
        segment_server: ScriptedServer,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        """Records for a client that was shut down are dropped and reported."""
        client = Client("test-key", host=segment_server.url)
        client.shutdown(5)
        app_logger.addHandler(SegmentHandler(client=client))

        with caplog.at_level(logging.WARNING, logger="otel_segment"):
            app_logger.info("Signed Up", extra=annotate(user_id="u1"))

        assert any("shut down" in r.getMessage() for r in caplog.records)

    @pytest.mark.usefixtures("no_write_key")
    def test_no_default_client_drops_with_a_warning(
        self, app_logger: logging.Logger, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Without a write key the default client cannot be built: reported, not raised."""
        app_logger.addHandler(SegmentHandler())

        with caplog.at_level(logging.WARNING, logger="otel_segment"):
            app_logger.info("Signed Up", extra=annotate(user_id="u1"))

        assert any("write_key" in r.getMessage() for r in caplog.records)
        assert otel_segment.default_client is None

    def test_alias_values_are_rejected(self, app_logger: logging.Logger, client: Client) -> None:
        """An alias has no properties: values given for one make a rejected record."""
        app_logger.addHandler(SegmentHandler(client=client))
        app_logger.info("merged", extra=annotate("alias", previous_id="a", user_id="u", x=1))

        assert 1 == client.stats()["rejected"]


class TestTraceCorrelation:
    """A record logged inside an active span carries its trace and span ids."""

    @pytest.mark.usefixtures("handler")
    def test_trace_ids_in_context(self, app_logger: logging.Logger, received: Received) -> None:
        """Inside a span: context.trace holds the hex ids; outside: no trace."""
        provider = TracerProvider()
        try:
            with provider.get_tracer(__name__).start_as_current_span("checkout") as span:
                app_logger.info("Order Completed", extra=annotate(user_id="u1"))
            app_logger.info("Signed Up", extra=annotate(user_id="u1"))
        finally:
            provider.shutdown()

        inside, outside = received(2)
        ids = span.get_span_context()
        expected = {"trace_id": f"{ids.trace_id:032x}", "span_id": f"{ids.span_id:016x}"}
        assert expected == inside["context"]["trace"]
        assert "trace" not in outside["context"]
