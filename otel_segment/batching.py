"""
The delivery pipeline: a bounded queue, workers, batches, retries, exit and fork.

Encoded messages wait in a bounded queue; worker threads cut byte-limited batches and
send them with retries; flush and shutdown wait for them; a forked child gets a pipeline of its own.

The caller's thread only appends bytes to a deque under a lock; it never waits on the
network. Workers send a batch when ``flush_at`` messages wait, when the oldest queued
message has waited ``flush_interval`` seconds, or at once on flush/shutdown. A batch takes
every queued message that fits in ``max_batch_bytes`` (envelope included), so a backlog
is sent in large batches, and ``max_in_flight`` workers keep requests overlapping when
the endpoint is far away.
"""

from __future__ import annotations

import collections
import contextvars
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Final

import orjson

from otel_segment.messages import now_timestamp

if TYPE_CHECKING:
    from otel_segment.encoding import BatchEnvelope
    from otel_segment.retry import RetryPolicy
    from otel_segment.transport import HttpTransport, Outcome

__all__ = [
    "BatchProcessor",
    "DeliveryError",
    "ErrorCallback",
    "QueueFullError",
    "ShutdownError",
    "in_pipeline",
]

_logger = logging.getLogger("otel_segment")

ErrorCallback = Callable[[Exception, list[dict[str, Any]]], object]
"""``on_error(exception, messages)``: called for messages that will not be delivered."""

_DROP_WARNING_INTERVAL_SECONDS: Final = 10.0
_ABORT_GRACE_SECONDS: Final = 0.1

_IN_PIPELINE: Final = contextvars.ContextVar("otel_segment_in_pipeline", default=False)

# Every live processor, so that one fork hook reaches them all.
_LIVE: Final[weakref.WeakSet[BatchProcessor]] = weakref.WeakSet()


def in_pipeline() -> bool:
    """Whether this code runs inside the pipeline's own delivery (a worker or a sync send)."""
    return _IN_PIPELINE.get()


class DeliveryError(Exception):
    """
    A batch was given up.

    Attributes:
        status: The last HTTP status, or ``None`` when no response arrived.
        attempts: How many times the batch was sent.
    """

    def __init__(self, reason: str, *, status: int | None = None, attempts: int = 0) -> None:
        super().__init__(reason)
        self.status = status
        self.attempts = attempts


class QueueFullError(Exception):
    """The queue held ``max_queue_size`` messages; this one was dropped."""


class ShutdownError(Exception):
    """The client shut down before these messages could be delivered."""


