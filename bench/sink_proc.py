"""
The benchmark's sink, in a process of its own so that its CPU counts against neither client.

Usage: ``python bench/sink_proc.py [--latency SECONDS] [--accept-only]``. Starts an
:class:`otel_segment.sink.Sink` and a small control endpoint, prints one JSON line
``{"url": ..., "control": ...}`` on stdout, and serves until stdin closes.

``--accept-only`` serves a plain ``http.server`` instead, which reads each body and answers
200 (after ``--latency``) without parsing it (messages are counted by their
``"messageId"`` keys): a sink that costs this machine next to no CPU, as a remote
endpoint would. The Sink parses and checks
every message, which on a 2-core machine keeps one core busy through a burst's delivery.

The control endpoint (plain HTTP on 127.0.0.1):

- ``GET /count``: ``{"count", "requests", "largest_batch", "cpu_seconds"}`` since the last
  reset (``cpu_seconds``: the sink process's own CPU time);
- ``GET /wait?n=N&timeout=T``: blocks until ``count >= N`` (or *T* seconds), then as ``/count``
  plus ``"reached"``;
- ``POST /reset``: zero the counters.

Accepted messages are counted in the sink's ``on_batch`` callback, which also clears the
sink's own record of them, so memory stays flat however many messages arrive.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from otel_segment.sink import Sink

if TYPE_CHECKING:
    from collections.abc import Iterator

    from otel_segment.sink import ReceivedRequest


class Counter:
    """Messages and requests accepted by the sink since the last reset."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self.count = 0
        self.requests = 0
        self.largest_batch = 0
        self.cpu_at_reset = time.process_time()
        self.sink: Sink | None = None

    def on_batch(self, request: ReceivedRequest) -> None:
        """Count one accepted request; drop the sink's copy of it."""
        self.add(len(request.messages))
        if self.sink is not None:
            self.sink.clear()

    def add(self, size: int) -> None:
        """Count one accepted request of *size* messages."""
        with self._changed:
            self.count += size
            self.requests += 1
            self.largest_batch = max(self.largest_batch, size)
            self._changed.notify_all()

    def snapshot(self) -> dict[str, Any]:
        """The counters as a JSON-able dict."""
        with self._changed:
            return {
                "count": self.count,
                "requests": self.requests,
                "largest_batch": self.largest_batch,
                "cpu_seconds": time.process_time() - self.cpu_at_reset,
            }

    def wait(self, n: int, timeout: float) -> dict[str, Any]:
        """Block until *n* messages arrived or *timeout* passed."""
        with self._changed:
            reached = self._changed.wait_for(lambda: self.count >= n, timeout)
        return {**self.snapshot(), "reached": reached}

    def reset(self) -> dict[str, Any]:
        """Zero the counters."""
        with self._changed:
            self.count = self.requests = self.largest_batch = 0
            self.cpu_at_reset = time.process_time()
        return self.snapshot()


def _control_handler(counter: Counter) -> type[BaseHTTPRequestHandler]:
    class Control(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            if parts.path == "/wait":
                query = parse_qs(parts.query)
                n = int(query["n"][0])
                timeout = float(query.get("timeout", ["60"])[0])
                self._answer(counter.wait(n, timeout))
            else:
                self._answer(counter.snapshot())

        def do_POST(self) -> None:
            self._answer(counter.reset())

        def _answer(self, payload: dict[str, Any]) -> None:
            body = json.dumps(payload).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            """Stay quiet."""

    return Control


def _accepting_handler(counter: Counter, latency: float) -> type[BaseHTTPRequestHandler]:
    class Accept(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            counter.add(body.count(b'"messageId"'))
            if latency:
                time.sleep(latency)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "16")
            self.end_headers()
            self.wfile.write(b'{"success":true}')

        def log_message(self, format: str, *args: Any) -> None:
            """Stay quiet."""

    return Accept


@contextlib.contextmanager
def _serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """Serve *handler* on 127.0.0.1 from a thread of its own; its URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def main() -> None:
    """Serve a sink and its control endpoint until stdin closes."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each answer")
    parser.add_argument("--accept-only", action="store_true", help="answer without parsing")
    args = parser.parse_args()
    counter = Counter()
    with contextlib.ExitStack() as stack:
        control = stack.enter_context(_serving(_control_handler(counter)))
        if args.accept_only:
            url = stack.enter_context(_serving(_accepting_handler(counter, args.latency)))
        else:
            sink = stack.enter_context(
                Sink(latency_seconds=args.latency, on_batch=counter.on_batch)
            )
            counter.sink, url = sink, sink.url
        print(json.dumps({"url": url, "control": control}), flush=True)
        sys.stdin.read()  # until the orchestrator closes our stdin (or dies)


if __name__ == "__main__":
    main()
