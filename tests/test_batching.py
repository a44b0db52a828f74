"""Tests for batching: triggers, byte limits, overflow, sync mode, shutdown."""

from __future__ import annotations

import logging
import random
import threading
import time
from typing import Any

import pytest
from _helpers import Clients, ErrorLog, message_ids
from _server import ScriptedServer
from _strategies import json_trees
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from otel_segment import (
    DeliveryError,
    MessageTooLargeError,
    QueueFullError,
    ShutdownError,
)
from otel_segment.pipeline.backlogs import Batch
from otel_segment.pipeline.batching import in_pipeline
from otel_segment.pipeline.inflight import OVERLAP_AFTER_SECONDS, InFlight


class TestTriggers:
    """A batch goes when flush_at messages wait, when flush_interval passed, or on flush()."""

    def test_flush_at(self, segment_server: ScriptedServer, clients: Clients) -> None:
        """flush_at messages go at once, long before flush_interval; fewer wait."""
        client = clients(flush_at=5, flush_interval=30)
        for n in range(4):
            client.track("u1", f"Ev{n}")
        assert not segment_server.wait_for_requests(1, timeout=0.2)

        client.track("u1", "Ev4")
        assert segment_server.wait_for_messages(5, timeout=5)
        assert 1 == len(segment_server.requests)

    def test_flush_interval(self, segment_server: ScriptedServer, clients: Clients) -> None:
        """With flush_at far away, a message still leaves after flush_interval."""
        client = clients(flush_at=1000, flush_interval=0.1)
        started = time.monotonic()
        client.track("u1", "Ev")

        assert segment_server.wait_for_messages(1, timeout=5)
        assert segment_server.requests[0].received_at - started >= 0.09

    def test_flush_delivers_everything(
        self, segment_server: ScriptedServer, clients: Clients
    ) -> None:
        """flush() returns True once every message queued before it arrived."""
        client = clients(flush_at=50, flush_interval=30)
        sent = [client.track("u1", "Ev", {"n": n})[1] for n in range(260)]

        assert client.flush(timeout=5)
        assert sorted(message_ids(sent)) == sorted(message_ids(segment_server.messages))
        assert (260, 0) == (client.stats()["delivered"], client.stats()["queued"])
        assert client.flush(timeout=5)

    def test_flush_timeout_against_hanging_server(
        self, segment_server: ScriptedServer, clients: Clients
    ) -> None:
        """flush(timeout) returns False at the deadline while the server hangs."""
        segment_server.hang(30)
        client = clients(timeout=1.0)
        client.track("u1", "Ev")
        started = time.monotonic()

        assert not client.flush(timeout=0.2)
        assert time.monotonic() - started < 0.9
        assert client.flush(timeout=5)  # the attempt times out, the retry is answered
        assert 1 == len(segment_server.messages)


