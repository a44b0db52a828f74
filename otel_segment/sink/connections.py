"""The sink's HTTP plumbing: a quiet keep-alive request handler and a threading server."""

from __future__ import annotations

import contextlib
import socket
import ssl
import struct
import sys
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from socketserver import TCPServer
from typing import TYPE_CHECKING, Any, Final

from otel_segment._version import __version__

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

__all__ = ["Handler", "Reply", "Server"]

_RESET_LINGER: Final = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends an RST


@dataclass(frozen=True, slots=True)
class Reply:
    """The headers and body of an answer (its status is the request's)."""

    headers: Mapping[str, str]
    body: bytes


class Handler(BaseHTTPRequestHandler):
    """Reads one request's body and answers it; the sink decides what to answer."""

    protocol_version = "HTTP/1.1"  # keep-alive; every reply carries Content-Length
    server_version = f"otel-segment-sink/{__version__}"
    server: Server

    def setup(self) -> None:
        """Finish a TLS handshake here, in the connection's thread."""
        if isinstance(self.request, ssl.SSLSocket):
            self.request.do_handshake()  # here, in the connection's thread, not in accept()
        super().setup()

    def do_POST(self) -> None:
        """Let the server's sink answer (every method comes here)."""
        self.server.serve_http(self)

    do_GET = do_HEAD = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_POST  # noqa: N815

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet."""

    def read_body(self) -> bytes | None:
        """Read the body by its ``Content-Length``; ``None`` if the framing is unusable."""
        length = self.headers.get("Content-Length", "0")
        if "Transfer-Encoding" in self.headers or not length.isdecimal():
            self.close_connection = True  # the stream can no longer be parsed
            return None
        return self.rfile.read(int(length))

    def reply(self, status: int, headers: Mapping[str, str], body: bytes) -> None:
        """Answer with *status*, *headers* and *body*, keeping the connection open."""
        self.send_response(status)
        for name, value in headers.items():
            if name.lower() != "content-length":
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def abort(self) -> None:
        """Drop the connection with a TCP reset, without answering."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET_LINGER)
        self.rfile.close()  # drops makefile()'s reference, so close() really closes
        self.connection.close()


class Server(ThreadingHTTPServer):
    """A threading server that tracks its connections, so that closing can drop them."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128  # listen() backlog: many clients may connect at once
    timeout = 0  # handle_request() never blocks: the sink's loop has selected already

    def __init__(self, address: tuple[str, int], serve_http: Callable[[Handler], None]) -> None:
        self.serve_http = serve_http
        self.connections: set[socket.socket] = set()
        self.idle = threading.Condition()
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, Handler)

    def server_bind(self) -> None:
        """Bind, without HTTPServer's reverse DNS lookup."""
        TCPServer.server_bind(self)  # skips HTTPServer's reverse DNS lookup (getfqdn)
        self.server_name, self.server_port = str(self.server_address[0]), self.server_address[1]

    def get_request(self) -> tuple[socket.socket, Any]:
        """Accept a connection, with Nagle's algorithm off."""
        connection, address = super().get_request()
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no 40 ms stalls
        return connection, address

    def process_request(self, request: Any, client_address: Any) -> None:
        """Track the connection, then serve it in a thread."""
        with self.idle:
            self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        """Close the connection and stop tracking it."""
        try:
            super().shutdown_request(request)
        finally:
            with self.idle:
                self.connections.discard(request)
                self.idle.notify_all()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Stay quiet about resets and TLS failures; report anything else."""
        if not isinstance(sys.exc_info()[1], OSError):  # resets and TLS failures are normal
            super().handle_error(request, client_address)

    def drain(self, timeout_seconds: float) -> bool:
        """Shut every open connection down and wait until their threads are done."""
        with self.idle:
            for connection in self.connections:
                with contextlib.suppress(OSError):  # the plain method: SSLSocket's drops its state
                    socket.socket.shutdown(connection, socket.SHUT_RDWR)
            return self.idle.wait_for(lambda: not self.connections, timeout_seconds)
