"""
The delivery pipeline: workers, batches, flush, shutdown and fork, over a backlog.

The caller's thread only appends bytes to a backlog under a lock; it never waits on the
network. Workers send a batch when :mod:`.pacing` says it is due (``flush_at``,
``flush_interval``, or at once on flush/shutdown); a batch takes every message that fits
in ``max_batch_bytes``, and ``max_in_flight`` workers keep requests overlapping.
Where messages wait is the backlog's business (:mod:`.backlogs`: memory, or a spool): the
processor takes a batch, sends it (:mod:`.delivery`) and settles it with its outcome;
what will not be delivered goes through :mod:`.reporting`. A forked child starts afresh.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from typing import TYPE_CHECKING, Final

from otel_segment.errors import DeliveryError, QueueFullError, ShutdownError
from otel_segment.pipeline.backlogs import Batch, MemoryBacklog
from otel_segment.pipeline.delivery import send_batch
from otel_segment.pipeline.guard import in_pipeline, inside_pipeline, mark_pipeline_thread
from otel_segment.pipeline.inflight import InFlight
from otel_segment.pipeline.lifecycle import deadline_after, forget_at_fork, remaining, reset_at_fork
from otel_segment.pipeline.pacing import Pacing
from otel_segment.pipeline.reporting import ErrorCallback, Reporter

if TYPE_CHECKING:
    from collections.abc import Sequence

    from otel_segment.pipeline.backlogs import Backlog
    from otel_segment.pipeline.encoding import BatchEnvelope
    from otel_segment.pipeline.retry import RetryPolicy
    from otel_segment.pipeline.transport import HttpTransport

__all__ = ["BatchProcessor", "ErrorCallback", "in_pipeline"]

_logger = logging.getLogger("otel_segment")

_ABORT_GRACE_SECONDS: Final = 0.1
_COUNTERS: Final = ("enqueued", "delivered", "retried", "batches", "bytes")  # the rest: Reporter


class BatchProcessor:
    """
    Take batches from a backlog and deliver them; the backlog's :class:`Host`.

    Args:
        transport: Sends one body, returns an :class:`~otel_segment.pipeline.transport.Outcome`.
        envelope: Wraps messages into a ``/v1/batch`` body.
        backlog: Where messages wait; default a :class:`MemoryBacklog` of *max_queue_size*.
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
        backlog: Backlog | None = None,
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
        self._backlog: Backlog = MemoryBacklog(max_queue_size) if backlog is None else backlog
        self._put = self._backlog.put  # bound once: enqueue is the caller's hot path
        self._policy = policy
        self._max_queue_size = max_queue_size
        self._batch_budget = max_batch_bytes - envelope.overhead
        self._on_error = on_error  # a fresh Reporter gets it in each process
        self._max_in_flight = max_in_flight
        self._closed = False
        self._pacing = Pacing(flush_at, flush_interval, self._batch_budget)
        self._reset()
        self._backlog.attach(self, flush_at=flush_at, batch_budget=self._batch_budget)
        reset_at_fork(self)

    def _reset(self) -> None:
        """Fresh state: at construction, and in a forked child."""
        self._lock = threading.Lock()
        self._work = threading.Condition(self._lock)
        self._idle = threading.Condition(self._lock)
        self._abort = threading.Event()
        self._workers: list[threading.Thread] = []
        self._flushing = 0
        self._pacing.restart()
        self._inflight = InFlight()
        self._counts = dict.fromkeys(_COUNTERS, 0)
        self._reporter = Reporter(self._on_error)

    @property
    def backlog(self) -> Backlog:
        """Where messages wait."""
        return self._backlog

    @property
    def reporter(self) -> Reporter:
        """Counts and reports every message that will not be delivered (new after fork)."""
        return self._reporter

    # -- the caller's side ---------------------------------------------------------

    def enqueue(self, data: bytes) -> bool:
        """Queue one encoded message; ``False`` if it was dropped (queue full or closed)."""
        with self._lock:
            if not self._closed and (wake := self._put(data)) is not None:
                self._counts["enqueued"] += 1
                if wake:
                    self.wake()
                return True
        self._dropped([data])
        return False

    def enqueue_all(self, items: Sequence[bytes]) -> bool:
        """Queue all of *items* or none; ``False`` (nothing counted) if they do not all fit."""
        with self._lock:
            if self._closed or (wake := self._backlog.put_all(items)) is None:
                return False
            self._counts["enqueued"] += len(items)
            if wake:
                self.wake()
        return True

    def send_now(self, data: bytes) -> bool:
        """Deliver one message on this thread, with retries (``sync_mode``)."""
        with self._lock:
            self._counts["enqueued"] += 1
        with inside_pipeline():
            return self._deliver(Batch([data]))

    def stats(self) -> dict[str, int]:
        """Counters since start, ``queued`` (waiting now), and the backlog's own figures."""
        with self._lock:
            counts = {**self._counts, **self._reporter.counts(), "queued": len(self._backlog)}
            self._backlog.stats(counts)
        return counts

    def flush(self, timeout: float | None = None) -> bool:
        """
        Block until every message queued before this call is delivered or failed.

        Returns:
            Whether that happened within *timeout* seconds. ``False`` at once when
            called from the pipeline itself (e.g. inside ``on_error``) or after shutdown.
        """
        if in_pipeline():
            return False
        return self._backlog.flush(self._flush_memory, timeout)

    def _flush_memory(self, timeout: float | None) -> bool:
        """Wait until every message in memory now is settled."""
        with self._lock:
            if self._closed:
                return not len(self._backlog) and not self._inflight
            target = self._inflight.taken + len(self._backlog)
            self._flushing += 1
            self._work.notify_all()
            try:
                return self._idle.wait_for(lambda: self._inflight.low_water() >= target, timeout)
            finally:
                self._flushing -= 1

    def shutdown(self, timeout: float | None = None) -> bool:
        """
        Deliver what can be delivered within *timeout*, then stop the workers.

        Messages still queued at the deadline, or still being sent (their delivery is
        unknown), are failed before this returns: counted and handed to ``on_error`` with
        a :class:`ShutdownError` (a spool keeps them instead). Later enqueues are dropped.

        Returns:
            Whether everything was delivered or failed on its own before the deadline.
        """
        return self._backlog.close(self._close_memory, timeout)

    def _close_memory(self, timeout: float | None) -> bool:
        """Stop taking messages, deliver what is in memory within *timeout*, stop."""
        deadline = deadline_after(timeout)
        with self._lock:
            if self._closed:
                return not len(self._backlog) and not self._inflight
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
                finished = not len(self._backlog) and len(self._inflight) <= own_batch
        if not finished:
            self._abort.set()
        with self._lock:
            left = self._backlog.take_all()
            self._inflight.skip(len(left.items))
            self._idle.notify_all()
            finished = finished and not left.items
        if left.items:
            count = len(left.items)
            self._settle(left, ShutdownError(f"shut down with {count} messages undelivered"))
        if finished:
            self._transport.close()
        else:
            self._await_aborted(others)
        self._reporter.summarize()
        return finished

    def _await_aborted(self, workers: list[threading.Thread]) -> None:
        """
        Give aborted workers a moment to settle their batches; write off the others.

        A worker waiting to retry wakes at once and settles its batch. One inside a request
        cannot be stopped: its batch is failed here, of unknown delivery; its outcome is ignored.
        """
        grace_ends = deadline_after(_ABORT_GRACE_SECONDS)
        for worker in workers:
            worker.join(remaining(grace_ends))
        with self._lock:
            unknown = self._inflight.write_off()  # a late outcome is not counted again
        for batch in unknown:
            count = len(batch.items)
            reason = f"{count} messages were still being sent at the shutdown deadline"
            self._settle(batch, ShutdownError(f"{reason}; their delivery is unknown"))

    # -- the backlog's host --------------------------------------------------------

    @property
    def lock(self) -> threading.Lock:
        """The lock that guards the backlog's memory."""
        return self._lock

    def wake(self) -> None:
        """Messages are waiting in memory: start a worker on them (lock held)."""
        if not self._workers:
            self._start_workers()
        self._work.notify()

    def dropped(self, error: Exception, items: list[bytes]) -> None:
        """Count and report messages the backlog dropped."""
        self._reporter.dropped(error, items)

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
        mark_pipeline_thread()
        while (taken := self._take()) is not None:
            self._send(*taken)

    def _send(self, start: int, batch: Batch, budget: float | None = None) -> None:
        """Deliver the batch *start*, and settle it whatever happens."""
        try:
            self._deliver(batch, budget, start=start)
        except Exception as exc:  # a bug of ours must not kill the worker
            _logger.exception("unexpected error delivering a batch")
            if self._claim(start):
                self._settle(batch, DeliveryError(f"internal error: {exc!r}"))
        finally:
            with self._lock:
                self._inflight.done(start)
                self._idle.notify_all()
                self._work.notify()

    def _take(self) -> tuple[int, Batch] | None:
        """Wait until a batch may go (:class:`Pacing`); cut it. ``None``: stopping, none left."""
        with self._lock:
            while True:
                now = time.monotonic()
                if len(self._backlog):
                    urgent = self._flushing > 0 or self._closed
                    wait = self._pacing.wait(now, self._backlog, self._inflight, urgent=urgent)
                    if wait <= 0:
                        return self._cut(now)
                    self._work.wait(wait)
                elif self._closed:
                    return None
                else:
                    self._work.wait()

    def _cut(self, now: float) -> tuple[int, Batch]:
        """Take the next batch from the backlog and number it (lock held)."""
        batch = self._backlog.take(self._batch_budget)
        start = self._inflight.add(batch, now)
        more = len(self._backlog) > 0
        self._pacing.cut(now, more=more)
        if more:
            self._work.notify()  # a backlog: let another worker start on it
        return start, batch

    def _drain_here(self, deadline: float | None) -> None:
        """Send the queue on this thread, batch by batch, until it is empty or time is up."""
        with inside_pipeline():
            while (budget := remaining(deadline)) is None or budget > 0:
                with self._lock:
                    if not len(self._backlog):
                        return
                    start, batch = self._cut(time.monotonic())
                self._send(start, batch, budget)

    def _deliver(self, batch: Batch, budget: float | None = None, start: int = -1) -> bool:
        """Send one batch until it is accepted or given up (within *budget* seconds)."""
        policy = self._policy
        if budget is not None and budget < policy.max_elapsed:
            policy = policy.replace(max_elapsed=budget)
        sent = send_batch(
            batch.items,
            transport=self._transport,
            envelope=self._envelope,
            policy=policy,
            abort=self._abort,
            retried=functools.partial(self._count, retried=1),
            give_way=start >= 0,  # a worker's batch (or the exit drain's), not a sync send
        )
        if start >= 0 and not self._claim(start):
            return not isinstance(sent, DeliveryError)
        if isinstance(sent, DeliveryError):
            self._settle(batch, sent)
            return False
        self._count(delivered=len(batch.items), batches=1, bytes=sent)
        self._backlog.settle(batch, None)
        _logger.debug("delivered %d messages (%d bytes)", len(batch.items), sent)
        return True

    def _claim(self, start: int) -> bool:
        """Take the outcome of the batch *start* in hand, unless shutdown wrote it off."""
        with self._lock:
            if self._inflight.claim(start):
                return True
        _logger.info("a batch written off at the shutdown deadline got its answer after all")
        return False

    def _count(self, **increments: int) -> None:
        with self._lock:
            for key, value in increments.items():
                self._counts[key] += value

    # -- failures ------------------------------------------------------------------

    def _settle(self, batch: Batch, error: Exception) -> None:
        """Hand a batch given up to the backlog; fail what it does not keep."""
        failed = self._backlog.settle(batch, error)
        if failed:
            self._reporter.failed(error, failed)

    def _dropped(self, items: list[bytes]) -> None:
        """Count and report messages the caller's enqueue dropped."""
        error = (
            ShutdownError("client is shut down; message dropped")
            if self._closed
            else QueueFullError(f"queue full ({self._max_queue_size} messages); message dropped")
        )
        self._reporter.dropped(error, items)

    # -- process lifecycle ---------------------------------------------------------

    def _after_fork_in_child(self) -> None:
        """The child gets an empty backlog, new locks, a new session; workers start lazily."""
        self._reset()
        self._backlog.after_fork()
        self._transport.reset_after_fork()
