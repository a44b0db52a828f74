"""Tests for otel_segment.pipeline.identify: every source takes the identity in force."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import pytest
from _helpers import delivered
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor

import otel_segment
from otel_segment import (
    Client,
    SegmentHandler,
    SegmentLogExporter,
    SegmentSpanProcessor,
    annotate,
    identity,
    set_identity,
    snapshot,
)
from otel_segment.pipeline import identify

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from _server import ScriptedServer
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Tracer


CALLS: list[tuple[str, Callable[[Client], Any]]] = [
    ("track", lambda c: c.track(event="Viewed Pricing")),
    ("identify", lambda c: c.identify(traits={"plan": "pro"})),
    ("page", lambda c: c.page(name="Pricing")),
    ("screen", lambda c: c.screen(name="Home")),
    ("group", lambda c: c.group(group_id="g1")),
    ("message", lambda c: c.message("track", event="Viewed Pricing")),
]


@pytest.fixture
def local() -> Iterator[Client]:
    """A client that builds and returns messages without sending them."""
    client = Client("test-key", send=False)
    yield client
    client.shutdown()


@pytest.fixture
def span_tracer(provider: TracerProvider, client: Client) -> Tracer:
    """A tracer whose spans go through a SegmentSpanProcessor on *client*."""
    provider.add_span_processor(SegmentSpanProcessor(client=client))
    return provider.get_tracer("test")


@pytest.fixture
def handler_logger(app_logger: logging.Logger, client: Client) -> logging.Logger:
    """``app_logger`` with a SegmentHandler on *client*."""
    app_logger.addHandler(SegmentHandler(client=client))
    return app_logger


class TestDirectCalls:
    """A call that gives no ids takes the scope's; the scope's context merges in."""

    @pytest.mark.parametrize("call", [call for _, call in CALLS], ids=[n for n, _ in CALLS])
    def test_calls_take_the_scope_ids(self, local: Client, call: Callable[[Client], Any]) -> None:
        """Each call (and message()) made with no ids carries the scope's two ids."""
        with identity(user_id="u1", anonymous_id="a1"):
            accepted, message = call(local)
        assert (True, "u1", "a1") == (accepted, message["userId"], message["anonymousId"])

    def test_alias_takes_the_scope_user(self, local: Client) -> None:
        """alias(previous_id) in a scope: the scope's user is the one aliased to."""
        with identity(user_id="u1", anonymous_id="a1"):
            _, message = local.alias(previous_id="a1")
        assert ("a1", "u1") == (message["previousId"], message["userId"])

    @given(
        call=st.tuples(st.sampled_from([None, "", "cu"]), st.sampled_from([None, "", "ca"])),
        scope=st.tuples(st.sampled_from([None, "su"]), st.sampled_from([None, "sa"])),
    )
    def test_ids_the_call_gives_win(
        self, call: tuple[str | None, str | None], scope: tuple[str | None, str | None]
    ) -> None:
        """A call giving either id keeps its own pair; one giving none takes the scope's."""
        with Client("test-key", send=False) as client, identity(*scope):
            try:
                _, message = client.track(call[0], "E", anonymous_id=call[1])
            except ValueError:
                assert not any(call)
                assert not any(scope)
                return
        expected = (call[0] or None, call[1] or None) if any(call) else scope
        assert expected == (message["userId"], message["anonymousId"])

    def test_context_merges_between_default_and_call(self) -> None:
        """default_context < the scope's context < the call's own context."""
        default = {"ip": "default", "locale": "de-DE", "page": {"title": "T"}}
        with (
            Client("test-key", send=False, default_context=default) as client,
            identity(user_id="u1", context={"ip": "scope", "page": {"path": "/p"}}),
        ):
            _, message = client.track(event="E", context={"page": {"url": "http://x/p"}})
        context = message["context"]
        assert ("scope", "de-DE") == (context["ip"], context["locale"])
        assert {"title": "T", "path": "/p", "url": "http://x/p"} == context["page"]

    def test_context_applies_to_calls_with_their_own_ids(self, local: Client) -> None:
        """The request's context is the request's, whoever the message is about."""
        with identity(user_id="u1", context={"ip": "203.0.113.9"}):
            _, message = local.track("u9", "E")
        assert ("u9", "203.0.113.9") == (message["userId"], message["context"]["ip"])

    def test_set_identity_reaches_later_calls(self, local: Client) -> None:
        """A login mid-request: the next call carries the new user."""
        with identity(anonymous_id="a1"):
            _, before = local.track(event="E")
            set_identity(user_id="u2")
            _, after = local.track(event="E")
        assert [(None, "a1"), ("u2", "a1")] == [
            (m["userId"], m["anonymousId"]) for m in (before, after)
        ]

    def test_no_identity_anywhere_is_still_an_error(self, local: Client) -> None:
        """Outside every scope and span, a track with no ids raises and is counted."""
        with pytest.raises(ValueError, match="user_id or an anonymous_id"):
            local.track(event="E")
        assert 1 == local.stats()["rejected"]

    def test_module_level_call(self, local: Client, monkeypatch: pytest.MonkeyPatch) -> None:
        """otel_segment.track(event=...) inside a scope."""
        monkeypatch.setattr(otel_segment, "default_client", local)
        with identity(user_id="u1"):
            _, message = otel_segment.track(event="E")
        assert "u1" == message["userId"]


