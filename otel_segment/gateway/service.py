"""
What the OTLP/HTTP and OTLP/gRPC front ends share: the token check, the export call, counting.

:meth:`ExportService.export` takes a decoded request through the
:class:`~otel_segment.gateway.intake.Intake` on the event loop's thread (mapping is pure
CPU work, a few milliseconds per thousand records), then, with a spool, waits off the
loop until the messages are committed to it: only then may the front end acknowledge.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hmac
import logging
from typing import TYPE_CHECKING, Final

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from otel_segment.gateway.intake import ACCEPTED, CLOSED, Intake, Outcome

if TYPE_CHECKING:
    from google.protobuf.message import Message

    from otel_segment.gateway.decoding import Signal
    from otel_segment.gateway.metrics import GatewayMetrics
    from otel_segment.gateway.wire import Sliced
    from otel_segment.pipeline.client import Client

__all__ = ["DURABLE_TIMEOUT_SECONDS", "NOT_DURABLE", "ExportService", "export_response"]

_logger = logging.getLogger("otel_segment.gateway")

DURABLE_TIMEOUT_SECONDS: Final = 30.0
"""How long an export waits for its messages to reach the spool before answering 503."""

NOT_DURABLE: Final = "not_durable"
"""Verdict of a request queued but not committed to the spool in time (answered 503)."""


class ExportService:
    """
    The export call behind both front ends.

    Args:
        client: The pipeline (owned by the gateway).
        metrics: Where requests and records are counted.
        token: The bearer token senders must present; ``None``: no check.
        retry_after_seconds: The wait suggested to senders told to retry.
    """

    def __init__(
        self,
        client: Client,
        metrics: GatewayMetrics,
        *,
        token: str | None,
        retry_after_seconds: int,
    ) -> None:
        self.client = client
        self.metrics = metrics
        self.retry_after_seconds = retry_after_seconds
        self.draining = False
        self._intake = Intake(client)
        self._expected = None if token is None else token.encode()
        self._durable = client.config.spool is not None

    def authorized(self, authorization: str | None) -> bool:
        """Whether *authorization* (the header or metadata value) carries the token."""
        if self._expected is None:
            return True
        scheme, _, credentials = (authorization or "").strip().partition(" ")
        given = credentials.strip().encode("utf-8", "surrogateescape")
        # Compared in constant time, and whatever the scheme, so that timing tells nothing.
        matches = hmac.compare_digest(given, self._expected)
        return matches and scheme.lower() == "bearer"  # the scheme is case-insensitive

    async def export(self, signal: Signal, request: Message | Sliced) -> Outcome:
        """
        Queue *request*'s messages, all or none; with a spool, return once they are durable.

        Raises:
            BodyError: 413 when the request could never fit the queue.
        """
        closed = Outcome(CLOSED, 0, 0, 0, 0, "")
        outcome = closed if self.draining else self._intake.take(request)
        del request  # not kept while waiting for the spool
        if outcome.verdict == ACCEPTED and outcome.queued and self._durable:
            loop = asyncio.get_running_loop()
            durable = await loop.run_in_executor(
                None, self.client.wait_durable, DURABLE_TIMEOUT_SECONDS
            )
            if not durable:
                _logger.error(
                    "messages not committed to the spool within %.0f s", DURABLE_TIMEOUT_SECONDS
                )
                outcome = dataclasses.replace(outcome, verdict=NOT_DURABLE)
        self._count(signal, outcome)
        return outcome

    def _count(self, signal: Signal, outcome: Outcome) -> None:
        records = self.metrics.records
        name = signal.name
        records.labels(name, "received").inc(outcome.received)
        records.labels(name, "ignored").inc(outcome.ignored)
        records.labels(name, "rejected").inc(outcome.rejected)
        if outcome.verdict == ACCEPTED:
            accepted = outcome.received - outcome.ignored - outcome.rejected
            records.labels(name, "accepted").inc(accepted)
        else:
            records.labels(name, "refused").inc(outcome.received)


def export_response(signal: Signal, outcome: Outcome) -> Message:
    """The success answer: empty, or naming the rejected records (OTLP partial success)."""
    if signal.name == "logs":
        logs = ExportLogsServiceResponse()
        if outcome.rejected:
            logs.partial_success.rejected_log_records = outcome.rejected
            logs.partial_success.error_message = outcome.error
        return logs
    traces = ExportTraceServiceResponse()
    if outcome.rejected:
        traces.partial_success.rejected_spans = outcome.rejected
        traces.partial_success.error_message = outcome.error
    return traces
