"""Tests for client: what each call puts on the wire, as the server receives it."""

from __future__ import annotations

import datetime as dt
import inspect
import logging
import uuid
from typing import TYPE_CHECKING, Any

import pytest
from _helpers import TIMESTAMP_RE, Clients, ErrorLog, delivered, message_ids
from opentelemetry.sdk.trace import TracerProvider

import otel_segment
from otel_segment import Client, ClientClosedError, DeliveryError

if TYPE_CHECKING:
    from _server import ScriptedServer

LIBRARY = {"name": "otel-segment", "version": otel_segment.__version__}
CALLS = ("track", "identify", "page", "screen", "group", "alias")


@pytest.fixture
def client(clients: Clients) -> Client:
    """A client of the test server that sends only on flush (keeps the order of calls)."""
    return clients(flush_interval=30)


class TestWireShape:
    """Every call arrives with the Segment Spec fields, exactly as returned."""

    def test_track(self, segment_server: ScriptedServer, client: Client) -> None:
        """A track carries its header, event, properties, context and integrations."""
        ok, returned = client.track(
            "u1", "Order Completed", {"total": 42.5}, integrations={"All": False}
        )
        [message] = delivered(client, segment_server, 1)

        assert ok
        assert returned == message
        uuid_ = uuid.UUID(message["messageId"])
        assert (4, message["messageId"]) == (uuid_.version, str(uuid_))
        assert TIMESTAMP_RE.fullmatch(message["timestamp"])
        expected = {
            "type": "track",
            "messageId": message["messageId"],
            "timestamp": message["timestamp"],
            "userId": "u1",
            "anonymousId": None,
            "event": "Order Completed",
            "properties": {"total": 42.5},
            "context": {"library": LIBRARY},
            "integrations": {"All": False},
        }
        assert expected == message

    def test_identify(self, segment_server: ScriptedServer, client: Client) -> None:
        """An identify carries traits; absent traits are {} and absent ids null."""
        client.identify("u1", {"plan": "pro"})
        client.identify(anonymous_id="a1")
        first, second = delivered(client, segment_server, 2)

        assert ("identify", "u1", None, {"plan": "pro"}) == (
            first["type"],
            first["userId"],
            first["anonymousId"],
            first["traits"],
        )
        assert (None, "a1", {}, {}) == (
            second["userId"],
            second["anonymousId"],
            second["traits"],
            second["integrations"],
        )

    @pytest.mark.parametrize("kind", ["page", "screen"])
    def test_page_and_screen(
        self, segment_server: ScriptedServer, client: Client, kind: str
    ) -> None:
        """Page and screen carry category, name and properties; absent ones are null / {}."""
        getattr(client, kind)("u1", "Docs", "Install", {"path": "/install"})
        getattr(client, kind)(anonymous_id="a1")
        first, second = delivered(client, segment_server, 2)

        assert (kind, "Docs", "Install", {"path": "/install"}) == (
            first["type"],
            first["category"],
            first["name"],
            first["properties"],
        )
        assert (None, None, {}) == (second["category"], second["name"], second["properties"])

    def test_group(self, segment_server: ScriptedServer, client: Client) -> None:
        """A group carries groupId and traits."""
        client.group("u1", "g1", {"seats": 5})
        [message] = delivered(client, segment_server, 1)

        assert ("group", "u1", "g1", {"seats": 5}) == (
            message["type"],
            message["userId"],
            message["groupId"],
            message["traits"],
        )

    def test_alias(self, segment_server: ScriptedServer, client: Client) -> None:
        """An alias carries previousId and userId, and no anonymousId."""
        client.alias("old", "new")
        [message] = delivered(client, segment_server, 1)

        assert ("alias", "old", "new") == (
            message["type"],
            message["previousId"],
            message["userId"],
        )
        assert "anonymousId" not in message
        assert {"library": LIBRARY} == message["context"]

    def test_numbers_are_stringified(self, segment_server: ScriptedServer, client: Client) -> None:
        """Numeric ids go on the wire as strings."""
        client.track(42, "Ev", anonymous_id=7)
        client.group(1, 2)
        client.alias(3, 4)
        track, group, alias = delivered(client, segment_server, 3)

        assert ("42", "7") == (track["userId"], track["anonymousId"])
        assert ("1", "2") == (group["userId"], group["groupId"])
        assert ("3", "4") == (alias["previousId"], alias["userId"])

    def test_timestamps(self, segment_server: ScriptedServer, client: Client) -> None:
        """A naive datetime is UTC; a given zone is kept; milliseconds always."""
        plus_two = dt.timezone(dt.timedelta(hours=2))
        when = dt.datetime(2024, 5, 1, 12, 0, 0, 123456)  # noqa: DTZ001 - naive on purpose
        client.track("u1", "A", timestamp=when)
        client.track("u1", "B", timestamp=dt.datetime(2024, 5, 1, 12, tzinfo=plus_two))
        naive, aware = delivered(client, segment_server, 2)

        assert "2024-05-01T12:00:00.123+00:00" == naive["timestamp"]
        assert "2024-05-01T12:00:00.000+02:00" == aware["timestamp"]

    def test_message_id_given_is_kept(self, segment_server: ScriptedServer, client: Client) -> None:
        """A message_id passed in is the messageId on the wire."""
        client.track("u1", "Ev", message_id="my-id-1")
        assert ["my-id-1"] == message_ids(delivered(client, segment_server, 1))

    def test_message_ids_are_unique(self, segment_server: ScriptedServer, client: Client) -> None:
        """Every message gets its own uuid4."""
        for _ in range(200):
            client.track("u1", "Ev")
        assert 200 == len(set(message_ids(delivered(client, segment_server, 200))))


