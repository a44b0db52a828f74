"""Tests for otel_segment.pipeline.reporting: one path for every message not delivered."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import orjson
import pytest
from _helpers import ErrorLog

from otel_segment import DeliveryError, QueueFullError
from otel_segment.pipeline.reporting import KINDS, Reporter, Throttle, log_throttled

if TYPE_CHECKING:
    from _helpers import Clients
    from _server import ScriptedServer


class Clock:
    """A clock a test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        """The current time."""
        return self.now


def lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The messages logged under otel_segment."""
    return [r.getMessage() for r in caplog.records if r.name == "otel_segment"]


class TestThrottle:
    """At most one line per interval, then a count of what was held back."""

    def test_holds_back_then_counts(self, caplog: pytest.LogCaptureFixture) -> None:
        """Within the interval nothing more is logged; the next line says how many were held."""
        clock = Clock()
        throttle = Throttle(10.0, clock)
        with caplog.at_level(logging.WARNING, logger="otel_segment"):
            for number in range(5):
                log_throttled(throttle, logging.WARNING, "lost %s", number)
            clock.now += 10.0
            log_throttled(throttle, logging.WARNING, "lost %s", "late")

        assert ["lost 0", "lost late (and 4 more since the last report)"] == lines(caplog)

    def test_admit_counts_events(self) -> None:
        """admit(count) holds back count events at a time."""
        clock = Clock()
        throttle = Throttle(1.0, clock)
        assert 0 == throttle.admit(3)
        assert throttle.admit(3) is None
        clock.now += 1.0
        assert 3 == throttle.admit()


class TestReporter:
    """Each kind is counted, logged once per interval, and handed to on_error."""

    @pytest.mark.parametrize("kind", ["dropped", "failed"])
    def test_encoded_kinds(self, kind: str, caplog: pytest.LogCaptureFixture) -> None:
        """Encoded messages are counted one by one and decoded for on_error; one line per burst."""
        errors = ErrorLog()
        reporter = Reporter(errors)
        items = [orjson.dumps({"n": n}) for n in range(3)]
        with caplog.at_level(logging.WARNING, logger="otel_segment"):
            for _ in range(4):
                getattr(reporter, kind)(RuntimeError("boom"), items)

        assert 12 == reporter.counts()[kind]
        assert [{"n": 0}, {"n": 1}, {"n": 2}] * 4 == errors.messages
        assert 1 == len(lines(caplog))
        assert "boom" in lines(caplog)[0]

    def test_rejected_without_a_message(self, caplog: pytest.LogCaptureFixture) -> None:
        """A source that could not build a message: counted and logged, nothing for on_error."""
        errors = ErrorLog()
        reporter = Reporter(errors)
        with caplog.at_level(logging.WARNING, logger="otel_segment"):
            reporter.rejected(ValueError("no user"))
            reporter.rejected(ValueError("no user again"))

        assert (2, []) == (reporter.counts()["rejected"], errors.calls)
        assert ["message rejected: no user"] == lines(caplog)

    def test_filtered(self) -> None:
        """A message before_send dropped is counted under filtered; on_error is not told."""
        errors = ErrorLog()
        reporter = Reporter(errors)
        reporter.filtered(ValueError("before_send returned None"))
        assert (1, []) == (reporter.counts()["filtered"], errors.calls)

    def test_violated(self, caplog: pytest.LogCaptureFixture) -> None:
        """A plan violation is counted, handed to on_error and logged once per interval."""
        errors = ErrorLog()
        reporter = Reporter(errors)
        with caplog.at_level(logging.WARNING, logger="otel_segment"):
            for _ in range(3):
                reporter.violated(ValueError("track 'Ev': properties.n: required"), {"n": 1})
        assert (3, [{"n": 1}] * 3) == (reporter.counts()["violations"], errors.messages)
        assert ["track 'Ev': properties.n: required"] == lines(caplog)

    def test_count_only(self, caplog: pytest.LogCaptureFixture) -> None:
        """count() counts without a word (the caller was told: it raised)."""
        reporter = Reporter(None)
        with caplog.at_level(logging.DEBUG, logger="otel_segment"):
            reporter.count("rejected")
        assert ({**dict.fromkeys(KINDS, 0), "rejected": 1}, []) == (
            reporter.counts(),
            lines(caplog),
        )

    def test_on_error_raising_is_logged(self, caplog: pytest.LogCaptureFixture) -> None:
        """An exception from on_error is logged, never raised."""

        def broken(_error: Exception, _messages: list[dict[str, Any]]) -> None:
            raise RuntimeError("callback bug")

        reporter = Reporter(broken)
        reporter.dropped(QueueFullError("full"), [b"{}"])
        assert any("on_error callback raised" in line for line in lines(caplog))


class TestClientReporting:
    """A client's losses all go through its reporter."""

    def test_failures_logged_once_per_interval(
        self, segment_server: ScriptedServer, clients: Clients, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Three batches refused: three on_error calls, three counted, one error line."""
        segment_server.respond_many(400, 3)
        errors = ErrorLog()
        client = clients(on_error=errors, max_in_flight=1)
        for number in range(3):
            client.track("u1", "Ev", {"n": number})
            assert client.flush(5)

        assert 3 == client.stats()["failed"]
        assert [DeliveryError] * 3 == [type(error) for error, _ in errors.calls]
        errors_logged = [r for r in caplog.records if r.levelno == logging.ERROR]
        assert 1 == len(errors_logged)

    def test_stats_have_filtered(self, clients: Clients) -> None:
        """stats() shows filtered, 0 until a before_send hook filters a message."""
        assert 0 == clients().stats()["filtered"]

    def test_reject_is_rate_limited(
        self, clients: Clients, caplog: pytest.LogCaptureFixture
    ) -> None:
        """client.reject() from a source: every one counted, one warning per interval."""
        client = clients()
        for number in range(50):
            client.reject(ValueError(f"bad {number}"))
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert (50, ["message rejected: bad 0"]) == (
            client.stats()["rejected"],
            [r.getMessage() for r in warnings],
        )


class TestSummary:
    """What the rate limit held back is logged at shutdown: nothing is hidden."""

    def test_summarize(self, caplog: pytest.LogCaptureFixture) -> None:
        """One line per kind with what was held back since the last line; then none."""
        reporter = Reporter(None)
        with caplog.at_level(logging.WARNING, logger="otel_segment"):
            for _ in range(3):
                reporter.dropped(QueueFullError("queue full"), [b"{}", b"{}"])
            reporter.summarize()
            reporter.summarize()

        expected = ["queue full", "4 more message(s) dropped since the last report"]
        assert expected == lines(caplog)
