"""
Taking one decoded export request into the pipeline, all or nothing.

Every record is mapped and each of its messages built and encoded first; only then is
the whole set queued at once (:meth:`Client.enqueue_all <otel_segment.Client.enqueue_all>`),
or, when the queue has no room for all of it, none of it, and the sender is told to
retry. A record that is not marked is *ignored* (it was never analytics); one whose
mapping or message is invalid is *rejected* and named in the partial-success answer,
while the request's other records go ahead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from otel_segment.errors import ClientClosedError
from otel_segment.gateway.decoding import BodyError
from otel_segment.gateway.records import Mapped, log_records, spans
from otel_segment.gateway.wire import Sliced

if TYPE_CHECKING:
    from collections.abc import Iterator

    from google.protobuf.message import Message

    from otel_segment.pipeline.client import Client

__all__ = ["Intake", "Outcome"]

_REASONS_SHOWN: Final = 3

ACCEPTED: Final = "accepted"
"""Every valid message of the request is queued."""
FULL: Final = "full"
"""The queue had no room for the whole request: nothing of it was queued."""
CLOSED: Final = "closed"
"""The pipeline is shutting down: nothing of the request was queued."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """
    What became of one export request.

    Attributes:
        verdict: :data:`ACCEPTED`, :data:`FULL` or :data:`CLOSED`.
        received: Records (spans or log records) in the request.
        ignored: Records with no ``segment.*`` marker or event name.
        rejected: Records whose mapping or messages were invalid (not queued).
        queued: Messages queued (0 unless accepted).
        error: Why records were rejected (the first few reasons), else ``""``.
    """

    verdict: str
    received: int
    ignored: int
    rejected: int
    queued: int
    error: str


class Intake:
    """
    Maps export requests and queues their messages through one client.

    Args:
        client: The pipeline every message goes through.
    """

    def __init__(self, client: Client) -> None:
        self._client = client
        self._capacity = client.config.max_queue_size

    def take(self, request: Message | Sliced) -> Outcome:
        """
        Map *request* (logs or traces) and queue its valid messages, all or none.

        Raises:
            BodyError: 413 when the request holds more messages than the queue can
                ever hold (it could never be accepted; the sender must split it); 400
                when a sliced request turns out not to be valid protobuf (nothing queued).
        """
        try:
            tally = self._encode(request)
            full = bool(tally.encoded) and not self._client.enqueue_all(tally.encoded)
            verdict = FULL if full else ACCEPTED
        except ClientClosedError:  # the gateway is draining
            return Outcome(CLOSED, 0, 0, 0, 0, "")
        except DecodeError as error:  # found in a slice: nothing of the request is queued
            raise BodyError(400, str(error)) from None
        return Outcome(
            verdict=verdict,
            received=tally.received,
            ignored=tally.ignored,
            rejected=tally.rejected,
            queued=len(tally.encoded) if verdict == ACCEPTED else 0,
            error="; ".join(tally.reasons),
        )

    def _encode(self, request: Message | Sliced) -> _Tally:
        """Map every record and encode its messages; count and explain what fails."""
        tally = _Tally()
        encode = self._client.encode
        encoded = tally.encoded
        append = encoded.append
        capacity = self._capacity
        received = ignored = 0
        for mapped in _mapped(request):
            received += 1
            if isinstance(mapped, Exception):
                tally.reject(mapped)
            elif not mapped:
                ignored += 1
            else:
                error = None
                for kind, fields in mapped:
                    try:
                        data = encode(str(kind), **fields)
                    except (TypeError, ValueError) as failed:  # counted by the client
                        error = error or failed
                    else:
                        if data is not None:  # None: a hook (before_send, the plan) took it
                            append(data)
                if len(encoded) > capacity:  # stop early: memory stays bounded
                    raise _too_many(capacity)
                if error is not None:
                    tally.reject(error)
        tally.received, tally.ignored = received, ignored
        return tally


def _too_many(capacity: int) -> BodyError:
    return BodyError(
        413,
        f"the request holds more than {capacity} messages, all the gateway's queue takes: "
        "send smaller requests",
    )


@dataclass(slots=True)
class _Tally:
    """What mapping a request came to (mutable while it is counted)."""

    received: int = 0
    ignored: int = 0
    rejected: int = 0
    encoded: list[bytes] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)

    def reject(self, error: Exception) -> None:
        self.rejected += 1
        if len(self.reasons) < _REASONS_SHOWN:
            self.reasons.append(f"{type(error).__name__}: {error}")


def _mapped(request: Message | Sliced) -> Iterator[Mapped]:
    if isinstance(request, Sliced):
        return _sliced(request)
    if isinstance(request, ExportLogsServiceRequest):
        return log_records(request)
    if isinstance(request, ExportTraceServiceRequest):
        return spans(request)
    raise TypeError(f"not an OTLP logs or traces export request: {type(request).__name__}")


def _sliced(request: Sliced) -> Iterator[Mapped]:
    """Each record of a sliced request, mapped, one parsed slice alive at a time."""
    for part in request:
        yield from _mapped(part)
