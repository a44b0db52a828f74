"""
The delivery pipeline: a bounded queue, workers, batches, flush, shutdown and fork.

The caller's thread only appends bytes to a deque under a lock; it never waits on the
network. Workers send a batch when ``flush_at`` messages wait, when the oldest queued
message has waited ``flush_interval`` seconds, or at once on flush/shutdown. A batch takes
every queued message that fits in ``max_batch_bytes`` (envelope included), so a backlog
is sent in large batches, and ``max_in_flight`` workers keep requests overlapping when
the endpoint is far away. A forked child gets a pipeline of its own.

One batch is sent, with retries, by :mod:`otel_segment.pipeline.delivery`; messages that will not
be delivered are logged and handed to ``on_error`` by :mod:`otel_segment.pipeline.reporting`.
"""

from __future__ import annotations

import collections
import contextvars
import functools
import logging
import threading
import time
from typing import TYPE_CHECKING, Any, Final

from otel_segment.errors import DeliveryError, QueueFullError, ShutdownError
from otel_segment.pipeline.delivery import send_batch
from otel_segment.pipeline.lifecycle import deadline_after, forget_at_fork, remaining, reset_at_fork
from otel_segment.pipeline.reporting import ErrorCallback, Reporter

if TYPE_CHECKING:
    from collections.abc import Sequence

    from otel_segment.pipeline.encoding import BatchEnvelope
    from otel_segment.pipeline.retry import RetryPolicy
    from otel_segment.pipeline.transport import HttpTransport

__all__ = [
    "BatchProcessor",
    "ErrorCallback",
    "in_pipeline",
]

_logger = logging.getLogger("otel_segment")

_ABORT_GRACE_SECONDS: Final = 0.1
_COUNTERS: Final = (
    "enqueued",
    "delivered",
    "dropped",
    "rejected",
    "failed",
    "retried",
    "batches",
    "bytes",
    "filtered",  # dropped by before_send (pipeline/hooks.py)
    "violations",  # broke the tracking plan (pipeline/hooks.py)
)

_IN_PIPELINE: Final = contextvars.ContextVar("otel_segment_in_pipeline", default=False)


def in_pipeline() -> bool:
    """Whether this code runs inside the pipeline's own delivery (a worker or a sync send)."""
    return _IN_PIPELINE.get()