def _sized(client_kind: str, size: int) -> dict[str, Any]:
    return {"kind": client_kind, "pad": "é" * (size // 2)}


class TestByteLimit:
    """No request body exceeds max_batch_bytes; every message arrives once."""

    @pytest.mark.parametrize("gzip", [False, True])
    def test_split_varied_sizes(
        self, segment_server: ScriptedServer, clients: Clients, *, gzip: bool
    ) -> None:
        """Messages of varied sizes are split into several bodies within the limit."""
        client = clients(
            max_batch_bytes=2_000, max_message_bytes=1_000, flush_interval=30, gzip=gzip
        )
        rng = random.Random(7)  # noqa: S311 - test data
        sent = [client.track("u1", "Ev", _sized("t", rng.randrange(0, 600)))[1] for _ in range(80)]

        assert client.flush(timeout=5)
        bodies = [request.body for request in segment_server.requests]
        assert len(bodies) > 5
        assert [] == [len(body) for body in bodies if len(body) > 2_000]
        assert sorted(message_ids(sent)) == sorted(message_ids(segment_server.messages))
        assert sum(len(body) for body in bodies) == client.stats()["bytes"]

    def test_backlog_fills_batches(self, segment_server: ScriptedServer, clients: Clients) -> None:
        """A backlog goes out in batches filled close to the byte limit."""
        client = clients(
            max_batch_bytes=20_000, max_message_bytes=1_000, flush_at=1000, flush_interval=30
        )
        for _ in range(200):
            client.track("u1", "Ev", _sized("t", 400))
        assert client.flush(timeout=5)

        sizes = [len(request.body) for request in segment_server.requests]
        assert max(sizes) <= 20_000
        assert sorted(sizes)[1] > 20_000 - 1_000  # all full but one (two workers: any order)

    @settings(
        max_examples=25,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(trees=st.lists(json_trees(), min_size=1, max_size=20))
    def test_property_any_values(
        self, segment_server: ScriptedServer, trees: list[dict[str, Any]]
    ) -> None:
        """Any convertible values: bodies stay within the limit; accepted messages arrive."""
        segment_server.clear()
        factory = Clients(segment_server)
        try:
            client = factory(max_batch_bytes=4_000, max_message_bytes=2_000, flush_interval=30)
            results = [client.track("u1", "Ev", tree) for tree in trees]
            assert client.flush(timeout=5)
        finally:
            factory.close()

        accepted = [message for ok, message in results if ok]
        assert (len(trees) - len(accepted)) == client.stats()["rejected"]
        assert [] == [r.body for r in segment_server.requests if len(r.body) > 4_000]
        assert sorted(message_ids(accepted)) == sorted(message_ids(segment_server.messages))


class TestInFlight:
    """A distant endpoint does not cap throughput: requests overlap."""

    def test_requests_overlap(self) -> None:
        """With 0.3 s latency and max_in_flight=5, a backlog's batches go together, just apart."""
        with ScriptedServer(latency_seconds=0.3) as server:
            factory = Clients(server)
            try:
                client = factory(max_batch_bytes=2_000, max_message_bytes=1_000, max_in_flight=5)
                for _ in range(12):
                    client.track("u1", "Ev", _sized("t", 500))
                started = time.monotonic()
                assert client.flush(timeout=10)
                elapsed = time.monotonic() - started
            finally:
                factory.close()
            arrivals = sorted(request.received_at for request in server.requests)

        assert 12 == client.stats()["delivered"]
        assert len(arrivals) >= 6
        # the fifth starts four spacings after the first; half of that at the server
        # leaves room for the requests' own jitter (all at once: under 3 ms)
        assert 2 * OVERLAP_AFTER_SECONDS <= arrivals[4] - arrivals[0] < 0.25
        assert elapsed < 0.3 * len(arrivals) * 0.75

    @given(st.lists(st.floats(0, 1), min_size=1, max_size=5))
    def test_overlap_wait(self, elapsed: list[float]) -> None:
        """Nothing under way: at once; else the latest batch's start + the rule, until settled."""
        ledger = InFlight()
        assert ledger.overlap_wait(0.0) <= 0
        now = 100.0
        starts = []
        for step in elapsed:
            now += step
            starts.append(ledger.add(Batch([b"{}"]), now))
            assert ledger.overlap_wait(now) == pytest.approx(OVERLAP_AFTER_SECONDS)
            assert ledger.overlap_wait(now + OVERLAP_AFTER_SECONDS) <= 1e-9
        for start in starts:
            ledger.done(start)
        assert ledger.overlap_wait(now) <= 0


class TestOversize:
    """A message over max_message_bytes is refused at the call; the client keeps working."""

    def test_rejected(self, segment_server: ScriptedServer, clients: Clients) -> None:
        """(False, msg), counted rejected, on_error told with MessageTooLargeError."""
        errors = ErrorLog()
        client = clients(max_message_bytes=1_000, on_error=errors)
        ok, message = client.track("u1", "Big", {"pad": "x" * 2_000})
        client.track("u1", "Small")
        assert client.flush(timeout=5)

        assert (False, "Big") == (ok, message["event"])
        [(error, reported)] = errors.calls
        assert isinstance(error, MessageTooLargeError)
        assert "max_message_bytes" in str(error)
        assert [message["messageId"]] == message_ids(reported)
        assert (1, 1) == (client.stats()["rejected"], client.stats()["delivered"])
        assert ["Small"] == [m["event"] for m in segment_server.messages]


class TestQueueFull:
    """A full queue drops at once, counts, reports, and warns once."""

    def test_overflow(
        self,
        segment_server: ScriptedServer,
        clients: Clients,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        """1000 calls against a stuck pipeline: 5 queue, the rest drop without blocking."""
        errors = ErrorLog()
        segment_server.hang(1.5)  # then answers: the drops happen in this window
        client = clients(max_queue_size=5, max_in_flight=1, on_error=errors)
        client.track("u1", "First")
        assert segment_server.wait_for_requests(1)

        started = time.monotonic()
        results = [client.track("u1", "Ev", {"n": n}) for n in range(1000)]
        elapsed = time.monotonic() - started

        assert elapsed < 2.0
        assert [True] * 5 + [False] * 995 == [ok for ok, _ in results]
        assert (6, 995) == (client.stats()["enqueued"], client.stats()["dropped"])
        assert 995 == len(errors.calls)
        assert {QueueFullError} == {type(error) for error, _ in errors.calls}
        dropped = [message for _, message in results[5:]]
        assert message_ids(dropped) == message_ids(errors.messages)
        warnings = [
            r for r in caplog.records if r.name == "otel_segment" and r.levelno == logging.WARNING
        ]
        assert 1 == len(warnings)
        assert "queue full" in warnings[0].getMessage()

        assert client.flush(timeout=5)
        assert 6 == len(segment_server.messages)


class TestSyncMode:
    """sync_mode delivers on the caller's thread, with retries."""

    def test_delivered_before_return(
        self, segment_server: ScriptedServer, clients: Clients
    ) -> None:
        """The server has the message when the call returns."""
        client = clients(sync_mode=True)
        ok, message = client.track("u1", "Ev")
        assert (True, message_ids([message])) == (ok, message_ids(segment_server.messages))

    def test_retries(self, segment_server: ScriptedServer, clients: Clients) -> None:
        """A 500 then a 200: the call returns True after two requests."""
        segment_server.respond(500)
        client = clients(sync_mode=True)
        ok, _ = client.track("u1", "Ev")
        assert (True, 2, 1) == (ok, len(segment_server.requests), client.stats()["retried"])

    def test_failure(self, segment_server: ScriptedServer, clients: Clients) -> None:
        """A 400: (False, msg), on_error told on the caller's thread, inside the pipeline."""
        segment_server.respond(400)
        errors = ErrorLog()
        inside: list[bool] = []

        def on_error(error: Exception, messages: list[dict[str, Any]]) -> None:
            inside.append(in_pipeline())
            errors(error, messages)

        client = clients(sync_mode=True, on_error=on_error)
        ok, message = client.track("u1", "Ev")

        assert (False, [True]) == (ok, inside)
        [(error, reported)] = errors.calls
        assert isinstance(error, DeliveryError)
        assert (400, message_ids([message])) == (error.status, message_ids(reported))
        assert not in_pipeline()


class TestRecursion:
    """Code called from the pipeline cannot deadlock it."""

    def test_flush_inside_on_error(self, segment_server: ScriptedServer, clients: Clients) -> None:
        """flush() inside on_error (a worker thread) returns False at once."""
        segment_server.respond(400)
        seen: list[tuple[bool, bool]] = []
        errors = ErrorLog()

        def on_error(error: Exception, messages: list[dict[str, Any]]) -> None:
            seen.append((in_pipeline(), client.flush(timeout=5)))
            errors(error, messages)

        client = clients(on_error=on_error)
        client.track("u1", "Ev")
        assert errors.wait_for_messages(1)
        assert [(True, False)] == seen


class TestShutdown:
    """shutdown(timeout) gives up at the deadline and reports what was not delivered."""

    def test_shutdown_timeout_hanging_server(
        self, segment_server: ScriptedServer, clients: Clients
    ) -> None:
        """False within about the timeout; on_error gets every undelivered message."""
        segment_server.hang(30)
        errors = ErrorLog()
        client = clients(max_in_flight=1, timeout=0.5, on_error=errors)
        sent = [client.track("u1", "InFlight")[1]]
        assert segment_server.wait_for_requests(1)
        sent += [client.track("u1", f"Queued{n}")[1] for n in range(2)]

        started = time.monotonic()
        assert not client.shutdown(timeout=0.2)
        assert time.monotonic() - started < 1.5

        assert errors.wait_for_messages(3)
        assert sorted(message_ids(sent)) == sorted(message_ids(errors.messages))
        kinds = {type(error) for error, _ in errors.calls}
        assert kinds <= {ShutdownError, DeliveryError}
        assert 3 == client.stats()["failed"]
        assert [] == segment_server.messages

    def test_in_flight_at_the_deadline_is_reported_once(
        self, segment_server: ScriptedServer, clients: Clients
    ) -> None:
        """
        A batch still being sent at the deadline is failed as of unknown delivery.

        It is counted and handed to on_error before shutdown() returns; when its answer
        comes later (here a 200 after 1 s), nothing is counted again.
        """
        segment_server.hang(1.0)
        errors = ErrorLog()
        client = clients(max_in_flight=1, flush_at=300, flush_interval=30, on_error=errors)
        sent = [client.track("u1", "Ev", {"n": n})[1] for n in range(300)]
        assert segment_server.wait_for_requests(1)

        assert not client.shutdown(timeout=0.2)
        reported = (client.stats()["failed"], message_ids(errors.messages))
        assert (300, message_ids(sent)) == reported
        [(error, _)] = errors.calls
        assert isinstance(error, ShutdownError)
        assert "delivery is unknown" in str(error)

        assert segment_server.wait_for_messages(300)  # the late answer
        for worker in threading.enumerate():
            if worker.name.startswith("otel_segment-worker"):
                worker.join(5)
        stats = client.stats()
        assert (300, 0, 1) == (stats["failed"], stats["delivered"], len(errors.calls))

    def test_calls_after_processor_closed_drop(self, clients: Clients) -> None:
        """A message reaching a closed pipeline is dropped and reported as ShutdownError."""
        errors = ErrorLog()
        client = clients(on_error=errors)
        client._processor.shutdown()
        assert not client._processor.enqueue(b"{}")
        assert [ShutdownError] == [type(error) for error, _ in errors.calls]
