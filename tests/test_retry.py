"""Tests for retry: the RetryPolicy value, and each retry rule against a server."""

from __future__ import annotations

import dataclasses
import email.utils
import itertools
import time
from typing import TYPE_CHECKING, Any

import pytest
from _helpers import FAST_RETRY, Clients, ErrorLog, message_ids, no_wait

from otel_segment import DeliveryError, RetryPolicy
from otel_segment.pipeline.retry import (
    DEFAULT_RETRY_STATUSES,
    exponential_backoff,
    parse_retry_after,
)

if TYPE_CHECKING:
    from _server import ScriptedServer

    from otel_segment import Client


class TestIsRetryable:
    """Segment's rules: connection errors, 408, 410, 429, 460, 5xx but 501 and 505."""

    @pytest.mark.parametrize("status", [None, 408, 410, 429, 460, 500, 502, 503, 504, 599])
    def test_retried(self, status: int | None) -> None:
        """These are retried."""
        assert RetryPolicy().is_retryable(status)

    @pytest.mark.parametrize("status", [400, 401, 403, 404, 413, 422, 501, 505])
    def test_not_retried(self, status: int) -> None:
        """These are not."""
        assert not RetryPolicy().is_retryable(status)

    def test_custom_statuses(self) -> None:
        """retry_statuses replaces the set; no response is always retryable."""
        policy = RetryPolicy(retry_statuses=frozenset({400}))
        assert (True, False, True, frozenset({400})) == (
            policy.is_retryable(400),
            policy.is_retryable(500),
            policy.is_retryable(None),
            policy.retry_statuses,
        )


class TestWaitSeconds:
    """How long to wait before the next attempt, or None to give up."""

    @pytest.mark.parametrize(
        ("retry", "expected"), [(1, 0.0), (2, 0.5), (3, 1.0), (4, 2.0), (9, 60.0), (50, 60.0)]
    )
    def test_default_schedule(self, retry: int, expected: float) -> None:
        """Segment's schedule: at once, then 0.5 s doubling, capped at 60 s."""
        policy = RetryPolicy(jitter=0.0, max_attempts=100, max_elapsed=10_000)
        assert expected == exponential_backoff(retry)
        assert expected == policy.wait_seconds(
            attempts=retry, status=500, retry_after=None, elapsed=0
        )

    def test_jitter_adds_at_most_its_fraction(self) -> None:
        """With jitter 0.5 a 2 s backoff waits between 2 and 3 s."""
        policy = RetryPolicy(backoff=lambda _: 2.0, jitter=0.5)
        waits = [
            policy.wait_seconds(attempts=1, status=None, retry_after=None, elapsed=0)
            for _ in range(200)
        ]
        assert all(w is not None and 2.0 <= w <= 3.0 for w in waits)
        assert len(set(waits)) > 1

    def test_custom_backoff_gets_retry_number(self) -> None:
        """backoff(n) is called with 1 for the first retry, 2 for the second..."""
        policy = RetryPolicy(backoff=lambda n: n * 10.0, jitter=0.0)
        assert [10.0, 20.0] == [
            policy.wait_seconds(attempts=n, status=503, retry_after=None, elapsed=0) for n in (1, 2)
        ]

    @pytest.mark.parametrize(
        ("fields", "expected"),
        [
            ({"attempts": 11, "status": 500}, None),
            ({"attempts": 1, "status": 400}, None),
            ({"attempts": 1, "status": 501}, None),
            ({"attempts": 1, "status": 429, "retry_after": 7.0}, 7.0),
            ({"attempts": 1, "status": 429, "retry_after": 1000.0}, 300.0),
            ({"attempts": 1, "status": 429, "retry_after": -5.0}, 0.0),
            ({"attempts": 1, "status": 400, "retry_after": 1.0}, None),
            ({"attempts": 1, "status": 503, "retry_after": 100.0, "elapsed": 550.0}, None),
            ({"attempts": 1, "status": 503, "retry_after": 50.0, "elapsed": 550.0}, 50.0),
            ({"attempts": 10, "status": None}, 60.0),
        ],
    )
    def test_rules(self, fields: dict[str, Any], expected: float | None) -> None:
        """Attempts, status, Retry-After (capped) and the time budget decide."""
        arguments = {"retry_after": None, "elapsed": 0.0, **fields}
        assert expected == RetryPolicy(jitter=0.0).wait_seconds(**arguments)

    def test_retry_after_cap_is_configurable(self) -> None:
        """max_retry_after caps the server's Retry-After."""
        policy = RetryPolicy(max_retry_after=2.0)
        assert 2.0 == policy.wait_seconds(attempts=1, status=429, retry_after=30.0, elapsed=0)