class TestContext:
    """default_context merges under the call's context; library is always ours."""

    def test_default_context_under_call_context(
        self, segment_server: ScriptedServer, clients: Clients
    ) -> None:
        """The call wins at the leaves; nested mappings merge; library cannot be overridden."""
        client = clients(
            default_context={"app": {"name": "shop", "version": "1"}, "locale": "en"},
            flush_interval=30,
        )
        client.track(
            "u1",
            "Ev",
            context={"app": {"version": "2"}, "ip": "10.0.0.1", "library": {"name": "x"}},
        )
        client.track("u1", "Ev2")
        first, second = delivered(client, segment_server, 2)

        assert {
            "app": {"name": "shop", "version": "2"},
            "locale": "en",
            "ip": "10.0.0.1",
            "library": LIBRARY,
        } == first["context"]
        assert {
            "app": {"name": "shop", "version": "1"},
            "locale": "en",
            "library": LIBRARY,
        } == second["context"]

    def test_call_context_is_not_mutated(self, clients: Clients) -> None:
        """Merging leaves the caller's own context and default_context untouched."""
        default = {"app": {"name": "shop"}}
        client = clients(default_context=default, send=False)
        mine = {"app": {"version": "2"}}
        client.track("u1", "Ev", context=mine)

        assert ({"app": {"name": "shop"}}, {"app": {"version": "2"}}) == (default, mine)

    def test_active_span_adds_trace(self, segment_server: ScriptedServer, client: Client) -> None:
        """A call inside an active span carries its trace and span ids."""
        provider = TracerProvider()
        tracer = provider.get_tracer("test")
        with tracer.start_as_current_span("checkout") as span:
            client.track("u1", "Ev")
            client.track("u1", "Own", context={"trace": {"trace_id": "mine"}})
        provider.shutdown()
        first, second = delivered(client, segment_server, 2)

        span_context = span.get_span_context()
        assert {
            "trace_id": f"{span_context.trace_id:032x}",
            "span_id": f"{span_context.span_id:016x}",
        } == first["context"]["trace"]
        assert {"trace_id": "mine"} == second["context"]["trace"]


