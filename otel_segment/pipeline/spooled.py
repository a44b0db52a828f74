"""
Durable delivery: a backlog kept in an SQLite spool, behind a memory window.

Callers append encoded messages to a list; one writer thread commits it to the
:class:`~otel_segment.pipeline.spool.Spool` in one transaction per :data:`WRITE_INTERVAL_SECONDS`
or :data:`WRITE_MAX_MESSAGES` (the write-behind bound), then feeds committed rows, oldest
first, into the memory window the processor's workers take batches from (at most
``max_queue_size`` in memory; the rest wait on disk, as does what an earlier process
left). Each item fed carries its row id. Accepted batches have their rows deleted at the
next commit; batches given up after a retryable failure stay spooled and are fed again
after a pause (1 s, doubling to 60 s; at once after a success); batches refused for good
fail as without a spool. Over ``spool_max_bytes`` the oldest rows not being sent are
dropped, counted and reported (:class:`SpoolFullError`). If the spool fails while running,
or in a forked child, the backlog goes on in memory.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from typing import TYPE_CHECKING, Final

from otel_segment.pipeline.backlogs import Batch, cut
from otel_segment.pipeline.lifecycle import deadline_after, remaining
from otel_segment.pipeline.spool_feed import WRITE_INTERVAL_SECONDS, WRITE_MAX_MESSAGES, SpoolFeed

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

    from otel_segment.pipeline.backlogs import Host

__all__ = [
    "WRITE_INTERVAL_SECONDS",
    "WRITE_MAX_MESSAGES",
    "SpoolBacklog",
]

_logger = logging.getLogger("otel_segment")

_STOP_GRACE_SECONDS: Final = 0.5  # for the writer's last commit after shutdown's deadline


class SpoolBacklog(SpoolFeed):
    """
    A :class:`~otel_segment.pipeline.backlogs.Backlog` kept in a spool.

    Args:
        spool: The open spool; the backlog owns it from now on and closes it at shutdown.
        policy: Which failures are worth keeping a batch spooled for.
        max_queue_size: Messages held in memory at most (and waiting to be committed).
    """

    def attach(self, host: Host, *, flush_at: int, batch_budget: int) -> None:
        """Feed *host*'s workers; start the writer thread."""
        self._host = host
        self._flush_at, self._budget = flush_at, batch_budget
        self._writer = threading.Thread(
            target=self._write_loop, args=(self._owned,), name="otel_segment-spool", daemon=True
        )
        self._writer.start()

    # -- the processor's side (host lock held) -------------------------------------

    def put(self, data: bytes) -> bool | None:
        """Queue one message for the spool (in memory without one); ``None`` if full."""
        with self._wlock:
            if self._spool is not None and not self._closing:
                pending = self._pending
                if len(pending) >= self._max_queue_size:
                    return None
                pending.append(data)
                self._offered += 1
                waiting = len(pending)
                if waiting == 1 or waiting == WRITE_MAX_MESSAGES:  # noqa: PLR1714 - faster
                    self._wake.notify()
                return False
        window = self._window  # no spool (forked child, spool failed) or shutting down
        queued = len(window)
        if queued >= self._max_queue_size:
            return None
        window.append(data)
        self._handles.append(0)
        before = self._window_bytes
        self._window_bytes = after = before + len(data) + 1
        return queued == 0 or queued + 1 == self._flush_at or before <= self._budget < after

    def put_all(self, items: Sequence[bytes]) -> bool | None:
        """
        Queue all of *items* for the spool, or none: ``None`` if they do not all fit.

        Also ``None`` when they would take the spool past ``spool_max_bytes``: what a
        caller was told is kept must not be dropped later to make room (the oldest are).
        """
        with self._wlock:
            spool = self._spool
            if spool is not None and not self._closing:
                pending = self._pending
                if len(pending) + len(items) > self._max_queue_size:
                    return None
                adding = sum(map(len, items)) + sum(map(len, pending))
                if spool.total_bytes + adding > spool.max_bytes:
                    return None
                pending.extend(items)
                self._offered += len(items)
                self._wake.notify()
                return False
        window = self._window  # no spool (forked child, spool failed) or shutting down
        if len(window) + len(items) > self._max_queue_size:
            return None
        window.extend(items)
        self._handles.extend([0] * len(items))
        self._window_bytes += sum(map(len, items)) + len(items)
        return True

    def __len__(self) -> int:
        """Messages in the memory window."""
        return len(self._window)

    @property
    def queued_bytes(self) -> int:
        """Their sizes, plus one comma each."""
        return self._window_bytes

    def take(self, budget: int) -> Batch:
        """Cut the oldest messages of the window that fit *budget* bytes, with their rows."""
        items, size = cut(self._window, budget)
        self._window_bytes -= size + 1
        handles = self._handles
        return Batch(items, [handles.popleft() for _ in items])

    def take_all(self) -> Batch:
        """Take the whole window."""
        batch = Batch(list(self._window), list(self._handles))
        self._window.clear()
        self._handles.clear()
        self._window_bytes = 0
        return batch

    def stats(self, counts: dict[str, int]) -> None:
        """Count what waits to be committed as queued; add ``spooled``: rows in the file."""
        with self._wlock:
            counts["queued"] += len(self._pending)
            counts["spooled"] = self._spooled

    # -- waiting ---------------------------------------------------------------------

    def wait_durable(self, timeout: float | None = None) -> bool:
        """
        Block until every message queued so far is committed to the spool (or dropped).

        Returns:
            Whether that happened within *timeout* seconds; ``True`` at once without a spool.
        """
        deadline = deadline_after(timeout)
        with self._urgent_writes(), self._wlock:
            return self._wait_written(self._offered, deadline)

    def flush(self, flush_memory: Callable[[float | None], bool], timeout: float | None) -> bool:
        """
        Block until every message queued so far is delivered, failed, or kept in the spool.

        Messages are committed at once, then fed and sent window by window; a batch whose
        retries ran out (the endpoint is down) stays spooled for later and counts as done.

        Returns:
            Whether that happened within *timeout* seconds.
        """
        if self._in_memory or self._closing:
            return flush_memory(timeout)
        deadline = deadline_after(timeout)
        with self._urgent_writes():  # also holds rewinds back, so that this ends
            with self._wlock:
                if not self._wait_written(self._offered, deadline):
                    return False
                mark = self._last_id
            while True:  # the writer feeds the next window as the last one drains
                with self._wlock:
                    done, seen = self._fed_through(mark) or self._closing, self._fed_to
                if not flush_memory(remaining(deadline)):
                    return False
                if done:
                    return True
                if not self._wait_fed_past(seen, deadline):
                    return False

    def close(self, close_memory: Callable[[float | None], bool], timeout: float | None) -> bool:
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
        finished = close_memory(remaining(deadline))
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

    def after_fork(self) -> None:
        """The child runs in memory: the spool, its connection and its lock stay the parent's."""
        spool = self._spool
        self._init_spool_state(None)
        if spool is not None and not spool.closed:
            spool.abandon()
            _logger.warning(
                "forked process: the spool %s stays with the parent; this process keeps "
                "its undelivered messages in memory only",
                spool.path,
            )
