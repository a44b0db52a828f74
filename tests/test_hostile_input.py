"""
Hostile values at every public entry point.

The rule: a direct call (a Client method or a module-level call) raises only ``TypeError``
or ``ValueError`` for bad input, naming the field, and counts the message as rejected;
the logging handler, the span processor and ``@tracked`` never raise into the caller's
code: they count, report and go on. Integers beyond 64 bits keep every digit wherever the
library reads a message back.
"""

from __future__ import annotations

import datetime as dt
import functools
import inspect
import math
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, Final

import pytest
from _helpers import WRITE_KEY, ErrorLog
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.trace import TracerProvider

import otel_segment
from otel_segment import Client, SegmentHandler
from otel_segment.sink import Sink, format_message

if TYPE_CHECKING:
    import logging

    from _server import ScriptedServer


class RaisingStr:
    """A value whose text, comparison and repr all raise (hashable by identity)."""

    def __str__(self) -> str:
        """Raise."""
        raise RuntimeError("no text for you")

    def __repr__(self) -> str:
        """Raise."""
        raise RuntimeError("no repr either")

    def __eq__(self, other: object) -> bool:
        """Raise."""
        raise RuntimeError("no comparing")

    __hash__ = object.__hash__


class RaisingMapping(Mapping[str, Any]):
    """A mapping whose every read raises."""

    def __getitem__(self, key: str) -> Any:
        """Raise."""
        raise LookupError("no items")

    def __iter__(self) -> Iterator[str]:
        """Raise."""
        raise OSError("no keys")

    def __len__(self) -> int:
        """Raise."""
        raise ArithmeticError("no length")


class RaisingOffset(dt.tzinfo):
    """A time zone whose offset raises."""

    def utcoffset(self, when: dt.datetime | None) -> dt.timedelta:
        """Raise."""
        del when
        raise RuntimeError("no offset")

    def tzname(self, when: dt.datetime | None) -> str:
        """A name."""
        del when
        return "broken"

    def dst(self, when: dt.datetime | None) -> dt.timedelta:
        """No daylight saving."""
        del when
        return dt.timedelta(0)


def _cycle() -> dict[str, Any]:
    loop: dict[str, Any] = {}
    loop["self"] = [loop]
    return loop