class BatchProcessor:
    """
    Queue encoded messages and deliver them in batches.

    Args:
        transport: Sends one body, returns an :class:`~otel_segment.pipeline.transport.Outcome`.
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
        self._on_error = on_error  # a fresh Reporter gets it in each process
        self._max_in_flight = max_in_flight
        self._closed = False
        self._reset()
        reset_at_fork(self)

    def _reset(self) -> None:
        """Fresh state: at construction, and in a forked child."""
        self._lock = threading.Lock()
        self._work = threading.Condition(self._lock)
        self._idle = threading.Condition(self._lock)
        self._abort = threading.Event()
        self._queue: collections.deque[bytes] = collections.deque()
        self._queued_bytes = 0  # the queued messages' sizes, plus one comma each
        self._workers: list[threading.Thread] = []
        self._flushing = 0
        self._first_at: float | None = None
        self._taken = 0
        self._inflight: dict[int, int] = {}
        self._counts = dict.fromkeys(_COUNTERS, 0)
        self._reporter = Reporter(self._on_error)

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

    def enqueue_all(self, items: Sequence[bytes]) -> bool:
        """
        Queue every one of *items*, or none of them (a whole request: the gateway).

        Returns:
            ``False``, with nothing queued and nothing counted, when the queue has no
            room for all of them or the processor is closed: the caller keeps them
            (a gateway answers "retry later").
        """
        with self._lock:
            queue = self._queue
            if self._closed or len(queue) + len(items) > self._max_queue_size:
                return False
            queue.extend(items)
            self._counts["enqueued"] += len(items)
            self._queued_bytes += sum(map(len, items)) + len(items)
            if not self._workers:
                self._start_workers()
            self._work.notify()
        return True

    def wait_durable(self, timeout: float | None = None) -> bool:
        """Whether what is queued is durable: nothing to wait for in memory (a spool waits)."""
        del timeout
        return True

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
        self._reporter.rejected(error, message)

    def count_filtered(self) -> None:
        """Count a message ``before_send`` dropped (not an error: nothing is reported)."""
        self._count(filtered=1)

    def count_violation(self, message: Any, error: Exception) -> None:
        """Count a message that breaks the tracking plan, and hand it to ``on_error``."""
        self._count(violations=1)
        self._reporter.violated(error, message)

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
        deadline = deadline_after(timeout)
        with self._lock:
            if self._closed:
                return not self._queue and not self._inflight
            self._closed = True  # workers cut what is left at once, then stop
            self._work.notify_all()
            workers = list(self._workers)
        forget_at_fork(self)
        if not workers:  # none could start (interpreter exit): send from this thread
            self._drain_here(deadline)
        own = threading.current_thread()  # a worker, when on_error shuts the client down
        others = [worker for worker in workers if worker is not own]
        for worker in others:
            worker.join(remaining(deadline))
        finished = not any(worker.is_alive() for worker in others)
        if not finished:
            with self._lock:  # alive but idle (a zero timeout): nothing left to wait for
                own_batch = len(workers) - len(others)
                finished = not self._queue and len(self._inflight) <= own_batch
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
        if finished:
            self._transport.close()
        else:
            self._await_aborted(others)
        return finished

    def _await_aborted(self, workers: list[threading.Thread]) -> None:
        """
        Give aborted workers a moment to report their batches, before an exit kills them.

        A worker waiting to retry wakes at once and hands its batch to ``on_error``; one
        still inside a request cannot be stopped, and its batch's fate is unknown.
        """
        grace_ends = deadline_after(_ABORT_GRACE_SECONDS)
        for worker in workers:
            worker.join(remaining(grace_ends))
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
        """
        Start the worker threads (lock held); lazily, so idle clients cost no thread.

        At interpreter exit Python 3.12+ refuses new threads: then none start, and
        :meth:`shutdown` sends what is queued on its own thread.
        """
        for number in range(self._max_in_flight):
            worker = threading.Thread(
                target=self._run, name=f"otel_segment-worker-{number}", daemon=True
            )
            try:
                worker.start()
            except RuntimeError:  # "can't create new thread at interpreter shutdown"
                return
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
                elif self._closed:
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
            or self._closed
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

    def _drain_here(self, deadline: float | None) -> None:
        """Send the queue on this thread, batch by batch, until it is empty or time is up."""
        token = _IN_PIPELINE.set(True)
        try:
            while (budget := remaining(deadline)) is None or budget > 0:
                with self._lock:
                    if not self._queue:
                        return
                    start, items = self._cut(time.monotonic())
                try:
                    self._deliver(items, budget)
                finally:
                    with self._lock:
                        del self._inflight[start]
                        self._idle.notify_all()
        finally:
            _IN_PIPELINE.reset(token)

    def _deliver(self, items: list[bytes], budget: float | None = None) -> bool:
        """Send one batch until it is accepted or given up (within *budget* seconds)."""
        policy = self._policy
        if budget is not None and budget < policy.max_elapsed:
            policy = policy.replace(max_elapsed=budget)
        sent = send_batch(
            items,
            transport=self._transport,
            envelope=self._envelope,
            policy=policy,
            abort=self._abort,
            retried=functools.partial(self._count, retried=1),
        )
        if isinstance(sent, DeliveryError):
            self._fail(sent, items)
            return False
        self._count(delivered=len(items), batches=1, bytes=sent)
        self._acknowledged(items)
        _logger.debug("delivered %d messages (%d bytes)", len(items), sent)
        return True

    def _count(self, **increments: int) -> None:
        with self._lock:
            for key, value in increments.items():
                self._counts[key] += value

    # -- hooks for a durable queue (otel_segment.pipeline.spooled) --------------------------

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
        """Count, log and report messages given up."""
        self._count(failed=len(items))
        self._reporter.failed(error, items)

    def _dropped(self, items: list[bytes]) -> None:
        """Report messages the caller's enqueue dropped (already counted)."""
        error = (
            ShutdownError("client is shut down; message dropped")
            if self._closed
            else QueueFullError(f"queue full ({self._max_queue_size} messages); message dropped")
        )
        self._reporter.dropped(error, items)

    # -- process lifecycle ---------------------------------------------------------

    def _after_fork_in_child(self) -> None:
        """The child gets an empty queue, new locks, a new session; workers start lazily."""
        self._reset()
        self._transport.reset_after_fork()
