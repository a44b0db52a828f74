"""
Durable delivery: the batching pipeline with an SQLite spool behind its queue.

Callers append encoded messages to a list; one writer thread commits it to the
:class:`~otel_segment.pipeline.spool.Spool` in one transaction per :data:`WRITE_INTERVAL_SECONDS`
or :data:`WRITE_MAX_MESSAGES` (the write-behind bound), then feeds committed rows, oldest
first, into the workers' queue (at most ``max_queue_size`` in memory; the rest wait on
disk, as does what an earlier process left). Accepted batches have their rows deleted at
the next commit; batches given up after a retryable failure stay spooled and are fed again
after a pause (1 s, doubling to 60 s; at once after a success); batches refused for good
fail as without a spool. Over ``spool_max_bytes`` the oldest rows not being sent are
dropped, counted and reported (:class:`SpoolFullError`). If the spool fails while running,
or in a forked child, the pipeline goes on in memory.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from typing import TYPE_CHECKING, Any, Final

from otel_segment.pipeline.batching import in_pipeline
from otel_segment.pipeline.lifecycle import deadline_after, remaining
from otel_segment.pipeline.spool_feed import WRITE_INTERVAL_SECONDS, WRITE_MAX_MESSAGES, SpoolFeed

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from otel_segment.pipeline.encoding import BatchEnvelope
    from otel_segment.pipeline.spool import Spool
    from otel_segment.pipeline.transport import HttpTransport

__all__ = [
    "WRITE_INTERVAL_SECONDS",
    "WRITE_MAX_MESSAGES",
    "SpooledProcessor",
]

_logger = logging.getLogger("otel_segment")

_STOP_GRACE_SECONDS: Final = 0.5  # for the writer's last commit after shutdown's deadline


class SpooledProcessor(SpoolFeed):
    """
    A :class:`~otel_segment.pipeline.batching.BatchProcessor` whose queue is kept in a spool.

    Args:
        transport: As for :class:`~otel_segment.pipeline.batching.BatchProcessor`.
        envelope: As for :class:`~otel_segment.pipeline.batching.BatchProcessor`.
        spool: The open spool; the processor owns it from now on and closes it at shutdown.
        options: The keyword arguments of :class:`~otel_segment.pipeline.batching.BatchProcessor`.
    """

    def __init__(
        self, transport: HttpTransport, envelope: BatchEnvelope, *, spool: Spool, **options: Any
    ) -> None:
        super().__init__(transport, envelope, **options)
        self._init_spool_state(spool)
        self._writer = threading.Thread(
            target=self._write_loop, args=(spool,), name="otel_segment-spool", daemon=True
        )
        self._writer.start()

    # -- the caller's side ---------------------------------------------------------

    def enqueue(self, data: bytes) -> bool:
        """Queue one encoded message for the spool; ``False`` if it was dropped."""
        with self._wlock:
            if self._spool is not None and not self._closing:
                pending = self._pending
                if len(pending) < self._max_queue_size:
                    pending.append(data)
                    self._offered += 1
                    waiting = len(pending)
                    if waiting == 1 or waiting == WRITE_MAX_MESSAGES:  # noqa: PLR1714 - faster
                        self._wake.notify()
                    return True
                full = True
            else:
                full = False
        if not full:  # no spool (forked child, spool failed) or shutting down
            return super().enqueue(data)
        self._count(dropped=1)
        self._dropped([data])
        return False

    def enqueue_all(self, items: Sequence[bytes]) -> bool:
        """
        Queue all of *items* for the spool, or none (see the base class); no drop counted.

        Also none when they would take the spool past ``spool_max_bytes``: what a caller
        was told is kept must not be dropped later to make room (the oldest rows are).
        """
        with self._wlock:
            spool = self._spool
            if spool is not None and not self._closing:
                pending = self._pending
                if len(pending) + len(items) > self._max_queue_size:
                    return False
                adding = sum(map(len, items)) + sum(map(len, pending))
                if spool.total_bytes + adding > spool.max_bytes:
                    return False
                pending.extend(items)
                self._offered += len(items)
                self._wake.notify()
                return True
        return super().enqueue_all(items)

    def stats(self) -> dict[str, int]:
        """As for the base class, plus ``spooled``: messages in the spool file now."""
        counts = super().stats()
        with self._wlock:
            counts["enqueued"] += self._offered
            counts["queued"] += len(self._pending)
            counts["spooled"] = self._spooled
        return counts

    def wait_durable(self, timeout: float | None = None) -> bool:
        """
        Block until every message queued so far is committed to the spool (or dropped).

        Returns:
            Whether that happened within *timeout* seconds; ``True`` at once without a spool.
        """
        deadline = deadline_after(timeout)
        with self._urgent_writes(), self._wlock:
            return self._wait_written(self._offered, deadline)

    def flush(self, timeout: float | None = None) -> bool:
        """
        Block until every message queued so far is delivered, failed, or kept in the spool.

        Messages are committed at once, then fed and sent window by window; a batch whose
        retries ran out (the endpoint is down) stays spooled for later and counts as done.

        Returns:
            Whether that happened within *timeout* seconds.
        """
        if in_pipeline():
            return False
        if self._in_memory or self._closing:
            return super().flush(timeout)
        deadline = deadline_after(timeout)
        with self._urgent_writes():  # also holds rewinds back, so that this ends
            with self._wlock:
                if not self._wait_written(self._offered, deadline):
                    return False
                mark = self._last_id
            while True:  # the writer feeds the next window as the last one drains
                with self._wlock:
                    done, seen = self._fed_through(mark) or self._closing, self._fed_to
                if not super().flush(remaining(deadline)):
                    return False
                if done:
                    return True
                if not self._wait_fed_past(seen, deadline):
                    return False

    def shutdown(self, timeout: float | None = None) -> bool:
        """
        Commit what is queued, deliver what is in memory within *timeout*, close the spool.

        What is not delivered by the deadline, and a backlog beyond the memory window,
        stays in the spool for the next process with the same spool: not a loss, so neither
        failed nor reported. The writer may take 0.5 s more to record the last deletions.

        Returns:
            Whether every message queued is delivered or in the spool, and the spool closed.
        """
        deadline = deadline_after(timeout)
        with self._wlock:
            owner, self._closing = not self._in_memory and not self._closing, True
            self._changed.notify_all()  # a flush waiting for the next window stops waiting
        durable = True
        if owner:
            with self._urgent_writes(), self._wlock:
                durable = self._wait_written(self._offered, deadline)
                if durable:  # and one more window, with what was just committed
                    mark = self._last_id
                    self._changed.wait_for(
                        lambda: self._fed_through(mark) or not self._can_feed(),
                        remaining(deadline),
                    )
        finished = super().shutdown(remaining(deadline))
        if not owner:
            return finished
        with self._wlock:
            self._stop = True
            self._wake.notify()
        if threading.current_thread() is self._writer:  # shut down from on_error
            return durable
        left = remaining(deadline)
        self._writer.join(None if left is None else left + _STOP_GRACE_SECONDS)
        return durable and not self._writer.is_alive()

    @contextlib.contextmanager
    def _urgent_writes(self) -> Iterator[None]:
        """Have the writer commit at once, and hold rewinds back, while a caller waits."""
        with self._wlock:
            self._urgent += 1
            self._wake.notify()
        try:
            yield
        finally:
            with self._wlock:
                self._urgent -= 1
                self._wake.notify()  # a rewind may be due now

    def _fed_through(self, mark: int) -> bool:
        """Whether every row up to *mark* went to memory, or the spool is gone (lock held)."""
        return self._in_memory or self._fed_to >= mark

    def _wait_fed_past(self, seen: int, deadline: float | None) -> bool:
        """Wait until the writer fed rows past *seen* (or stopped feeding)."""
        with self._wlock:
            return self._changed.wait_for(
                lambda: self._in_memory or self._closing or self._fed_to != seen,
                remaining(deadline),
            )

    def _wait_written(self, target: int, deadline: float | None) -> bool:
        """Wait until *target* messages are committed, or the spool is gone (lock held)."""
        return self._changed.wait_for(
            lambda: self._in_memory or self._written >= target, remaining(deadline)
        )

    # -- process lifecycle ---------------------------------------------------------

    def _after_fork_in_child(self) -> None:
        """The child runs in memory: the spool, its connection and its lock stay the parent's."""
        super()._after_fork_in_child()
        spool = self._spool
        self._init_spool_state(None)
        if spool is not None and not spool.closed:
            spool.abandon()
            _logger.warning(
                "forked process: the spool %s stays with the parent; this process keeps "
                "its undelivered messages in memory only",
                spool.path,
            )
