"""The :class:`Sink`: a Segment-compatible endpoint on a local port that records requests."""

from __future__ import annotations

import json
import selectors
import socket
import threading
import time
import zlib
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, Final, Self
from urllib.parse import urlsplit

from otel_segment._json import loads
from otel_segment.sink.connections import Handler, Reply, Server
from otel_segment.sink.received import BATCH_PATH, ROUTES, ReceivedRequest, messages_in
from otel_segment.sink.spec import spec_problem

if TYPE_CHECKING:
    import ssl
    from collections.abc import Callable

__all__ = ["Sink"]

_JSON_HEADERS: Final = {"Content-Type": "application/json"}
_CLOSE_TIMEOUT_SECONDS: Final = 5.0


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
        self._server = Server((host, port), self._serve_http)
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

    def _serve_http(self, handler: Handler) -> None:
        raw = handler.read_body()
        if self._latency_seconds and self._closing.wait(self._latency_seconds):
            handler.abort()
            return
        headers = {name.lower(): value for name, value in handler.headers.items()}
        route = urlsplit(handler.path).path
        body, parsed, status, error = raw or b"", None, HTTPStatus.OK, ""
        if route not in ROUTES:
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
        reply = Reply({**_JSON_HEADERS, **extra}, json.dumps(answer).encode())
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
        messages = messages_in(route, parsed)
        if messages is None:
            shape = '{"batch": [objects]}' if route == BATCH_PATH else "an object"
            return parsed, f"expected {shape}"
        for number, message in enumerate(messages, start=1):
            problem = spec_problem(message, self._max_message_bytes)
            if problem:
                return parsed, f"message {number}: {problem}"
        return parsed, ""

    def _answer(self, handler: Handler, request: ReceivedRequest, reply: Reply) -> None:
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


def _ok(status: int) -> bool:
    return HTTPStatus.OK <= status < HTTPStatus.MULTIPLE_CHOICES