class TestParseRetryAfter:
    """Retry-After is delta-seconds or an HTTP date."""

    NOW = 1_700_000_000.0

    @pytest.mark.parametrize(
        ("header", "expected"),
        [
            ("1", 1.0),
            ("1.5", 1.5),
            (" 2 ", 2.0),
            ("-3", 0.0),
            ("0", 0.0),
            (email.utils.formatdate(NOW + 10, usegmt=True), 10.0),
            (email.utils.formatdate(NOW + 10), 10.0),
            (email.utils.formatdate(NOW - 100, usegmt=True), 0.0),
            ("nan", None),
            ("inf", None),
            ("soon", None),
            ("Mon, 99 Foo 2024 99:00:00 GMT", None),
            ("", None),
            (None, None),
        ],
    )
    def test_parse(self, header: str | None, expected: float | None) -> None:
        """Seconds, floats, dates (future and past); garbage is None."""
        assert expected == parse_retry_after(header, now=self.NOW)


class TestPolicyValue:
    """RetryPolicy is a frozen, validated value."""

    @pytest.mark.parametrize(
        ("fields", "error", "name"),
        [
            ({"max_attempts": 0}, ValueError, "max_attempts"),
            ({"max_attempts": 1.5}, TypeError, "max_attempts"),
            ({"max_attempts": True}, TypeError, "max_attempts"),
            ({"backoff": 5}, TypeError, "backoff"),
            ({"max_elapsed": 0}, ValueError, "max_elapsed"),
            ({"max_elapsed": float("inf")}, ValueError, "max_elapsed"),
            ({"max_elapsed": "1"}, TypeError, "max_elapsed"),
            ({"jitter": 2}, ValueError, "jitter"),
            ({"jitter": -0.1}, ValueError, "jitter"),
            ({"max_retry_after": -1}, ValueError, "max_retry_after"),
        ],
    )
    def test_validation(self, fields: dict[str, Any], error: type[Exception], name: str) -> None:
        """Each bad field raises, naming it."""
        with pytest.raises(error, match=name):
            RetryPolicy(**fields)

    def test_frozen(self) -> None:
        """Fields cannot be assigned."""
        policy = RetryPolicy()
        with pytest.raises(dataclasses.FrozenInstanceError):
            policy.max_attempts = 3  # type: ignore[misc]

    def test_replace(self) -> None:
        """replace() returns a validated copy; the original is unchanged."""
        policy = RetryPolicy()
        changed = policy.replace(max_attempts=3)
        assert (11, 3, DEFAULT_RETRY_STATUSES) == (
            policy.max_attempts,
            changed.max_attempts,
            changed.retry_statuses,
        )
        assert RetryPolicy() == policy
        with pytest.raises(ValueError, match="max_attempts"):
            policy.replace(max_attempts=0)


@pytest.fixture
def errors() -> ErrorLog:
    """Records on_error calls."""
    return ErrorLog()


@pytest.fixture
def client_defaults() -> dict[str, Any]:
    """Clients send only on flush (one batch)."""
    return {"flush_interval": 30}


