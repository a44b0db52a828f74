"""
OTLP/HTTP as an ASGI application, served by uvicorn (which parses the HTTP).

``POST /v1/logs`` and ``/v1/traces`` take protobuf or OTLP JSON, optionally gzipped, and
answer in the request's own media type as the OTLP specification says: 200 with an
export response (naming rejected records, if any), 400 undecodable, 401 without the
token, 404/405 elsewhere, 408 a body sent too slowly, 413 too large (before or after
inflating), 415 an unsupported media type or encoding, 429 when the queue cannot take
the whole request and 503 while draining, with ``Retry-After``; error bodies are a
``google.rpc.Status``. ``GET /healthz`` (alive), ``/readyz`` (503 while draining) and
``/metrics`` (Prometheus text) need no token.

Memory stays bounded whatever the load: a body is refused past ``max_body_bytes``
(declared, read or inflated; a quarter of it for OTLP JSON, which takes far more memory
once parsed), bodies being read share a budget of ``body_budget_bytes`` (past it,
503), and one that trickles in slower than ``body_timeout_seconds`` is cut off.
"""

from __future__ import annotations

import asyncio
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, Final

import orjson
from google.protobuf import json_format
from google.rpc.code_pb2 import Code
from google.rpc.status_pb2 import Status

from otel_segment.gateway.decoding import (
    LOGS,
    PROTOBUF,
    TRACES,
    BodyError,
    decode,
    inflate,
    media_type,
)
from otel_segment.gateway.intake import ACCEPTED, FULL
from otel_segment.gateway.metrics import CONTENT_TYPE
from otel_segment.gateway.service import export_response

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, MutableMapping

    from google.protobuf.message import Message

    from otel_segment.gateway.decoding import Signal
    from otel_segment.gateway.intake import Outcome
    from otel_segment.gateway.service import ExportService

    Scope = MutableMapping[str, Any]
    Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
    Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

__all__ = ["HttpApp"]

_SIGNALS: Final = {LOGS.path: LOGS, TRACES.path: TRACES}
_GRPC_CODE: Final = {
    400: Code.INVALID_ARGUMENT,
    401: Code.UNAUTHENTICATED,
    404: Code.NOT_FOUND,
    405: Code.UNIMPLEMENTED,
    408: Code.DEADLINE_EXCEEDED,
    413: Code.RESOURCE_EXHAUSTED,
    415: Code.INVALID_ARGUMENT,
    429: Code.RESOURCE_EXHAUSTED,
    503: Code.UNAVAILABLE,
}
JSON_SHARE: Final = 4
"""OTLP JSON bodies may be this many times smaller than protobuf ones (``max_body_bytes``)."""
_BAD_INPUT: Final = {
    400: "undecodable",
    408: "slow_body",
    413: "too_large",
    415: "unsupported_type",
}


