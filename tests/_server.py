"""A :class:`~otel_segment.sink.Sink` whose next answers a test scripts, for delivery tests."""

from __future__ import annotations

import collections
import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Self

from otel_segment.sink import NO_RESPONSE, Sink

if TYPE_CHECKING:
    from collections.abc import Mapping

    from otel_segment.sink import ReceivedRequest
    from otel_segment.sink.connections import Handler, Reply


@dataclass(frozen=True, slots=True)
class _Respond:
    status: int
    headers: Mapping[str, str]
    body: bytes


@dataclass(frozen=True, slots=True)
class _Reset:
    delivered: bool


@dataclass(frozen=True, slots=True)
class _Hang:
    seconds: float


class ScriptedServer(Sink):
    """
    A sink that answers the next requests as scripted, first in first out.

    When the script is empty it answers as a :class:`Sink` does (200 for a valid batch).
    Only batches answered with a 2xx, or reset by :meth:`accept_then_reset`, count as
    delivered: their messages go to :attr:`messages`. Every request goes to :attr:`requests`,
    with the status it got (``NO_RESPONSE`` for a reset).
    """

    def __init__(self, **options: Any) -> None:
        """Bind like a :class:`Sink`; *options* are its keyword arguments."""
        super().__init__(**options)
        self._script: collections.deque[_Respond | _Reset | _Hang] = collections.deque()

    def respond(
        self, status: int, headers: Mapping[str, str] | None = None, body: bytes = b""
    ) -> Self:
        """
        Answer the next unscripted request with *status*, *headers* and *body*.

        Returns:
            This server, so that calls chain: ``server.respond(429).respond(200)``.
        """
        if not 100 <= status <= 599:
            raise ValueError(f"status must be in 100..599, got {status!r}")
        self._script.append(_Respond(status, dict(headers or {}), body))
        return self

    def respond_many(
        self, status: int, n: int, headers: Mapping[str, str] | None = None, body: bytes = b""
    ) -> Self:
        """Answer the next *n* unscripted requests with *status*; see :meth:`respond`."""
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n!r}")
        for _ in range(n):
            self.respond(status, headers, body)
        return self

    def reset(self) -> Self:
        """Read the next request, then reset the connection (RST) without answering."""
        self._script.append(_Reset(delivered=False))
        return self

    def accept_then_reset(self) -> Self:
        """Deliver the next batch, then reset the connection: the client never learns it."""
        self._script.append(_Reset(delivered=True))
        return self

    def hang(self, seconds: float) -> Self:
        """
        Read the next request and answer it only after *seconds* (or drop it at close).

        The request is recorded at once; its messages only count as delivered once answered.
        """
        if seconds < 0:
            raise ValueError(f"seconds must be >= 0, got {seconds!r}")
        self._script.append(_Hang(seconds))
        return self

    @property
    def pending(self) -> int:
        """How many scripted answers are still unused."""
        return len(self._script)

    def _answer(self, handler: Handler, request: ReceivedRequest, reply: Reply) -> None:
        try:
            action = self._script.popleft()
        except IndexError:
            super()._answer(handler, request, reply)
            return
        ok = 200 <= request.status < 300
        match action:
            case _Respond(status, headers, body):
                scripted = dataclasses.replace(request, status=status)
                self._record(scripted, delivered=200 <= status < 300)
                handler.reply(status, headers, body)
            case _Reset(delivered):
                unanswered = dataclasses.replace(request, status=NO_RESPONSE)
                self._record(unanswered, delivered=delivered and ok)
                handler.abort()
            case _Hang(seconds):
                self._record(request, delivered=False)
                if self._closing.wait(seconds):
                    handler.abort()
                    return
                self._record(request, delivered=ok, new=False)
                handler.reply(request.status, reply.headers, reply.body)


@dataclass(frozen=True, slots=True)
class TlsServer:
    """
    A :class:`ScriptedServer` on HTTPS that requires a client certificate.

    Attributes:
        server: The running server; its ``url`` starts with ``https://``.
        ca_bundle_path: PEM file of the CA that signed both certificates (``verify=``).
        client_cert_paths: ``(cert_path, key_path)`` of a valid client certificate (``cert=``).
    """

    server: ScriptedServer
    ca_bundle_path: str
    client_cert_paths: tuple[str, str]
