"""
OTLP/gRPC: the Logs and Trace services on grpcio's asyncio server.

The services are registered as generic handlers that receive the raw request bytes, so
that a body that is not protobuf is answered ``INVALID_ARGUMENT`` by the gateway, like
400 over HTTP. The other answers mirror OTLP/HTTP's: ``UNAUTHENTICATED`` without the
token (``authorization: Bearer <token>`` metadata), ``RESOURCE_EXHAUSTED`` when the
queue cannot take the whole request and ``UNAVAILABLE`` while draining, both with a
``google.rpc.RetryInfo`` (a ``grpc-status-details-bin`` detail, and bare under
``google.rpc.retryinfo-bin``, where the OpenTelemetry Python exporter looks). gRPC
itself enforces ``max_body_bytes`` (after decompression) and handles gzip.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import TYPE_CHECKING, Final

import grpc
from google.protobuf.any_pb2 import Any as AnyProto
from google.protobuf.duration_pb2 import Duration
from google.rpc.error_details_pb2 import RetryInfo
from google.rpc.status_pb2 import Status

from otel_segment.gateway.decoding import LOGS, PROTOBUF, TRACES, BodyError, Signal, decode
from otel_segment.gateway.intake import ACCEPTED, FULL
from otel_segment.gateway.service import export_response

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from otel_segment.gateway.service import ExportService

__all__ = ["handlers"]

_DETAILS_KEY: Final = "grpc-status-details-bin"
# The OpenTelemetry Python exporter reads a bare RetryInfo under this key instead.
_RETRY_INFO_KEY: Final = "google.rpc.retryinfo-bin"
_BAD_INPUT: Final = {400: "undecodable", 413: "too_large"}


def handlers(service: ExportService) -> list[grpc.GenericRpcHandler[bytes, bytes]]:
    """The generic handlers of the two OTLP services, backed by *service*."""
    return [
        grpc.method_handlers_generic_handler(
            signal.service,
            {"Export": grpc.unary_unary_rpc_method_handler(_export(service, signal))},
        )
        for signal in (LOGS, TRACES)
    ]


_Metadata = tuple[tuple[str, str | bytes], ...]


def _export(
    service: ExportService, signal: Signal
) -> Callable[[bytes, grpc.aio.ServicerContext[bytes, bytes]], Awaitable[bytes]]:
    async def export(body: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
        code, details, trailers, answer = await _serve(service, signal, body, context)
        service.metrics.requests.labels("grpc", signal.name, code.name).inc()
        if code is not grpc.StatusCode.OK:
            await context.abort(code, details, trailers)  # raises
        return answer

    return export


async def _serve(
    service: ExportService,
    signal: Signal,
    body: bytes,
    context: grpc.aio.ServicerContext[bytes, bytes],
) -> tuple[grpc.StatusCode, str, _Metadata, bytes]:
    """Answer one export: the code, its details, trailing metadata and the response."""
    metadata = dict(context.invocation_metadata() or ())
    authorization = metadata.get("authorization")
    if not service.authorized(authorization if isinstance(authorization, str) else None):
        service.metrics.bad_input.labels("unauthorized").inc()
        return grpc.StatusCode.UNAUTHENTICATED, "missing or wrong bearer token", (), b""
    try:
        outcome = await service.export(signal, decode(signal, body, PROTOBUF))
    except BodyError as error:
        service.metrics.bad_input.labels(_BAD_INPUT.get(error.status, "other")).inc()
        if (
            error.status == HTTPStatus.REQUEST_ENTITY_TOO_LARGE
        ):  # no RetryInfo: the same request would fail again
            return grpc.StatusCode.RESOURCE_EXHAUSTED, str(error), (), b""
        return grpc.StatusCode.INVALID_ARGUMENT, str(error), (), b""
    if outcome.verdict == ACCEPTED:
        return grpc.StatusCode.OK, "", (), export_response(signal, outcome).SerializeToString()
    if outcome.verdict == FULL:
        code, details = grpc.StatusCode.RESOURCE_EXHAUSTED, "the gateway's queue is full"
    else:
        code, details = grpc.StatusCode.UNAVAILABLE, "the gateway is not taking requests now"
    details += "; retry later"
    retry = RetryInfo(retry_delay=Duration(seconds=service.retry_after_seconds))
    trailers = (
        (_DETAILS_KEY, _retry_status(code, details, retry)),
        (_RETRY_INFO_KEY, retry.SerializeToString()),
    )
    return code, details, trailers, b""


def _retry_status(code: grpc.StatusCode, message: str, retry: RetryInfo) -> bytes:
    """A ``google.rpc.Status`` with a ``RetryInfo`` detail, as gRPC trailers carry it."""
    detail = AnyProto()
    detail.Pack(retry)
    number: int = code.value[0]
    return Status(code=number, message=message, details=[detail]).SerializeToString()
