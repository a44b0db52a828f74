"""
A local, Segment-compatible HTTP endpoint that records what it receives.

:class:`Sink` answers ``POST /v1/batch`` and the single-call paths (``/v1/track`` ...)
as the Segment Tracking API does, with its size limits, and keeps every request. It backs
``otel-segment sink``, the demo, the benchmark and the tests. Standard library only.
"""

from __future__ import annotations

import contextlib
import json
import selectors
import socket
import ssl
import struct
import sys
import threading
import time
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from socketserver import TCPServer
from typing import TYPE_CHECKING, Any, Final, Self
from urllib.parse import urlsplit

from otel_segment._json import dumps_compact, loads
from otel_segment._version import __version__

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["NO_RESPONSE", "ReceivedRequest", "Sink", "format_message"]

NO_RESPONSE: Final = 0
"""The :attr:`ReceivedRequest.status` of a request whose connection was reset unanswered."""

_BATCH_PATH: Final = "/v1/batch"
_ROUTES: Final = frozenset(
    {_BATCH_PATH, *(f"/v1/{t}" for t in ("track", "identify", "page", "screen", "group", "alias"))}
)
_JSON_HEADERS: Final = {"Content-Type": "application/json"}
_RESET_LINGER: Final = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends an RST
_CLOSE_TIMEOUT_SECONDS: Final = 5.0
_LINE_CHARS: Final = 160
_VALUE_CHARS: Final = 40
_ENVELOPE: Final = frozenset({"type", "userId", "anonymousId", "messageId", "timestamp"})


@dataclass(frozen=True, slots=True)
class ReceivedRequest:
    """
    One HTTP request as the sink received and answered it.

    Attributes:
        method: HTTP method, e.g. ``"POST"``.
        path: Request target as sent, e.g. ``"/v1/batch"``.
        headers: Header values by lower-cased name; prefer :meth:`header`.
        raw_body: Body bytes as sent on the wire.
        body: Body with ``Content-Encoding: gzip`` undone (cut after the batch limit).
        json: Parsed body, or ``None`` if it was not valid JSON.
        status: HTTP status the sink answered, or :data:`NO_RESPONSE`.
        received_at: ``time.monotonic()`` once the body had been read.
    """

    method: str
    path: str
    headers: Mapping[str, str]
    raw_body: bytes
    body: bytes
    json: Any
    status: int
    received_at: float

    def header(self, name: str) -> str | None:
        """
        Look a header up by name, ignoring case.

        Args:
            name: Header name, e.g. ``"Content-Encoding"``.

        Returns:
            The header's value, or ``None`` if the request did not carry it.
        """
        return self.headers.get(name.lower())

    @property
    def messages(self) -> list[dict[str, Any]]:
        """The Segment messages the body carries (a single call counts as one), else ``[]``."""
        return _messages_in(urlsplit(self.path).path, self.json) or []


@dataclass(frozen=True, slots=True)
class _Reply:
    headers: Mapping[str, str]
    body: bytes


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive; every reply carries Content-Length
    server_version = f"otel-segment-sink/{__version__}"
    server: _Server

    def setup(self) -> None:
        if isinstance(self.request, ssl.SSLSocket):
            self.request.do_handshake()  # here, in the connection's thread, not in accept()
        super().setup()

    def do_POST(self) -> None:
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


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128  # listen() backlog: many clients may connect at once
    timeout = 0  # handle_request() never blocks: the sink's loop has selected already

    def __init__(self, address: tuple[str, int], serve_http: Callable[[_Handler], None]) -> None:
        self.serve_http = serve_http
        self.connections: set[socket.socket] = set()
        self.idle = threading.Condition()
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        TCPServer.server_bind(self)  # skips HTTPServer's reverse DNS lookup (getfqdn)
        self.server_name, self.server_port = str(self.server_address[0]), self.server_address[1]

    def get_request(self) -> tuple[socket.socket, Any]:
        connection, address = super().get_request()
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no 40 ms stalls
        return connection, address

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.idle:
            self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        try:
            super().shutdown_request(request)
        finally:
            with self.idle:
                self.connections.discard(request)
                self.idle.notify_all()

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], OSError):  # resets and TLS failures are normal
            super().handle_error(request, client_address)

    def drain(self, timeout_seconds: float) -> bool:
        """Shut every open connection down and wait until their threads are done."""
        with self.idle:
            for connection in self.connections:
                with contextlib.suppress(OSError):  # the plain method: SSLSocket's drops its state
                    socket.socket.shutdown(connection, socket.SHUT_RDWR)
            return self.idle.wait_for(lambda: not self.connections, timeout_seconds)