class TestSources:
    """Log records, OTel log records, spans and decorators take the scope's identity."""

    def test_log_record(
        self, handler_logger: logging.Logger, client: Client, segment_server: ScriptedServer
    ) -> None:
        """extra=annotate() (and extra={"segment": {}}) inside a scope: the scope's ids."""
        with identity(user_id="u1", context={"ip": "203.0.113.9"}):
            handler_logger.info("Signed Up", extra=annotate())
            handler_logger.info("Upgraded", extra={"segment": {}})
            handler_logger.info("Other", extra=annotate(user_id="u9"))
        messages = delivered(client, segment_server, 3)
        assert [("Signed Up", "u1"), ("Upgraded", "u1"), ("Other", "u9")] == [
            (m["event"], m["userId"]) for m in messages
        ]
        assert {"203.0.113.9"} == {m["context"]["ip"] for m in messages}

    def test_spans(
        self, span_tracer: Tracer, client: Client, segment_server: ScriptedServer
    ) -> None:
        """A marked span ended in a scope takes its ids; a span's own user wins."""
        with identity(user_id="u1"):
            with span_tracer.start_as_current_span("a", attributes={"segment.event": "A"}):
                pass
            attributes = {"segment.event": "B", "enduser.id": "u9"}
            with span_tracer.start_as_current_span("b", attributes=attributes):
                pass
        messages = delivered(client, segment_server, 2)
        assert [("A", "u1"), ("B", "u9")] == [(m["event"], m["userId"]) for m in messages]

    def test_otel_log_records(self, client: Client, segment_server: ScriptedServer) -> None:
        """An OTel log record with an event name, emitted in a scope, carries its ids."""
        provider = LoggerProvider(shutdown_on_exit=False)
        provider.add_log_record_processor(
            SimpleLogRecordProcessor(SegmentLogExporter(client=client))
        )
        try:
            with identity(anonymous_id="a1"):
                provider.get_logger("test").emit(event_name="Invoice Paid")
        finally:
            provider.shutdown()
        [message] = delivered(client, segment_server, 1)
        assert (None, "a1") == (message["userId"], message["anonymousId"])

    def test_tracked_without_ids(self, client: Client, segment_server: ScriptedServer) -> None:
        """@tracked with no id paths takes the ids in force at the call."""

        @client.tracked("Report Generated")
        def generate() -> str:
            return "done"

        with identity(user_id="u1"):
            assert "done" == generate()
        [message] = delivered(client, segment_server, 1)
        assert ("Report Generated", "u1") == (message["event"], message["userId"])

    def test_tracked_without_any_identity_is_rejected(
        self, client: Client, caplog: pytest.LogCaptureFixture
    ) -> None:
        """No ids anywhere: the call still returns, the event is counted as rejected."""

        @client.tracked("Report Generated")
        def generate() -> str:
            return "done"

        with caplog.at_level(logging.WARNING, "otel_segment"):
            assert "done" == generate()
        assert 1 == client.stats()["rejected"]
        assert "needs a user_id or an anonymous_id" in caplog.text

    def test_snapshot_ignores_the_request_identity(self, segment_server: ScriptedServer) -> None:
        """A snapshot reported (at shutdown) inside a scope takes nothing from it."""
        client = Client("test-key", host=segment_server.url)

        @snapshot(3600, group_id="install-42", client=client)
        def state() -> dict[str, int]:
            return {"nodes": 12}

        with identity(user_id="u1", context={"ip": "203.0.113.9"}):
            client.shutdown(5)
        assert segment_server.wait_for_messages(1, 5)
        [message] = segment_server.messages
        assert (None, "install-42") == (message["userId"], message["anonymousId"])
        assert "ip" not in message["context"]