class BatchProcessor:
    """
    Queue encoded messages and deliver them in batches.

    Args:
        transport: Sends one body, returns an :class:`~otel_segment.transport.Outcome`.
        envelope: Wraps messages into a ``/v1/batch`` body.
        policy: When and how long to retry.
        flush_at: Send once this many messages wait.
        flush_interval: Send once the oldest queued message waited this many seconds.
        max_queue_size: Messages beyond this are dropped (the call returns ``False``).
        max_batch_bytes: No body is larger.
        on_error: Told about messages that will not be delivered.
        max_in_flight: Requests that may be under way at once.
    """

    def __init__(
        self,
        transport: HttpTransport,
        envelope: BatchEnvelope,
        *,
        policy: RetryPolicy,
        flush_at: int,
        flush_interval: float,
        max_queue_size: int,
        max_batch_bytes: int,
        on_error: ErrorCallback | None,
        max_in_flight: int = 2,
    ) -> None:
        self._transport = transport
        self._envelope = envelope
        self._policy = policy
        self._flush_at = flush_at
        self._flush_interval = flush_interval
        self._max_queue_size = max_queue_size
        self._batch_budget = max_batch_bytes - envelope.overhead
        self._on_error = on_error
        self._max_in_flight = max_in_flight
        self._closed = False
        self._reset()
        _LIVE.add(self)

    def _reset(self) -> None:
        """Fresh state: at construction, and in a forked child."""
        self._lock = threading.Lock()
        self._work = threading.Condition(self._lock)
        self._idle = threading.Condition(self._lock)
        self._abort = threading.Event()
        self._queue: collections.deque[bytes] = collections.deque()
        self._queued_bytes = 0  # the queued messages' sizes, plus one comma each
        self._workers: list[threading.Thread] = []
        self._stopping = False
        self._flushing = 0
        self._first_at: float | None = None
        self._taken = 0
        self._inflight: dict[int, int] = {}
        self._counts = dict.fromkeys(
            (
                "enqueued",
                "delivered",
                "dropped",
                "rejected",
                "failed",
                "retried",
                "batches",
                "bytes",
            ),
            0,
        )
        self._drops_unwarned = 0
        self._last_drop_warning = -_DROP_WARNING_INTERVAL_SECONDS

    # -- the caller's side ---------------------------------------------------------

    def enqueue(self, data: bytes) -> bool:
        """Queue one encoded message; ``False`` if it was dropped (queue full or closed)."""
        with self._lock:
            queue = self._queue
            if self._closed or len(queue) >= self._max_queue_size:
                self._counts["dropped"] += 1
                queued = 0
            else:
                queue.append(data)
                self._counts["enqueued"] += 1
                queued = len(queue)
                before = self._queued_bytes
                self._queued_bytes = before + len(data) + 1
                if (
                    queued == 1  # noqa: PLR1714 - no set built per call
                    or queued == self._flush_at
                    or before <= self._batch_budget < self._queued_bytes
                ):
                    if not self._workers:
                        self._start_workers()
                    self._work.notify()
        if queued:
            return True
        self._dropped([data])
        return False

    def send_now(self, data: bytes) -> bool:
        """Deliver one message on this thread, with retries (``sync_mode``)."""
        with self._lock:
            self._counts["enqueued"] += 1
        token = _IN_PIPELINE.set(True)
        try:
            return self._deliver([data])
        finally:
            _IN_PIPELINE.reset(token)

    def count_rejected(self) -> None:
        """Count a message refused before queueing."""
        with self._lock:
            self._counts["rejected"] += 1

    def reject(self, message: Any, error: Exception) -> None:
        """Count and report a message refused before queueing (too large)."""
        self.count_rejected()
        _logger.warning("message rejected: %s", error)
        self._report_decoded(error, [message])

    def stats(self) -> dict[str, int]:
        """Counters since start, and ``queued``: messages waiting now."""
        with self._lock:
            return {**self._counts, "queued": len(self._queue)}

    def flush(self, timeout: float | None = None) -> bool:
        """
        Block until every message queued before this call is delivered or failed.

        Returns:
            Whether that happened within *timeout* seconds. ``False`` at once when
            called from the pipeline itself (e.g. inside ``on_error``) or after shutdown.
        """
        if in_pipeline():
            return False
        with self._lock:
            if self._closed:
                return not self._queue and not self._inflight
            target = self._taken + len(self._queue)
            self._flushing += 1
            self._work.notify_all()
            try:
                return self._idle.wait_for(lambda: self._low_water() >= target, timeout)
            finally:
                self._flushing -= 1

    def shutdown(self, timeout: float | None = None) -> bool:
        """
        Deliver what can be delivered within *timeout*, then stop the workers.

        Messages still undelivered at the deadline are failed: counted and handed to
        ``on_error`` with a :class:`ShutdownError`. Later enqueues are dropped.

        Returns:
            Whether everything was delivered or failed on its own before the deadline.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            if self._closed:
                return not self._queue and not self._inflight
            self._closed = True
            self._stopping = True
            self._work.notify_all()
            workers = list(self._workers)
        _LIVE.discard(self)
        for worker in workers:
            worker.join(None if deadline is None else max(deadline - time.monotonic(), 0.0))
        finished = not any(worker.is_alive() for worker in workers)
        if not finished:
            self._abort.set()
        with self._lock:
            left = list(self._queue)
            self._queue.clear()
            self._queued_bytes = 0
            self._taken += len(left)
            self._idle.notify_all()
            finished = finished and not left
        if left:
            self._fail(ShutdownError(f"shut down with {len(left)} messages undelivered"), left)
        if not finished:
            self._await_aborted(workers)
        if finished:
            self._transport.close()
        return finished

    def _await_aborted(self, workers: list[threading.Thread]) -> None:
        """
        Give aborted workers a moment to report their batches, before an exit kills them.

        A worker waiting to retry wakes at once and hands its batch to ``on_error``; one
        still inside a request cannot be stopped, and its batch's fate is unknown.
        """
        grace_ends = time.monotonic() + _ABORT_GRACE_SECONDS
        for worker in workers:
            worker.join(max(grace_ends - time.monotonic(), 0.0))
        with self._lock:
            unknown = sum(self._inflight.values())
        if unknown:
            _logger.error(
                "%d messages were still being sent at the shutdown deadline; "
                "their delivery is unknown",
                unknown,
            )

    # -- workers -------------------------------------------------------------------

    def _start_workers(self) -> None:
        """Start the worker threads (lock held); lazily, so idle clients cost no thread."""
        for number in range(self._max_in_flight):
            worker = threading.Thread(
                target=self._run, name=f"otel_segment-worker-{number}", daemon=True
            )
            worker.start()
            self._workers.append(worker)

    def _run(self) -> None:
        _IN_PIPELINE.set(True)
        while (batch := self._take()) is not None:
            start, items = batch
            try:
                self._deliver(items)
            except Exception as exc:  # a bug of ours must not kill the worker
                _logger.exception("unexpected error delivering a batch")
                self._fail(DeliveryError(f"internal error: {exc!r}"), items)
            finally:
                with self._lock:
                    del self._inflight[start]
                    self._idle.notify_all()
                    self._work.notify()

    def _take(self) -> tuple[int, list[bytes]] | None:
        """Wait until a batch is due; cut it. ``None`` when stopping with nothing left."""
        with self._lock:
            while True:
                now = time.monotonic()
                if self._queue:
                    if self._first_at is None:
                        self._first_at = now
                    due = self._first_at + self._flush_interval
                    if self._due(now >= due):
                        return self._cut(now)
                    self._work.wait(due - now)
                elif self._stopping:
                    return None
                else:
                    self._work.wait()

    def _due(self, waited_enough: bool) -> bool:
        """
        Whether a batch should go now (lock held).

        ``flush_at`` messages start a request only when none is under way: while one
        is, messages pile up and leave together in the next, larger batch. A full
        batch (by bytes) always goes, so slow endpoints get several requests in flight.
        """
        return (
            waited_enough
            or self._flushing > 0
            or self._stopping
            or self._queued_bytes > self._batch_budget
            or (len(self._queue) >= self._flush_at and not self._inflight)
        )

    def _cut(self, now: float) -> tuple[int, list[bytes]]:
        """Pop the longest run of queued messages that fits one body (lock held)."""
        queue = self._queue
        budget = self._batch_budget
        items = [queue.popleft()]
        size = len(items[0])
        while queue and size + len(queue[0]) + 1 <= budget:
            item = queue.popleft()
            size += len(item) + 1
            items.append(item)
        self._queued_bytes -= size + 1
        start = self._taken
        self._taken += len(items)
        self._inflight[start] = len(items)
        self._first_at = now if queue else None
        if queue:
            self._work.notify()  # a backlog: let another worker start on it
        return start, items

    def _low_water(self) -> int:
        """Sequence number below which every message is delivered or failed (lock held)."""
        return min(self._inflight, default=self._taken)

    def _deliver(self, items: list[bytes]) -> bool:
        """Send one batch until it is accepted or given up; ``True`` if accepted."""
        attempts = 0
        started = time.monotonic()
        while True:
            body = self._envelope.body(items, now_timestamp())
            outcome = self._transport.post(body, retry_count=attempts)
            attempts += 1
            if outcome.ok:
                self._count(delivered=len(items), batches=1, bytes=len(body))
                self._acknowledged(items)
                _logger.debug("delivered %d messages (%d bytes)", len(items), len(body))
                return True
            wait = self._policy.wait_seconds(
                attempts=attempts,
                status=outcome.status,
                retry_after=outcome.retry_after,
                elapsed=time.monotonic() - started,
            )
            if wait is None or self._abort.is_set():
                self._fail(_delivery_error(outcome, attempts), items)
                return False
            self._count(retried=1)
            _logger.debug("retrying in %.2f s after: %s", wait, outcome.error)
            if self._abort.wait(wait):
                self._fail(_delivery_error(outcome, attempts, "shut down while"), items)
                return False

    def _count(self, **increments: int) -> None:
        with self._lock:
            for key, value in increments.items():
                self._counts[key] += value

    # -- hooks for a durable queue (otel_segment.spooled) --------------------------

    def _acknowledged(self, items: list[bytes]) -> None:
        """The server accepted *items*: nothing to do here; a spool deletes their rows."""

    def _extend(self, items: list[bytes]) -> None:
        """Queue messages already counted as enqueued (a spool's feed), past the queue bound."""
        with self._lock:
            self._queue.extend(items)
            self._queued_bytes += sum(map(len, items)) + len(items)
            if not self._workers:
                self._start_workers()
            self._work.notify()

    # -- failures ------------------------------------------------------------------

    def _fail(self, error: Exception, items: list[bytes]) -> None:
        self._count(failed=len(items))
        _logger.error("%d message(s) not delivered: %s", len(items), error)
        self._report(error, items)

    def _dropped(self, items: list[bytes]) -> None:
        with self._lock:
            self._drops_unwarned += len(items)
            now = time.monotonic()
            warn = now - self._last_drop_warning >= _DROP_WARNING_INTERVAL_SECONDS
            if warn:
                count, self._drops_unwarned = self._drops_unwarned, 0
                self._last_drop_warning = now
        error = (
            QueueFullError(f"queue full ({self._max_queue_size} messages); message dropped")
            if not self._closed
            else ShutdownError("client is shut down; message dropped")
        )
        if warn:
            _logger.warning("%s (%d dropped since the last warning)", error, count)
        self._report(error, items)

    def _report(self, error: Exception, items: Iterable[bytes]) -> None:
        if self._on_error:
            self._report_decoded(error, [orjson.loads(item) for item in items])

    def _report_decoded(self, error: Exception, messages: list[dict[str, Any]]) -> None:
        if not self._on_error:
            return
        try:
            self._on_error(error, messages)
        except Exception:
            _logger.exception("on_error callback raised")

    # -- process lifecycle ---------------------------------------------------------

    def _after_fork_in_child(self) -> None:
        """The child gets an empty queue, new locks, a new session; workers start lazily."""
        self._reset()
        self._transport.reset_after_fork()


def _delivery_error(outcome: Outcome, attempts: int, prefix: str = "") -> DeliveryError:
    lead = f"{prefix} retrying: " if prefix else ""
    tries = f"{attempts} attempt{'s' if attempts != 1 else ''}"
    return DeliveryError(
        f"{lead}{outcome.error} (gave up after {tries})",
        status=outcome.status,
        attempts=attempts,
    )


def _reset_all_in_child() -> None:
    for processor in list(_LIVE):
        processor._after_fork_in_child()  # noqa: SLF001 - the registry's own hook


os.register_at_fork(after_in_child=_reset_all_in_child)