@pytest.fixture
def client(clients: Clients, errors: ErrorLog) -> Client:
    """A client that retries without backing off, reporting to *errors*."""
    return clients(on_error=errors, max_in_flight=1)


def _send(client: Client, n: int = 3) -> list[str]:
    """Queue *n* messages and return their ids."""
    return message_ids([client.track("u1", "Ev", {"n": i})[1] for i in range(n)])


def _gaps(server: ScriptedServer) -> list[float]:
    times = [request.received_at for request in server.requests]
    return [later - earlier for earlier, later in itertools.pairwise(times)]


class TestRetriedAgainstServer:
    """Retryable failures are sent again: same messages, counted, with X-Retry-Count."""

    def test_500_burst(self, segment_server: ScriptedServer, client: Client) -> None:
        """Three 500s then a 200: delivered; retried 3; X-Retry-Count 1, 2, 3; same ids."""
        segment_server.respond_many(500, 3)
        ids = _send(client)
        assert client.flush(timeout=5)

        requests = segment_server.requests
        assert [None, "1", "2", "3"] == [r.header("X-Retry-Count") for r in requests]
        assert [ids] * 4 == [message_ids(r.messages) for r in requests]
        assert ids == message_ids(segment_server.messages)
        stats = client.stats()
        assert (3, 3, 0) == (stats["retried"], stats["delivered"], stats["failed"])

    @pytest.mark.parametrize("status", [408, 410, 429, 460, 502, 503, 504])
    def test_retryable_statuses(
        self, segment_server: ScriptedServer, client: Client, status: int
    ) -> None:
        """Each of Segment's retryable statuses is retried."""
        segment_server.respond(status)
        ids = _send(client, 1)
        assert client.flush(timeout=5)
        assert (2, ids) == (len(segment_server.requests), message_ids(segment_server.messages))

    def test_retry_after_seconds(self, segment_server: ScriptedServer, client: Client) -> None:
        """A 429 with Retry-After: 1 is retried about a second later."""
        segment_server.respond(429, {"Retry-After": "1"})
        _send(client, 1)
        assert client.flush(timeout=10)

        [gap] = _gaps(segment_server)
        assert 0.9 <= gap < 5

    def test_retry_after_http_date(self, segment_server: ScriptedServer, client: Client) -> None:
        """A Retry-After HTTP date two seconds ahead delays the retry by more than a second."""
        when = email.utils.formatdate(time.time() + 2, usegmt=True)
        segment_server.respond(503, {"Retry-After": when})
        _send(client, 1)
        assert client.flush(timeout=10)

        [gap] = _gaps(segment_server)
        assert 0.9 <= gap < 5

    def test_retry_after_past_date(self, segment_server: ScriptedServer, client: Client) -> None:
        """A Retry-After in the past means at once."""
        segment_server.respond(429, {"Retry-After": email.utils.formatdate(0, usegmt=True)})
        _send(client, 1)
        assert client.flush(timeout=5)
        assert 2 == len(segment_server.requests)

    def test_connection_reset(self, segment_server: ScriptedServer, client: Client) -> None:
        """A reset connection is retried."""
        segment_server.reset()
        ids = _send(client)
        assert client.flush(timeout=5)
        assert ids == message_ids(segment_server.messages)
        assert 1 == client.stats()["retried"]

    def test_hang_past_timeout(self, segment_server: ScriptedServer, clients: Clients) -> None:
        """A server that does not answer within timeout is given up on and retried."""
        segment_server.hang(30)
        client = clients(timeout=0.3)
        ids = _send(client)
        assert client.flush(timeout=5)

        assert ids == message_ids(segment_server.messages)
        assert [None, "1"] == [r.header("X-Retry-Count") for r in segment_server.requests]
        [gap] = _gaps(segment_server)
        assert gap >= 0.25