class TestSpanIdentity:
    """A span's identity attributes give that identity to what happens inside it."""

    def test_child_span_record_and_call(
        self,
        span_tracer: Tracer,
        handler_logger: logging.Logger,
        client: Client,
        segment_server: ScriptedServer,
    ) -> None:
        """Inside enduser.id='u-42': a marked child, a record and a call (two levels down)."""
        with (
            span_tracer.start_as_current_span("request", attributes={"enduser.id": "u-42"}),
            span_tracer.start_as_current_span("child", attributes={"segment.event": "Child"}),
            span_tracer.start_as_current_span("grandchild"),
        ):
            handler_logger.info("Record", extra={"segment": {}})
            client.track(event="Call")
        messages = delivered(client, segment_server, 3)
        assert {("Record", "u-42"), ("Call", "u-42"), ("Child", "u-42")} == {
            (m["event"], m["userId"]) for m in messages
        }
        assert {} == identify.INHERITED  # nothing kept once the spans ended

    def test_spans_that_never_end_are_bounded(
        self, span_tracer: Tracer, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Children of an identified span left open: INHERITED keeps its newest, bounded."""
        monkeypatch.setattr(identify, "INHERITED_MAX", 100)
        try:
            with span_tracer.start_as_current_span("request", attributes={"enduser.id": "u-42"}):
                children = [span_tracer.start_span("never ended") for _ in range(150)]
            assert [c.get_span_context().span_id for c in children[50:]] == list(identify.INHERITED)
        finally:
            identify.INHERITED.clear()

    def test_attribute_set_after_start(self, span_tracer: Tracer, local: Client) -> None:
        """enduser.id set on the current span in the handler applies from then on."""
        with span_tracer.start_as_current_span("request") as span:
            span.set_attribute("enduser.pseudo.id", "p1")
            _, message = local.track(event="E")
        assert (None, "p1") == (message["userId"], message["anonymousId"])

    def test_scope_and_span_together(self, span_tracer: Tracer, local: Client) -> None:
        """The scope's user wins; a scope with only an anonymous id takes the span's user."""
        attributes = {"enduser.id": "u-42", "session.id": "s1"}
        with span_tracer.start_as_current_span("request", attributes=attributes):
            with identity(user_id="u1"):
                _, user_scope = local.track(event="E")
            with identity(anonymous_id="a1"):
                _, anonymous_scope = local.track(event="E")
        assert [("u1", None), ("u-42", "a1")] == [
            (m["userId"], m["anonymousId"]) for m in (user_scope, anonymous_scope)
        ]


SERVICE: Final = str(Path(__file__).with_name("_baggage_service.py"))


def _run_services(sink: ScriptedServer, from_baggage: bool) -> str:
    """Service B (serving once) and service A (calling it); what B answered A."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "SEGMENT_"))}
    env["PYTHONPATH"] = os.pathsep.join(sys.path)
    switch = "on" if from_baggage else "off"
    with subprocess.Popen(
        [sys.executable, SERVICE, "serve", sink.url, switch],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    ) as service_b:
        assert service_b.stdout is not None
        port = service_b.stdout.readline().strip()
        service_a = subprocess.run(
            [sys.executable, SERVICE, "call", f"http://127.0.0.1:{port}/checkout", "u-77"],
            capture_output=True,
            text=True,
            env=env,
            timeout=30,
            check=True,
        )
        assert 0 == service_b.wait(30)
    return service_a.stdout.strip()


class TestBaggageAcrossServices:
    """identity(baggage=True) upstream + identity_from_baggage=True downstream, two processes."""

    def test_user_travels_in_baggage(self, segment_server: ScriptedServer) -> None:
        """A's scope user reaches B through the W3C baggage header; B's track carries it."""
        assert "tracked" == _run_services(segment_server, from_baggage=True)
        assert segment_server.wait_for_messages(1, 5)
        [message] = segment_server.messages
        assert ("Checkout Viewed", "u-77") == (message["event"], message["userId"])

    def test_off_by_default(self, segment_server: ScriptedServer) -> None:
        """Without identity_from_baggage, B does not read Baggage: the track is rejected."""
        assert "rejected" == _run_services(segment_server, from_baggage=False)
        assert [] == segment_server.messages
