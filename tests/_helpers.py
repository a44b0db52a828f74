"""
Helpers shared by the tests.

A client factory, an ``on_error`` recorder, and :func:`delivered` / :func:`fields` to
read what a server received.
"""

from __future__ import annotations

import re
import socket
import threading
from typing import TYPE_CHECKING, Any, Final

from otel_segment import Client, RetryPolicy
from otel_segment.cli import main

if TYPE_CHECKING:
    import pathlib
    from collections.abc import Iterable, Mapping

    from _server import ScriptedServer

WRITE_KEY: Final = "wk-Secret-7f3a9c"
"""A write key distinctive enough to search logs and reprs for."""

TIMESTAMP_RE: Final = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d")
"""ISO-8601 with milliseconds and an offset, as every message carries."""


def no_wait(retry: int) -> float:
    """Back off zero seconds before every retry (keeps retry tests fast)."""
    del retry
    return 0.0


FAST_RETRY: Final = RetryPolicy(backoff=no_wait, jitter=0.0)
"""Segment's retry rules without waiting between attempts."""


class ErrorLog:
    """An ``on_error`` callback that records every call and lets a test wait for them."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self.calls: list[tuple[Exception, list[dict[str, Any]]]] = []

    def __call__(self, error: Exception, messages: list[dict[str, Any]]) -> None:
        """Record one report."""
        with self._changed:
            self.calls.append((error, messages))
            self._changed.notify_all()

    @property
    def messages(self) -> list[dict[str, Any]]:
        """Every message reported so far."""
        with self._changed:
            return [message for _, batch in self.calls for message in batch]

    def wait_for_messages(self, n: int, timeout: float = 5.0) -> bool:
        """Block until at least *n* messages were reported."""
        with self._changed:
            return self._changed.wait_for(
                lambda: sum(len(batch) for _, batch in self.calls) >= n, timeout
            )


class Clients:
    """Builds clients for one server, with fast test defaults, and shuts them all down."""

    def __init__(self, server: ScriptedServer, **defaults: Any) -> None:
        self.server = server
        self._defaults = defaults
        self._clients: list[Client] = []

    def __call__(self, **options: Any) -> Client:
        """A client of *server* with *options* over the test defaults."""
        settings: dict[str, Any] = {
            "write_key": WRITE_KEY,
            "host": self.server.url,
            "flush_interval": 0.05,
            "retry": FAST_RETRY,
            "timeout": 5.0,
        }
        settings.update(self._defaults)
        settings.update(options)
        client = Client(**settings)
        self._clients.append(client)
        return client

    def close(self) -> None:
        """Shut every client down (a second shutdown is harmless)."""
        for client in self._clients:
            client.shutdown(timeout=10.0)


def message_ids(messages: Iterable[Mapping[str, object]]) -> list[str]:
    """The ``messageId`` of each message, in order."""
    return [str(message["messageId"]) for message in messages]


def delivered(client: Client, server: ScriptedServer, n: int = 0) -> list[dict[str, Any]]:
    """Flush *client*; the messages *server* accepted, once at least *n* arrived."""
    assert client.flush(5), "the client did not flush within 5 s"
    assert server.wait_for_messages(n, 5), f"{len(server.messages)} of {n} messages arrived"
    return server.messages


def fields(message: Mapping[str, Any], *keys: str) -> tuple[Any, ...]:
    """The values of *keys* in *message*, in order (to compare with an expected tuple)."""
    return tuple(message[key] for key in keys)


def run_import(server: ScriptedServer, log: pathlib.Path, *options: str) -> int:
    """Run ``otel-segment import [OPTIONS] LOG`` against *server*; the exit status."""
    return main(["import", *options, str(log), "--host", server.url, "--write-key", "k"])


def closed_port() -> int:
    """A local port nothing listens on (a server that is down)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port