def _deep(levels: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(levels):
        value = [value]
    return value


HOSTILE: Final = st.one_of(
    st.builds(RaisingStr),
    st.builds(RaisingMapping),
    st.sampled_from([1e12, 1e17, 1e19, -1e19, math.inf, -math.inf, math.nan, 2**70, -(2**70)]),
    st.just(10**5000),  # beyond str()'s 4300-digit limit
    st.builds(dt.datetime, st.just(2024), st.just(1), st.just(1), tzinfo=st.builds(RaisingOffset)),
    st.just("\ud800 lone surrogate"),
    st.builds(_cycle),
    st.builds(_deep, st.just(5000)),
    st.binary(max_size=8),
    st.builds(object),
    st.just(value=True),
)
"""Values a careless or malicious caller may pass anywhere."""

NESTED: Final = st.dictionaries(st.text(max_size=5), HOSTILE, min_size=1, max_size=3)
"""A mapping holding hostile values (for properties, traits, context, integrations)."""

FIELD: Final = st.one_of(HOSTILE, NESTED, st.none(), st.text(max_size=5), st.integers())

CALLS: Final = ("track", "identify", "page", "screen", "group", "alias")

HOSTILE_SETTINGS: Final = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@st.composite
def hostile_call(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    """A call name and keyword arguments, each present one possibly hostile."""
    call = draw(st.sampled_from(CALLS))
    names = list(inspect.signature(getattr(Client, call)).parameters)[1:]
    kwargs = {name: draw(FIELD) for name in names if draw(st.booleans())}
    return call, kwargs


def _counted_call(client: Client, call: Any, kwargs: dict[str, Any]) -> None:
    """Make *call*; bad input raises TypeError/ValueError and is counted as rejected."""
    before = client.stats()["rejected"]
    try:
        accepted, _ = call(**kwargs)
    except (TypeError, ValueError):
        assert before + 1 == client.stats()["rejected"]
    else:
        assert (before if accepted else before + 1) == client.stats()["rejected"]


@pytest.fixture
def offline() -> Iterator[Client]:
    """A client that builds and encodes messages but sends nothing."""
    with Client(WRITE_KEY, send=False) as client:
        yield client


class TestDirectCalls:
    """The six calls raise only TypeError/ValueError, and count each rejection."""

    @HOSTILE_SETTINGS
    @given(hostile_call())
    def test_client_methods(self, offline: Client, drawn: tuple[str, dict[str, Any]]) -> None:
        """Client.track() and the others (and client.message()), with hostile values."""
        call, kwargs = drawn
        _counted_call(offline, getattr(offline, call), kwargs)
        _counted_call(offline, functools.partial(offline.message, call), kwargs)

    @HOSTILE_SETTINGS
    @given(hostile_call())
    def test_module_level(self, drawn: tuple[str, dict[str, Any]]) -> None:
        """otel_segment.track() and the others, through the default client."""
        call, kwargs = drawn
        client = otel_segment.configure(write_key=WRITE_KEY, send=False)
        try:
            _counted_call(client, getattr(otel_segment, call), kwargs)
        finally:
            otel_segment.shutdown()

    @pytest.mark.parametrize("seconds", [1e12, 1e17, 1e19, -1e19, math.inf])
    def test_timestamp_out_of_range(self, offline: Client, seconds: float) -> None:
        """Out-of-range POSIX seconds are a ValueError naming timestamp, counted."""
        with pytest.raises(ValueError, match="timestamp"):
            offline.track("u1", "Ev", timestamp=seconds)

        assert 1 == offline.stats()["rejected"]

    def test_raising_str_in_properties(self, offline: Client) -> None:
        """A property whose __str__ raises is a ValueError naming where it sits, counted."""
        with pytest.raises(ValueError, match=r"properties\.cart\[1\]\.sku: a RaisingStr"):
            offline.track("u1", "Ev", {"cart": [1, {"sku": RaisingStr()}]})

        assert 1 == offline.stats()["rejected"]

    def test_raising_mapping_in_context(self, offline: Client) -> None:
        """A nested mapping in context whose reads raise is a ValueError naming context."""
        with pytest.raises(ValueError, match="context cannot be read"):
            offline.track("u1", "Ev", context={"library": RaisingMapping()})

        assert 1 == offline.stats()["rejected"]

    def test_raising_mapping(self, offline: Client) -> None:
        """A mapping whose reads raise is a ValueError naming the field, counted."""
        with pytest.raises(ValueError, match="traits cannot be read as a mapping"):
            offline.identify("u1", RaisingMapping())

        assert 1 == offline.stats()["rejected"]


@pytest.fixture
def queueing() -> Iterator[Client]:
    """A client that queues (and so counts) what it accepts, sending only at shutdown."""
    with Sink() as sink, Client(WRITE_KEY, host=sink.url, flush_at=10_000, flush_interval=60) as c:
        yield c


def _handled(client: Client) -> int:
    """Messages the client queued or rejected so far."""
    stats = client.stats()
    return stats["enqueued"] + stats["rejected"]


class TestBridges:
    """Logging, spans and decorators never raise into the caller; they count instead."""

    @HOSTILE_SETTINGS
    @given(value=HOSTILE, where=st.sampled_from(["user_id", "timestamp", "properties"]))
    def test_logging_handler(
        self,
        queueing: Client,
        app_logger: logging.Logger,
        capsys: pytest.CaptureFixture[str],
        value: Any,
        where: str,
    ) -> None:
        """A record annotated with a hostile value is queued or counted as rejected."""
        handler = SegmentHandler(client=queueing)
        app_logger.addHandler(handler)
        before = _handled(queueing)
        annotation = {"user_id": "u1", where: {"x": value} if where == "properties" else value}
        try:
            app_logger.warning("Ev", extra={"segment": annotation})
        finally:
            app_logger.removeHandler(handler)

        assert before + 1 == _handled(queueing)
        assert "--- Logging error ---" not in capsys.readouterr().err  # no handleError either

    @HOSTILE_SETTINGS
    @given(value=st.sampled_from([math.inf, math.nan, 2**70, -1e19, "\ud800", "", b"x", 1e19]))
    def test_span_processor(self, queueing: Client, value: Any) -> None:
        """A span with hostile attribute values never raises where it ends, and is counted."""
        provider = TracerProvider(shutdown_on_exit=False)
        provider.add_span_processor(otel_segment.SegmentSpanProcessor(client=queueing))
        tracer = provider.get_tracer(__name__)
        before = _handled(queueing)
        try:
            with tracer.start_as_current_span("checkout") as span:
                span.set_attribute("segment.event", "Order Completed")
                span.set_attribute("segment.user_id", value)
                span.set_attribute("segment.properties.total", value)
        finally:
            provider.shutdown()

        assert before + 1 == _handled(queueing)

    @HOSTILE_SETTINGS
    @given(HOSTILE)
    def test_tracked(self, queueing: Client, value: Any) -> None:
        """@tracked with hostile arguments returns the function's result; the event counts."""

        @queueing.tracked("Report Generated", user_id="user", properties=["report"])
        def generate(user: Any, report: Any) -> str:
            del user, report
            return "done"

        before = _handled(queueing)

        assert "done" == generate(value, value)
        assert before + 1 == _handled(queueing)


class TestBigIntegers:
    """Integers beyond 64 bits keep every digit: on the wire, in on_error, in the sink."""

    BIG: Final = {"big": 2**70, "small": -(2**80), "fits": 2**63 - 1}

    def test_on_the_wire_and_in_the_sink(self) -> None:
        """The sink receives, records and shows the integers digit for digit."""
        with Sink() as sink, Client(WRITE_KEY, host=sink.url) as client:
            client.track("u1", "Ev", self.BIG)
            assert client.flush(5)
            [request] = sink.requests
        [message] = request.messages
        assert self.BIG == message["properties"]
        assert str(2**70) in request.body.decode()
        assert str(2**70) in format_message(message)  # what `otel-segment sink` shows

    def test_on_error(self, segment_server: ScriptedServer) -> None:
        """on_error is handed the integers as ints, not floats."""
        segment_server.respond(400)
        errors = ErrorLog()
        with Client(WRITE_KEY, host=segment_server.url, on_error=errors) as client:
            client.track("u1", "Ev", self.BIG)
            assert errors.wait_for_messages(1)
        [reported] = errors.messages
        assert self.BIG == reported["properties"]
        assert all(type(value) is int for value in reported["properties"].values())