class TestCompatibility:
    """Migrating from segment-analytics-python 2.x is an import change."""

    @pytest.mark.parametrize("call", CALLS)
    def test_same_signature_as_analytics_python(self, call: str) -> None:
        """Each call has analytics-python's parameter names, order and defaults."""
        analytics = pytest.importorskip("segment.analytics")
        theirs = inspect.signature(getattr(analytics.Client, call)).parameters
        ours = inspect.signature(getattr(Client, call)).parameters

        assert [(p.name, p.default) for p in theirs.values()] == [
            (p.name, p.default) for p in ours.values()
        ]

    def test_constructor_takes_their_arguments_in_their_order(self) -> None:
        """Client's positional parameters are analytics-python 2.4's, name for name."""
        analytics = pytest.importorskip("segment.analytics")
        theirs = list(inspect.signature(analytics.Client).parameters.values())
        ours = list(inspect.signature(Client).parameters.values())

        assert [p.name for p in theirs] == [p.name for p in ours[: len(theirs)]]
        assert all(p.kind is p.POSITIONAL_OR_KEYWORD for p in ours[: len(theirs)])
        assert all(p.kind is p.KEYWORD_ONLY for p in ours[len(theirs) :])

    def test_constructor_defaults(self) -> None:
        """Defaults match 2.4's except where ours means "not given" (None) or differs."""
        analytics = pytest.importorskip("segment.analytics")
        theirs = inspect.signature(analytics.Client).parameters
        ours = inspect.signature(Client).parameters
        differ = {name for name in theirs if theirs[name].default != ours[name].default}

        # None: the option maps onto one of ours (max_retries -> retry, thread ->
        # max_in_flight, upload_* -> flush_*, the durations -> retry) whose default holds
        assert {
            "max_retries",
            "thread",
            "upload_size",
            "upload_interval",
            "max_total_backoff_duration",
            "max_rate_limit_duration",
        } == differ
        assert all(ours[name].default is None for name in differ)

    def test_positional_calls(self, segment_server: ScriptedServer, client: Client) -> None:
        """The six calls take analytics-python's positional arguments."""
        client.track("u1", "Ev", {"a": 1})
        client.identify("u1", {"plan": "pro"})
        client.page("u1", "Cat", "Name", {"p": 1})
        client.screen("u1", "Cat", "Name", {"s": 1})
        client.group("u1", "g1", {"seats": 3})
        client.alias("old", "new")
        track, identify, page, screen, group, alias = delivered(client, segment_server, 6)

        assert ("Ev", {"a": 1}) == (track["event"], track["properties"])
        assert {"plan": "pro"} == identify["traits"]
        assert ("Cat", "Name", {"p": 1}) == (page["category"], page["name"], page["properties"])
        assert ("Cat", "Name", {"s": 1}) == (
            screen["category"],
            screen["name"],
            screen["properties"],
        )
        assert ("g1", {"seats": 3}) == (group["groupId"], group["traits"])
        assert ("old", "new") == (alias["previousId"], alias["userId"])

    def test_attributes_echo_options(self, clients: Clients) -> None:
        """write_key, host, gzip, sync_mode and timeout read back as passed."""
        client = clients(write_key="k1", gzip=True, sync_mode=True, timeout=3.0)
        assert ("k1", clients.server.url, True, True, 3.0) == (
            client.write_key,
            client.host,
            client.gzip,
            client.sync_mode,
            client.timeout,
        )


