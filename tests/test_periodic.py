"""Tests for periodic through Client.every: schedule, shutdown, errors, cancel."""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

import pytest

from otel_segment import ClientClosedError
from otel_segment.pipeline.periodic import Periodic

if TYPE_CHECKING:
    from _helpers import Clients
    from _server import ScriptedServer

    from otel_segment import Client


class Counter:
    """A callback that counts its calls and lets a test wait for a number of them."""

    def __init__(self, *, fail: bool = False) -> None:
        self._changed = threading.Condition()
        self.calls = 0
        self.threads: set[str] = set()
        self._fail = fail

    def __call__(self) -> None:
        """Count one call (and raise, if asked to)."""
        with self._changed:
            self.calls += 1
            self.threads.add(threading.current_thread().name)
            self._changed.notify_all()
        if self._fail:
            raise RuntimeError("snapshot failed")

    def wait_for(self, n: int, timeout: float = 5.0) -> bool:
        """Block until called at least *n* times."""
        with self._changed:
            return self._changed.wait_for(lambda: self.calls >= n, timeout)


@pytest.fixture
def client(clients: Clients) -> Client:
    """A client of the test server, shut down afterwards."""
    return clients()


class TestEvery:
    """Client.every runs a callback on the client's timer thread."""

    def test_runs_on_schedule(self, client: Client) -> None:
        """A short interval runs the callback repeatedly, on one timer thread."""
        counter = Counter()
        client.every(0.02, counter)
        assert counter.wait_for(3)
        assert {"otel_segment-periodic"} == counter.threads

    def test_one_thread_per_client(self, client: Client) -> None:
        """Several callbacks share one thread."""
        first, second = Counter(), Counter()
        client.every(0.02, first)
        thread = client._periodic._thread
        client.every(0.03, second)
        assert first.wait_for(2)
        assert second.wait_for(2)
        assert thread is client._periodic._thread

    def test_runs_once_at_shutdown(self, client: Client) -> None:
        """At shutdown each callback runs once more (a final snapshot)."""
        counter = Counter()
        client.every(3600, counter)
        assert 0 == counter.calls
        client.shutdown(timeout=5)
        assert 1 == counter.calls
        client.shutdown(timeout=5)
        assert 1 == counter.calls

    def test_snapshot_sent_at_shutdown(
        self, segment_server: ScriptedServer, client: Client
    ) -> None:
        """A message sent by the final run is delivered by the same shutdown."""
        client.every(3600, lambda: client.group("u1", "g1", {"nodes": 3}))
        assert client.shutdown(timeout=5)
        assert ["g1"] == [m["groupId"] for m in segment_server.messages]

    def test_exception_logged_schedule_continues(
        self, client: Client, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A raising callback is logged under otel_segment and keeps running."""
        counter = Counter(fail=True)
        client.every(0.02, counter)
        assert counter.wait_for(3)
        records = [r for r in caplog.records if "periodic callback" in r.getMessage()]
        assert records
        assert {logging.ERROR} == {r.levelno for r in records}
        assert all(r.exc_info and "snapshot failed" in str(r.exc_info[1]) for r in records)

    def test_cancel(self, client: Client) -> None:
        """A cancelled callback runs no more, not even at shutdown."""
        cancelled, witness = Counter(), Counter()
        cancel = client.every(0.02, cancelled)
        assert cancelled.wait_for(1)
        cancel()
        calls = cancelled.calls
        client.every(0.01, witness)
        assert witness.wait_for(6)  # several of the cancelled one's periods
        client.shutdown(timeout=5)
        assert calls == cancelled.calls
        cancel()  # twice is harmless

    @pytest.mark.parametrize(
        ("seconds", "error"), [(0, ValueError), (-1, ValueError), ("1", TypeError)]
    )
    def test_bad_interval(self, client: Client, seconds: object, error: type[Exception]) -> None:
        """The interval must be a positive number of seconds."""
        with pytest.raises(error, match="seconds"):
            client.every(seconds, lambda: None)  # type: ignore[arg-type]

    def test_after_shutdown(self, client: Client) -> None:
        """every() on a shut-down client raises ClientClosedError."""
        client.shutdown(timeout=5)
        with pytest.raises(ClientClosedError):
            client.every(1, lambda: None)


class TestPeriodic:
    """The timer itself."""

    def test_stop_runs_remaining_then_refuses(self) -> None:
        """stop() runs each callback once on the caller's thread; add() then raises."""
        periodic = Periodic()
        counter = Counter()
        periodic.add(3600, counter)
        periodic.stop(timeout=5)
        assert (1, {threading.current_thread().name}) == (counter.calls, counter.threads)
        with pytest.raises(RuntimeError, match="shut down"):
            periodic.add(1, counter)
        periodic.stop(timeout=5)
        assert 1 == counter.calls

    def test_stop_from_a_callback(self) -> None:
        """A callback that stops its own timer does not deadlock."""
        periodic = Periodic()
        done = threading.Event()

        def stop() -> None:
            periodic.stop(timeout=1)
            done.set()

        periodic.add(0.01, stop)
        assert done.wait(5)