class TestNotRetried:
    """Client errors fail at once; on_error gets the messages and the status."""

    @pytest.mark.parametrize("status", [400, 401, 403, 413, 501, 505])
    def test_fails_once(
        self, segment_server: ScriptedServer, client: Client, errors: ErrorLog, status: int
    ) -> None:
        """One request, one on_error call with the same messageIds and a DeliveryError."""
        segment_server.respond(status, body=b"nope")
        ids = _send(client)
        assert client.flush(timeout=5)

        assert 1 == len(segment_server.requests)
        [(error, reported)] = errors.calls
        assert isinstance(error, DeliveryError)
        assert (status, 1) == (error.status, error.attempts)
        assert str(status) in str(error)
        assert ids == message_ids(reported)
        stats = client.stats()
        assert (3, 0, 0) == (stats["failed"], stats["retried"], stats["delivered"])


class TestBudget:
    """Attempts and elapsed time are bounded; the messages are then reported."""

    def test_attempts_exhausted(
        self, segment_server: ScriptedServer, clients: Clients, errors: ErrorLog
    ) -> None:
        """max_attempts=3, all 500: three requests, then failed and on_error."""
        segment_server.respond_many(500, 3)
        client = clients(retry=FAST_RETRY.replace(max_attempts=3), on_error=errors)
        ids = _send(client)
        assert client.flush(timeout=5)

        assert 3 == len(segment_server.requests)
        [(error, reported)] = errors.calls
        assert isinstance(error, DeliveryError)
        assert (500, 3) == (error.status, error.attempts)
        assert ids == message_ids(reported)
        assert (3, 2) == (client.stats()["failed"], client.stats()["retried"])

    def test_max_elapsed(
        self, segment_server: ScriptedServer, clients: Clients, errors: ErrorLog
    ) -> None:
        """A wait that would end past max_elapsed is not started: the batch fails."""
        segment_server.respond_many(500, 5)
        policy = RetryPolicy(backoff=lambda _: 0.5, jitter=0.0, max_elapsed=0.8)
        client = clients(retry=policy, on_error=errors, flush_interval=0.5)
        ids = _send(client, 1)
        assert client.flush(timeout=5)

        assert 2 == len(segment_server.requests)
        [(error, reported)] = errors.calls
        assert isinstance(error, DeliveryError)
        assert (500, 2, ids) == (error.status, error.attempts, message_ids(reported))

    def test_shutdown_interrupts_backoff(
        self, segment_server: ScriptedServer, clients: Clients, errors: ErrorLog
    ) -> None:
        """A long Retry-After wait ends at the shutdown deadline; the batch is reported."""
        segment_server.respond(429, {"Retry-After": "30"})
        client = clients(on_error=errors, retry=RetryPolicy(backoff=no_wait), flush_interval=0.05)
        ids = _send(client, 1)
        assert segment_server.wait_for_requests(1)
        started = time.monotonic()

        assert not client.shutdown(timeout=0.3)
        assert errors.wait_for_messages(1)
        assert time.monotonic() - started < 3
        [(error, reported)] = errors.calls
        assert isinstance(error, DeliveryError)
        assert (429, ids) == (error.status, message_ids(reported))


class TestStats:
    """The counters say what happened on the wire."""

    def test_retry_cut_short_by_shutdown_is_not_counted(
        self, segment_server: ScriptedServer, clients: Clients
    ) -> None:
        """A backoff ended by the shutdown deadline sent nothing again: retried stays 0."""
        segment_server.respond(500)
        errors = ErrorLog()
        policy = RetryPolicy(backoff=lambda _retry: 30.0, jitter=0.0)
        client = clients(retry=policy, on_error=errors, flush_interval=0.5)
        client.track("u1", "Ev")
        assert segment_server.wait_for_requests(1)

        assert client.shutdown(timeout=0.2) is False
        assert errors.wait_for_messages(1)
        assert (1, 0, 1) == (
            len(segment_server.requests),
            client.stats()["retried"],
            client.stats()["failed"],
        )