class _Refused(Exception):  # noqa: N818 - a control-flow signal, not an error
    """Answer the current request with this status and message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class HttpApp:
    """
    The ASGI application of the OTLP/HTTP front end.

    Args:
        service: The export call and the counters.
        max_body_bytes: Largest body, before and after inflating.
        body_budget_bytes: Bytes of bodies being read at once, over all connections.
        body_timeout_seconds: Time a body may take to arrive.
    """

    def __init__(
        self,
        service: ExportService,
        *,
        max_body_bytes: int,
        body_budget_bytes: int,
        body_timeout_seconds: float,
    ) -> None:
        self._service = service
        self._max_body = max_body_bytes
        # Parsed OTLP JSON takes about ten times its size in memory (protobuf: three):
        # a quarter of the limit keeps one request of either kind within the same bound.
        self._max_json = max(1, max_body_bytes // JSON_SHARE)
        self._budget_left = body_budget_bytes
        self._body_timeout = body_timeout_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one HTTP request (uvicorn runs with lifespan off: nothing else comes)."""
        path, method = scope["path"], scope["method"]
        signal = _SIGNALS.get(path)
        if signal is not None:
            if method != "POST":
                await _plain(send, 405, b"use POST\n", [(b"allow", b"POST")])
                return
            await self._export(scope, receive, send, signal)
        elif path in {"/healthz", "/readyz", "/metrics"} and method in {"GET", "HEAD"}:
            await self._probe(send, path)
        else:
            await _plain(send, 404, b"not found\n")

    async def _probe(self, send: Send, path: str) -> None:
        if path == "/metrics":
            body = self._service.metrics.exposition()
            await _reply(send, 200, CONTENT_TYPE, body)
        elif path == "/readyz" and self._service.draining:
            await _plain(send, 503, b"draining\n")
        else:
            await _plain(send, 200, b"ok\n")

    async def _export(self, scope: Scope, receive: Receive, send: Send, signal: Signal) -> None:
        headers = _headers(scope)
        kind = PROTOBUF
        service = self._service
        metrics = service.metrics
        try:
            if not service.authorized(headers.get("authorization")):
                metrics.bad_input.labels("unauthorized").inc()
                raise _Refused(401, "missing or wrong bearer token")  # noqa: TRY301
            kind = media_type(headers.get("content-type"))
            limit = self._max_body if kind == PROTOBUF else self._max_json
            # No local keeps the body or the request: an export waiting for the spool
            # holds neither.
            outcome = await service.export(
                signal,
                decode(
                    signal,
                    inflate(
                        await self._body(receive, headers.get("content-length"), limit),
                        headers.get("content-encoding"),
                        limit,
                    ),
                    kind,
                ),
            )
            status, answer = _answer(signal, outcome)
        except BodyError as error:
            metrics.bad_input.labels(_BAD_INPUT.get(error.status, "other")).inc()
            status, answer = error.status, _status(error.status, str(error))
        except _Refused as refused:
            status, answer = refused.status, _status(refused.status, str(refused))
        metrics.requests.labels("http", signal.name, str(status)).inc()
        extra = []
        if status in {429, 503}:
            extra.append((b"retry-after", str(service.retry_after_seconds).encode()))
        if status == HTTPStatus.UNAUTHORIZED:
            extra.append((b"www-authenticate", b"Bearer"))
        await _reply(send, status, kind, _encoded(answer, kind), extra)

    async def _body(self, receive: Receive, declared: str | None, limit: int) -> bytes:
        """The whole body, within *limit* bytes, the shared budget and the time limit."""
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise BodyError(413, f"the body is larger than {limit} bytes")
        chunks: list[bytes] = []
        size = 0
        try:
            async with asyncio.timeout(self._body_timeout):
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        raise _Refused(400, "the client went away")
                    chunk: bytes = message.get("body", b"")
                    size += len(chunk)
                    if size > limit:
                        raise BodyError(413, f"the body is larger than {limit} bytes")
                    if len(chunk) > self._budget_left:
                        raise _Refused(503, "too many request bodies being read; retry later")
                    self._budget_left -= len(chunk)
                    chunks.append(chunk)
                    if not message.get("more_body", False):
                        return b"".join(chunks)
        except TimeoutError:
            raise BodyError(408, f"the body took longer than {self._body_timeout} s") from None
        finally:
            self._budget_left += sum(map(len, chunks))


def _answer(signal: Signal, outcome: Outcome) -> tuple[int, Message]:
    if outcome.verdict == ACCEPTED:
        return 200, export_response(signal, outcome)
    if outcome.verdict == FULL:
        return 429, _status(429, "the gateway's queue is full; retry later")
    return 503, _status(503, "the gateway is not taking requests now; retry later")


def _headers(scope: Scope) -> dict[str, str]:
    return {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}


def _status(http_status: int, message: str) -> Status:
    return Status(code=_GRPC_CODE.get(http_status, Code.UNKNOWN), message=message)


def _encoded(message: Message, kind: str) -> bytes:
    if kind == PROTOBUF:
        return message.SerializeToString()
    return orjson.dumps(json_format.MessageToDict(message))


async def _reply(
    send: Send,
    status: int,
    content_type: str,
    body: bytes,
    extra: list[tuple[bytes, bytes]] | None = None,
) -> None:
    headers = [
        (b"content-type", content_type.encode()),
        (b"content-length", str(len(body)).encode()),
        *(extra or ()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _plain(
    send: Send, status: int, body: bytes, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    await _reply(send, status, "text/plain; charset=utf-8", body, extra)
