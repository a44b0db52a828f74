"""
Sending one batch: post it, and retry as the policy says, until it is accepted or given up.

The exporter half of the pipeline, in OpenTelemetry's split: the processor
(:mod:`otel_segment.pipeline.batching`) queues messages and cuts batches; :func:`send_batch` sends
one, on a worker's thread (or the caller's, in ``sync_mode``).
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Final

from otel_segment.errors import DeliveryError
from otel_segment.pipeline.messages import now_timestamp

if TYPE_CHECKING:
    import threading
    from collections.abc import Callable

    from otel_segment.pipeline.encoding import BatchEnvelope
    from otel_segment.pipeline.retry import RetryPolicy
    from otel_segment.pipeline.transport import HttpTransport, Outcome

__all__ = ["send_batch", "yield_gil"]

_logger = logging.getLogger("otel_segment")

_YIELD_SECONDS: Final = 0.0001


def send_batch(
    items: list[bytes],
    *,
    transport: HttpTransport,
    envelope: BatchEnvelope,
    policy: RetryPolicy,
    abort: threading.Event,
    retried: Callable[[], object],
    give_way: bool = False,
) -> int | DeliveryError:
    """
    Post *items* as one body until it is accepted or given up; each attempt is stamped anew.

    Before each retry, the *policy*'s wait is spent on *abort*, then *retried* is called:
    once *abort* is set (the shutdown deadline), the wait ends and the batch is given up.
    With *give_way* (on a worker's thread), building the body and each attempt end with
    :func:`yield_gil`.

    Returns:
        The accepted body's size in bytes, or why the batch was given up.
    """
    attempts = 0
    started = time.monotonic()
    while True:
        body = envelope.body(items, now_timestamp())
        if give_way:
            yield_gil()
        outcome = transport.post(body, retry_count=attempts)
        if give_way:
            yield_gil()
        attempts += 1
        if outcome.ok:
            return len(body)
        wait = policy.wait_seconds(
            attempts=attempts,
            status=outcome.status,
            retry_after=outcome.retry_after,
            elapsed=time.monotonic() - started,
        )
        if wait is None or abort.is_set():
            return _given_up(outcome, attempts)
        _logger.debug("retrying in %.2f s after: %s", wait, outcome.error)
        if abort.wait(wait):
            return _given_up(outcome, attempts, "shut down while")
        retried()


def yield_gil() -> None:
    """
    Sleep a moment, so that a thread waiting for the GIL (an event loop) takes it.

    Building a body and posting it hold the GIL for up to a millisecond or so at a time.
    A worker that goes straight on, or a second worker waiting too, would keep the GIL
    among the pipeline's threads, and a waiting event loop would get it only when
    CPython forces a switch, after 5 ms (``sys.getswitchinterval()``).
    """
    time.sleep(_YIELD_SECONDS)


def _given_up(outcome: Outcome, attempts: int, prefix: str = "") -> DeliveryError:
    lead = f"{prefix} retrying: " if prefix else ""
    tries = f"{attempts} attempt{'s' if attempts != 1 else ''}"
    return DeliveryError(
        f"{lead}{outcome.error} (gave up after {tries})",
        status=outcome.status,
        attempts=attempts,
    )
