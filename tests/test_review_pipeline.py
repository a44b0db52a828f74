"""Review tests of the delivery pipeline: edge cases of delivery, shutdown, exit and secrecy."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
from typing import TYPE_CHECKING, Any

from _helpers import WRITE_KEY, Clients, ErrorLog

from otel_segment import DeliveryError, RetryPolicy

if TYPE_CHECKING:
    import pytest
    from _server import ScriptedServer


class TestWriteKey:
    """Any write key works, and none leaks through what the server answers."""

    def test_percent_in_write_key(self, segment_server: ScriptedServer, clients: Clients) -> None:
        """A key holding "%" (bytes formatting's marker) still yields a valid body."""
        client = clients(write_key="wk%s%d-100%")
        client.track("u1", "Ev")

        assert client.flush(5)
        assert ["Ev"] == [m["event"] for m in segment_server.messages]
        assert "wk%s%d-100%" == segment_server.requests[0].json["writeKey"]

    def test_key_echoed_by_the_server_is_not_logged(
        self,
        segment_server: ScriptedServer,
        clients: Clients,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        """A server quoting the key in its error body does not get it into logs or on_error."""
        segment_server.respond(401, body=f"invalid write key {WRITE_KEY}".encode())
        errors = ErrorLog()
        client = clients(on_error=errors)
        with caplog.at_level(logging.DEBUG, logger="otel_segment"):
            client.track("u1", "Ev")
            assert errors.wait_for_messages(1)

        assert WRITE_KEY not in caplog.text
        assert WRITE_KEY not in str(errors.calls[0][0])


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
            results.append(client.shutdown(timeout=5))
            errors(error, messages)

        client = clients(on_error=on_error)
        with caplog.at_level(logging.ERROR, logger="otel_segment"):
            client.track("u1", "Ev")
            assert errors.wait_for_messages(1)
            assert client.shutdown(timeout=5)

        assert [DeliveryError] == [type(error) for error, _ in errors.calls]
        assert [True] == results
        assert "raised" not in caplog.text
        assert 1 == client.stats()["failed"]

    def test_zero_timeout_when_idle(self, segment_server: ScriptedServer, clients: Clients) -> None:
        """With everything delivered, shutdown(0) reports success."""
        client = clients()
        client.track("u1", "Ev")
        assert client.flush(5)

        assert client.shutdown(timeout=0)
        assert 1 == len(segment_server.messages)


EXIT_AFTER_CLIENT_DROPPED = """
    import gc
    import sys
    import otel_segment

    def send():
        client = otel_segment.Client("k", host=sys.argv[1], flush_interval=30, flush_at=1000)
        client.track("u1", "Dropped")

    send()
    gc.collect()
"""


class TestExitEdges:
    """At interpreter exit, queued messages are drained."""

    def test_client_no_longer_referenced(self, segment_server: ScriptedServer) -> None:
        """A client the program dropped without shutdown still delivers at exit."""
        done = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(EXIT_AFTER_CLIENT_DROPPED), segment_server.url],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )

        assert 0 == done.returncode, done.stderr
        assert segment_server.wait_for_messages(1, timeout=5)


class TestStats:
    """The counters say what happened on the wire."""

    def test_retry_cut_short_by_shutdown_is_not_counted(
        self, segment_server: ScriptedServer, clients: Clients
    ) -> None:
        """A backoff ended by the shutdown deadline sent nothing again: retried stays 0."""
        segment_server.respond(500)
        errors = ErrorLog()
        policy = RetryPolicy(backoff=lambda _retry: 30.0, jitter=0.0)
        client = clients(retry=policy, on_error=errors)
        client.track("u1", "Ev")
        assert segment_server.wait_for_requests(1)

        assert client.shutdown(timeout=0.2) is False
        assert errors.wait_for_messages(1)
        assert (1, 0, 1) == (
            len(segment_server.requests),
            client.stats()["retried"],
            client.stats()["failed"],
        )