class Sink:
    """
    A Segment-compatible endpoint on a local port that records every request.

    Example::

        with Sink() as sink:
            client = otel_segment.Client(write_key="k", host=sink.url)
            ...
            assert sink.wait_for_messages(1)
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        ssl_context: ssl.SSLContext | None = None,
        latency_seconds: float = 0.0,
        on_batch: Callable[[ReceivedRequest], None] | None = None,
        max_batch_bytes: int = 500 * 1024,
        max_message_bytes: int = 32 * 1024,
        keep: bool = True,
    ) -> None:
        """
        Bind the listening socket; :meth:`start` serves it.

        Args:
            host: Address to listen on.
            port: Port to listen on; ``0`` picks a free one (see :attr:`url`).
            ssl_context: Serve HTTPS with this server-side context (it may require client
                certificates).
            latency_seconds: Wait this long before answering each request, to emulate a
                distant endpoint.
            on_batch: Called with each accepted request, in the connection's thread.
            max_batch_bytes: Largest accepted (decompressed) request body.
            max_message_bytes: Largest accepted message, as compact JSON.
            keep: Keep requests and messages in :attr:`requests` / :attr:`messages`;
                ``False`` only counts them (:attr:`message_count`), for long runs.

        Raises:
            ValueError: If a limit is not positive or *latency_seconds* is negative.
            OSError: If the address cannot be bound.
        """
        if latency_seconds < 0:
            raise ValueError(f"latency_seconds must be >= 0, got {latency_seconds!r}")
        if max_batch_bytes <= 0 or max_message_bytes <= 0:
            raise ValueError(f"limits must be > 0, got {max_batch_bytes!r}, {max_message_bytes!r}")
        self._latency_seconds = latency_seconds
        self._on_batch = on_batch
        self._max_batch_bytes = max_batch_bytes
        self._max_message_bytes = max_message_bytes
        self._changed = threading.Condition()
        self._requests: list[ReceivedRequest] = []
        self._messages: list[dict[str, Any]] = []
        self._keep = keep
        self._request_count = 0
        self._message_count = 0
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None
        self._wake: tuple[socket.socket, socket.socket] | None = None
        self._server = _Server((host, port), self._serve_http)
        if ssl_context is not None:
            self._server.socket = ssl_context.wrap_socket(
                self._server.socket, server_side=True, do_handshake_on_connect=False
            )
        bound_host, bound_port = self._server.socket.getsockname()[:2]
        bound_host = f"[{bound_host}]" if ":" in bound_host else bound_host
        self._url = f"{'https' if ssl_context else 'http'}://{bound_host}:{bound_port}"

    @property
    def url(self) -> str:
        """Base URL to give a client as its host, e.g. ``"http://127.0.0.1:54321"``."""
        return self._url

    @property
    def requests(self) -> list[ReceivedRequest]:
        """A copy of every request received so far, accepted or not, in arrival order."""
        with self._changed:
            return list(self._requests)

    @property
    def message_count(self) -> int:
        """How many messages were accepted (counted even when not kept)."""
        with self._changed:
            return self._message_count

    @property
    def messages(self) -> list[dict[str, Any]]:
        """A copy of the messages of all accepted requests, in arrival order."""
        with self._changed:
            return list(self._messages)

    def start(self) -> Self:
        """
        Serve in a daemon thread until :meth:`close`.

        Returns:
            This sink.

        Raises:
            RuntimeError: If the sink was closed.
        """
        with self._changed:
            if self._closing.is_set():
                raise RuntimeError("the sink is closed")
            if self._thread is not None:
                return self
            self._wake = socket.socketpair()
            self._thread = threading.Thread(
                target=self._serve, args=(self._wake[0],), name=f"sink {self.url}", daemon=True
            )
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving, drop open connections and join the threads; safe to call twice."""
        with self._changed:
            if self._closing.is_set():
                return
            self._closing.set()
        if self._thread is not None and self._wake is not None:
            self._wake[1].send(b"\0")
            self._thread.join()
        self._server.server_close()
        self._server.drain(_CLOSE_TIMEOUT_SECONDS)
        for end in self._wake or ():
            end.close()

    def __enter__(self) -> Self:
        """Start serving; see :meth:`start`."""
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        """Close; see :meth:`close`."""
        self.close()

    def wait_for_messages(self, n: int, timeout: float = 5.0) -> bool:
        """
        Block until at least *n* messages were accepted.

        Args:
            n: Number of messages to wait for.
            timeout: Seconds to wait at most.

        Returns:
            ``True`` if they arrived in time, else ``False``.
        """
        with self._changed:
            return self._changed.wait_for(lambda: self._message_count >= n, timeout)

    def wait_for_requests(self, n: int, timeout: float = 5.0) -> bool:
        """
        Block until at least *n* requests were received.

        Args:
            n: Number of requests to wait for.
            timeout: Seconds to wait at most.

        Returns:
            ``True`` if they arrived in time, else ``False``.
        """
        with self._changed:
            return self._changed.wait_for(lambda: self._request_count >= n, timeout)

    def clear(self) -> None:
        """Forget the requests and messages received so far."""
        with self._changed:
            self._requests.clear()
            self._messages.clear()
            self._request_count = self._message_count = 0

    def _serve(self, wake: socket.socket) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self._server.socket, selectors.EVENT_READ)
            selector.register(wake, selectors.EVENT_READ)
            while not self._closing.is_set():
                if any(key.fileobj is self._server.socket for key, _ in selector.select()):
                    self._server.handle_request()

    def _serve_http(self, handler: _Handler) -> None:
        raw = handler.read_body()
        if self._latency_seconds and self._closing.wait(self._latency_seconds):
            handler.abort()
            return
        headers = {name.lower(): value for name, value in handler.headers.items()}
        route = urlsplit(handler.path).path
        body, parsed, status, error = raw or b"", None, HTTPStatus.OK, ""
        if route not in _ROUTES:
            status, error = HTTPStatus.NOT_FOUND, f"no such endpoint: {route}"
        elif handler.command != "POST":
            status, error = HTTPStatus.METHOD_NOT_ALLOWED, f"{handler.command} is not allowed"
        elif raw is None:
            status, error = HTTPStatus.LENGTH_REQUIRED, "send the body with a valid Content-Length"
        else:
            body, error = self._decode(headers.get("content-encoding", "identity"), raw)
            parsed, error = (None, error) if error else self._parse(route, body)
            status = HTTPStatus.BAD_REQUEST if error else HTTPStatus.OK
        request = ReceivedRequest(
            method=handler.command,
            path=handler.path,
            headers=headers,
            raw_body=raw or b"",
            body=body,
            json=parsed,
            status=int(status),
            received_at=time.monotonic(),
        )
        answer = {"success": False, "error": error} if error else {"success": True}
        extra = {"Allow": "POST"} if status == HTTPStatus.METHOD_NOT_ALLOWED else {}
        reply = _Reply({**_JSON_HEADERS, **extra}, json.dumps(answer).encode())
        self._answer(handler, request, reply)

    def _decode(self, encoding: str, raw: bytes) -> tuple[bytes, str]:
        """Undo gzip and check the size limit: ``(body, error)``."""
        body, encoding = raw, encoding.strip().lower()
        if encoding == "gzip":
            decoder = zlib.decompressobj(wbits=zlib.MAX_WBITS | 16)
            try:  # stop after the limit: a small gzip bomb must not fill the memory
                body = decoder.decompress(raw, self._max_batch_bytes + 1)
            except zlib.error as exc:
                return raw, f"the body is not valid gzip: {exc}"
            if not decoder.eof and len(body) <= self._max_batch_bytes:
                return body, "the gzip body is truncated"
        elif encoding != "identity":
            return raw, f"unsupported Content-Encoding: {encoding}"
        if len(body) > self._max_batch_bytes:
            return body, f"the body exceeds {self._max_batch_bytes} bytes"
        return body, ""

    def _parse(self, route: str, body: bytes) -> tuple[Any, str]:
        """Parse a body and check its shape and message sizes: ``(json, error)``."""
        try:
            parsed = loads(body)  # strict: NaN and Infinity are refused; long ints kept
        except ValueError as exc:
            return None, f"the body is not valid JSON: {exc}"
        messages = _messages_in(route, parsed)
        if messages is None:
            shape = '{"batch": [objects]}' if route == _BATCH_PATH else "an object"
            return parsed, f"expected {shape}"
        for message in messages:
            size = len(dumps_compact(message))
            if size > self._max_message_bytes:
                return parsed, f"a message of {size} bytes exceeds {self._max_message_bytes}"
        return parsed, ""

    def _answer(self, handler: _Handler, request: ReceivedRequest, reply: _Reply) -> None:
        """Record *request* and send *reply*: the hook a scripted test server overrides."""
        self._record(request, delivered=_ok(request.status))
        handler.reply(request.status, reply.headers, reply.body)

    def _record(self, request: ReceivedRequest, *, delivered: bool, new: bool = True) -> None:
        """Keep a *new* request; if *delivered*, keep its messages and call ``on_batch``."""
        with self._changed:
            if new:
                self._request_count += 1
                if self._keep:
                    self._requests.append(request)
            if delivered:
                self._message_count += len(request.messages)
                if self._keep:
                    self._messages.extend(request.messages)
            self._changed.notify_all()
        if delivered and self._on_batch is not None:
            self._on_batch(request)