class TestResults:
    """Each call returns (accepted, message); message() picks the type at run time."""

    def test_returns_wire_message(self, client: Client) -> None:
        """The returned message has the header fields."""
        ok, message = client.track("u1", "Ev")
        assert ok
        assert {"type", "messageId", "timestamp", "userId", "anonymousId", "context"} <= set(
            message
        )

    @pytest.mark.parametrize(
        ("kind", "fields"),
        [
            ("track", {"user_id": "u1", "event": "Ev"}),
            ("identify", {"user_id": "u1", "traits": {"a": 1}}),
            ("page", {"anonymous_id": "a1", "name": "Home"}),
            ("screen", {"anonymous_id": "a1", "name": "Home"}),
            ("group", {"user_id": "u1", "group_id": "g1"}),
            ("alias", {"previous_id": "p", "user_id": "u1"}),
        ],
    )
    def test_message_by_type(
        self, segment_server: ScriptedServer, client: Client, kind: str, fields: dict[str, Any]
    ) -> None:
        """client.message(type, **fields) sends the same message as the named call."""
        ok, message = client.message(kind, **fields)
        [arrived] = delivered(client, segment_server, 1)
        assert (True, kind, message) == (ok, arrived["type"], arrived)

    def test_message_unknown_type(self, client: Client) -> None:
        """An unknown type is a ValueError naming the field."""
        with pytest.raises(ValueError, match="type must be one of"):
            client.message("click", user_id="u1")

    def test_send_false_sends_nothing(
        self, segment_server: ScriptedServer, clients: Clients
    ) -> None:
        """send=False builds and returns the message; nothing goes out."""
        client = clients(send=False)
        ok, message = client.track("u1", "Ev")
        assert client.flush(timeout=5)
        client.shutdown()

        assert (True, "Ev") == (ok, message["event"])
        assert [] == segment_server.requests

    def test_reject_counts(self, client: Client, caplog: pytest.LogCaptureFixture) -> None:
        """client.reject() counts a message a source could not build, with a warning."""
        client.reject(ValueError("no user"))
        assert 1 == client.stats()["rejected"]
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert ["message rejected: no user"] == [r.getMessage() for r in warnings]

    def test_stats_keys(self, segment_server: ScriptedServer, client: Client) -> None:
        """stats() has every counter of DESIGN.md, plus queued."""
        client.track("u1", "Ev")
        delivered(client, segment_server, 1)
        stats = client.stats()

        counters = (
            "enqueued delivered dropped rejected failed retried batches bytes queued"
            " filtered violations"
        )
        assert set(counters.split()) == set(stats)
        assert (1, 1, 1, 0) == (
            stats["enqueued"],
            stats["delivered"],
            stats["batches"],
            stats["queued"],
        )
        assert len(segment_server.requests[0].body) == stats["bytes"]


class TestShutdown:
    """shutdown delivers what is queued, then calls are refused."""

    def test_shutdown_delivers_and_refuses(
        self, segment_server: ScriptedServer, clients: Clients
    ) -> None:
        """Queued messages arrive at shutdown; later calls raise ClientClosedError."""
        client = clients(flush_interval=30)
        for n in range(5):
            client.track("u1", f"Ev{n}")
        assert client.shutdown(timeout=5)

        assert 5 == len(segment_server.messages)
        assert client.closed
        with pytest.raises(ClientClosedError):
            client.track("u1", "Late")
        with pytest.raises(ClientClosedError):
            client.every(1, lambda: None)
        assert client.shutdown(timeout=1)
        assert client.join()

    def test_context_manager(self, segment_server: ScriptedServer) -> None:
        """Leaving a with block shuts the client down, delivering what is queued."""
        with Client("k", host=segment_server.url, flush_interval=30) as client:
            client.track("u1", "Ev")
        assert (True, 1) == (client.closed, len(segment_server.messages))


class TestShutdownEdges:
    """shutdown() from unusual places and with a zero timeout."""

    def test_shutdown_inside_on_error(
        self,
        segment_server: ScriptedServer,
        clients: Clients,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        """on_error (on a worker thread) may shut its client down: no error, no double report."""
        segment_server.respond(400)
        errors = ErrorLog()
        results: list[bool] = []

        def on_error(error: Exception, messages: list[dict[str, Any]]) -> None:
            results.append(own.shutdown(timeout=5))
            errors(error, messages)

        own = clients(on_error=on_error)
        with caplog.at_level(logging.ERROR, logger="otel_segment"):
            own.track("u1", "Ev")
            assert errors.wait_for_messages(1)
            assert own.shutdown(timeout=5)

        assert [DeliveryError] == [type(error) for error, _ in errors.calls]
        assert [True] == results
        assert "raised" not in caplog.text
        assert 1 == own.stats()["failed"]

    def test_zero_timeout_when_idle(self, segment_server: ScriptedServer, clients: Clients) -> None:
        """With everything delivered, shutdown(0) reports success."""
        client = clients()
        client.track("u1", "Ev")
        assert client.flush(5)

        assert client.shutdown(timeout=0)
        assert 1 == len(segment_server.messages)