def format_message(msg: Mapping[str, Any]) -> str:
    """
    Render one message as a single readable line.

    Args:
        msg: A Segment Spec message, e.g. one of :attr:`Sink.messages`.

    Returns:
        The type, the user and anonymous ids and the type's key fields, such as
        ``track     user=u1 anon=-  "Order Completed" {total=42.5, currency=EUR}``;
        long values are cut so the line stays within 160 characters.
    """
    kind = str(msg.get("type", "?"))
    match kind:
        case "track":
            fields = [_quoted(msg.get("event")), _mapping(msg.get("properties"))]
        case "identify":
            fields = [_mapping(msg.get("traits"))]
        case "page" | "screen":
            fields = [_short(msg.get("category")), _quoted(msg.get("name"))]
            fields.append(_mapping(msg.get("properties")))
        case "group":
            fields = [f"group={_short(msg.get('groupId'), '-')}", _mapping(msg.get("traits"))]
        case "alias":
            fields = [f"{_short(msg.get('previousId'), '-')} -> {_short(msg.get('userId'), '-')}"]
        case _:
            fields = [_mapping({k: v for k, v in msg.items() if k not in _ENVELOPE})]
    user, anonymous = _short(msg.get("userId"), "-"), _short(msg.get("anonymousId"), "-")
    line = f"{kind:<9} user={user} anon={anonymous}  {' '.join(f for f in fields if f)}".rstrip()
    return line if len(line) <= _LINE_CHARS else f"{line[: _LINE_CHARS - 3]}..."


def _short(value: object, missing: str = "") -> str:
    if value is None:
        return missing
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    text = text.replace("\r", "\\r").replace("\n", "\\n")
    return text if len(text) <= _VALUE_CHARS else f"{text[: _VALUE_CHARS - 3]}..."


def _quoted(value: object) -> str:
    return "" if value is None else f'"{_short(value)}"'


def _mapping(value: object) -> str:
    if not isinstance(value, Mapping) or not value:
        return ""
    return "{" + ", ".join(f"{key}={_short(item, 'null')}" for key, item in value.items()) + "}"


def _messages_in(route: str, parsed: Any) -> list[dict[str, Any]] | None:
    """The messages a parsed body carries on *route*, or ``None`` if it has the wrong shape."""
    if not isinstance(parsed, dict) or route not in _ROUTES:
        return None
    if route == _BATCH_PATH:
        batch = parsed.get("batch")
        ok = isinstance(batch, list) and all(isinstance(m, dict) for m in batch)
        return batch if ok else None
    return [parsed if "type" in parsed else {"type": route.rsplit("/", 1)[1], **parsed}]


def _ok(status: int) -> bool:
    return HTTPStatus.OK <= status < HTTPStatus.MULTIPLE_CHOICES
