"""
Durable delivery: the batching pipeline with an SQLite spool behind its queue.

Callers append encoded messages to a list; one writer thread commits it to the
:class:`~otel_segment.spool.Spool` in one transaction per :data:`WRITE_INTERVAL_SECONDS`
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
import math
import threading
import time
from typing import TYPE_CHECKING, Any, Final

from otel_segment.batching import (
    _IN_PIPELINE,
    BatchProcessor,
    DeliveryError,
    ShutdownError,
    in_pipeline,
)
from otel_segment.spool import Spool, SpoolError

if TYPE_CHECKING:
    from collections.abc import Iterator

    from otel_segment.encoding import BatchEnvelope
    from otel_segment.spool import Written
    from otel_segment.transport import HttpTransport

__all__ = [
    "WRITE_INTERVAL_SECONDS",
    "WRITE_MAX_MESSAGES",
    "SpoolFullError",
    "SpooledProcessor",
]

_logger = logging.getLogger("otel_segment")

WRITE_INTERVAL_SECONDS: Final = 0.05
"""A queued message is committed to the spool at most this long after the call returned."""

WRITE_MAX_MESSAGES: Final = 1000
"""...or as soon as this many messages wait to be committed, whichever comes first."""

_PAUSE_MIN_SECONDS: Final = 1.0
_PAUSE_MAX_SECONDS: Final = 60.0
_STOP_GRACE_SECONDS: Final = 0.5  # for the writer's last commit after shutdown's deadline
_DROP_WARNING_INTERVAL_SECONDS: Final = 10.0


class SpoolFullError(Exception):
    """The spool reached ``spool_max_bytes``; these messages were dropped, oldest first."""


class SpooledProcessor(BatchProcessor):
    """
    A :class:`~otel_segment.batching.BatchProcessor` whose queue is kept in a spool.

    Args:
        transport: As for :class:`~otel_segment.batching.BatchProcessor`.
        envelope: As for :class:`~otel_segment.batching.BatchProcessor`.
        spool: The open spool; the processor owns it from now on and closes it at shutdown.
        options: The keyword arguments of :class:`~otel_segment.batching.BatchProcessor`.
    """

    def __init__(
        self, transport: HttpTransport, envelope: BatchEnvelope, *, spool: Spool, **options: Any
    ) -> None:
        super().__init__(transport, envelope, **options)
        self._init_spool_state(spool)
        self._writer = threading.Thread(
            target=self._write_loop, name="otel_segment-spool", daemon=True
        )
        self._writer.start()

    def _init_spool_state(self, spool: Spool | None) -> None:
        """Fresh spool-side state: at construction, and in a forked child (no spool)."""
        self._spool = spool
        self._path = "" if spool is None else spool.path
        self._in_memory = spool is None  # no spool (forked child), or it failed
        self._wlock = threading.Lock()
        self._wake = threading.Condition(self._wlock)  # the writer waits here
        self._changed = threading.Condition(self._wlock)  # flush/shutdown wait here
        self._pending: list[bytes] = []  # queued by callers, not yet committed
        self._offered = 0  # messages ever put in _pending
        self._written = 0  # ...of which committed (or dropped by the bound)
        self._last_id = 0 if spool is None else spool.last_id
        self._fed_to = 0  # every row id up to this one was fed to memory (or skipped)
        self._spooled = 0 if spool is None else spool.count
        self._rowid_of: dict[int, int] = {}  # id(message bytes in memory) -> row id
        self._held: set[int] = set()  # rows in memory: queued or being sent
        self._acked: set[int] = set()  # rows to delete at the next commit
        self._parked_min: int | None = None  # lowest row id given up since the last rewind
        self._rewind_at: float | None = None
        self._pause = _PAUSE_MIN_SECONDS
        self._urgent = 0  # callers waiting for a commit: write now, do not rewind
        self._closing = False
        self._stop = False
        self._last_drop_warning = -_DROP_WARNING_INTERVAL_SECONDS

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
        deadline = _deadline(timeout)
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
        deadline = _deadline(timeout)
        with self._urgent_writes():  # also holds rewinds back, so that this ends
            with self._wlock:
                if not self._wait_written(self._offered, deadline):
                    return False
                mark = self._last_id
            while True:  # the writer feeds the next window as the last one drains
                with self._wlock:
                    done, seen = self._fed_through(mark) or self._closing, self._fed_to
                if not super().flush(_remaining(deadline)):
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
        deadline = _deadline(timeout)
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
                        _remaining(deadline),
                    )
        finished = super().shutdown(_remaining(deadline))
        if not owner:
            return finished
        with self._wlock:
            self._stop = True
            self._wake.notify()
        if threading.current_thread() is self._writer:  # shut down from on_error
            return durable
        left = None if deadline is None else max(deadline - time.monotonic(), 0.0)
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
                _remaining(deadline),
            )

    def _wait_written(self, target: int, deadline: float | None) -> bool:
        """Wait until *target* messages are committed, or the spool is gone (lock held)."""
        return self._changed.wait_for(
            lambda: self._in_memory or self._written >= target, _remaining(deadline)
        )

    # -- outcomes, from the workers ------------------------------------------------

    def _acknowledged(self, items: list[bytes]) -> None:
        """Mark the rows of an accepted batch for deletion; the endpoint is back."""
        with self._wlock:
            rowid_of, held, acked = self._rowid_of, self._held, self._acked
            for item in items:
                rowid = rowid_of.pop(id(item), None)
                if rowid is not None:
                    held.discard(rowid)
                    acked.add(rowid)
            self._pause = _PAUSE_MIN_SECONDS
            if self._parked_min is not None:
                self._rewind_at = time.monotonic()
            self._wake.notify()

    def _fail(self, error: Exception, items: list[bytes]) -> None:
        """Keep a batch spooled after a retryable failure; otherwise fail it and drop its rows."""
        keep = self._spool is not None and self._worth_keeping(error)
        with self._wlock:
            rowids = [self._rowid_of.pop(id(item), None) for item in items]
            tracked = [rowid for rowid in rowids if rowid is not None]
            self._held.difference_update(tracked)
            pause = None
            if keep and tracked:
                lowest = min(tracked)
                parked = self._parked_min
                self._parked_min = lowest if parked is None else min(parked, lowest)
                if self._rewind_at is None and not self._closing:
                    pause, self._rewind_at = self._pause, time.monotonic() + self._pause
                    self._pause = min(self._pause * 2, _PAUSE_MAX_SECONDS)
            elif not keep:
                self._acked.update(tracked)  # given up for good: nothing to keep
            self._wake.notify()
        if not keep:
            super()._fail(error, items)
            return
        if pause is not None:
            message = "%d messages stay in the spool %s after: %s; retrying in %.0f s"
            _logger.warning(message, len(tracked), self._path, error, pause)
        elif self._closing and tracked:
            _logger.info("%d messages stay in the spool %s: %s", len(tracked), self._path, error)
        untracked = [item for item, rowid in zip(items, rowids, strict=True) if rowid is None]
        if untracked:  # queued in memory only, during shutdown
            super()._fail(error, untracked)

    def _worth_keeping(self, error: Exception) -> bool:
        if isinstance(error, ShutdownError):
            return True
        return isinstance(error, DeliveryError) and self._policy.is_retryable(error.status)

    # -- the spool writer thread ---------------------------------------------------

    def _write_loop(self) -> None:
        _IN_PIPELINE.set(True)
        try:
            while self._write_once():
                pass
        except Exception as exc:  # a disk error, or a bug of ours: go on in memory
            _logger.exception("the spool %s failed; going on without it", self._path)
            self._degrade(exc)

    def _write_once(self) -> bool:
        """One cycle: wait, commit, report drops, feed memory. ``False`` once stopped."""
        with self._wlock:
            self._wait_for_work()
            items, self._pending = self._pending, []
            acked, self._acked = self._acked, set()
            stop = self._stop
            self._rewind_if_due()
        spool = self._spool
        if spool is None:
            return False
        try:
            if not items and not acked:
                written = None
            else:
                protect = self._held_now() if _may_overflow(spool, items) else ()
                written = spool.write(items, delete=acked, protect=protect)
        except SpoolError:
            with self._wlock:
                self._pending[:0] = items  # not committed: back in front, memory only
            raise
        with self._wlock:
            self._written += len(items)
            self._last_id, self._spooled = spool.last_id, spool.count
            self._changed.notify_all()
        if written is not None and written.dropped:
            self._report_full(written)
        if stop:
            spool.close()
            return False
        if written is None:
            self._feed(spool, [], [])
        else:
            self._feed(spool, written.ids, items[len(written.refused) :])
        return True

    def _wait_for_work(self) -> None:
        """Wait until a commit is due, rows can be fed, a rewind is due, or stop (lock held)."""
        first: float | None = None
        while not self._stop:
            now = time.monotonic()
            timeout = None
            if self._pending or self._acked:
                if self._urgent or len(self._pending) >= WRITE_MAX_MESSAGES:
                    return
                first = now if first is None else first
                if now - first >= WRITE_INTERVAL_SECONDS:
                    return
                timeout = first + WRITE_INTERVAL_SECONDS - now
            if self._can_feed():
                return
            if self._rewind_at is not None and not self._urgent and not self._closing:
                if now >= self._rewind_at:
                    return
                timeout = min(timeout or math.inf, self._rewind_at - now)
            self._wake.wait(timeout)

    def _can_feed(self) -> bool:
        """Whether committed rows wait on disk and the workers' queue has room for them."""
        return (
            self._fed_to < self._last_id
            and len(self._queue) < self._max_queue_size
            and (not self._closing or self._urgent > 0)
        )

    def _rewind_if_due(self) -> None:
        """Feed given-up rows again once their pause is over (lock held)."""
        rewind_at, parked = self._rewind_at, self._parked_min
        if rewind_at is None or self._urgent or self._closing or time.monotonic() < rewind_at:
            return
        if parked is not None:
            self._fed_to = min(self._fed_to, parked - 1)
        self._parked_min = self._rewind_at = None

    def _held_now(self) -> set[int]:
        """Rows that must survive an eviction: in memory, or acknowledged (snapshot)."""
        with self._wlock:
            return self._held | self._acked

    def _feed(self, spool: Spool, ids: list[int], stored: list[bytes]) -> None:
        """Move committed rows, oldest first, into the workers' queue while it has room."""
        if not self._can_feed():
            return
        room = self._max_queue_size - len(self._queue)
        if ids and self._fed_to == ids[0] - 1:  # no backlog: the rows just written
            rows = list(zip(ids[:room], stored[:room], strict=True))
        else:
            rows = spool.load(after=self._fed_to, limit=room)
        batch: list[bytes] = []
        with self._wlock:
            for rowid, data in rows:
                if rowid in self._held or rowid in self._acked:
                    continue
                item = data if id(data) not in self._rowid_of else bytes(memoryview(data))
                self._rowid_of[id(item)] = rowid
                self._held.add(rowid)
                batch.append(item)
        if batch:
            self._extend(batch)
        with self._wlock:
            self._fed_to = rows[-1][0] if rows else self._last_id
            self._changed.notify_all()

    def _report_full(self, written: Written) -> None:
        """Count and report the messages the size bound dropped."""
        dropped = written.evicted + written.refused
        self._count(dropped=len(dropped))
        error = SpoolFullError(f"spool full; {len(dropped)} oldest messages dropped")
        now = time.monotonic()
        if now - self._last_drop_warning >= _DROP_WARNING_INTERVAL_SECONDS:
            self._last_drop_warning = now
            _logger.warning("%s (%s)", error, self._path)
        self._report(error, dropped)

    def _degrade(self, error: Exception) -> None:
        """The spool failed: deliver from memory only from now on."""
        with self._wlock:
            spool, self._spool = self._spool, None  # callers now queue in memory
            items, self._pending = self._pending, []
        if items:
            _logger.warning("%d queued messages kept in memory only: %s", len(items), error)
            self._extend(items)
        with self._wlock:  # only now: a flush waiting must see these messages queued
            self._in_memory = True
            self._changed.notify_all()
        if spool is not None:
            try:
                spool.close()
            except Exception:  # the spool is already broken; closing is best effort
                _logger.debug("closing the failed spool raised", exc_info=True)

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


def _may_overflow(spool: Spool, items: list[bytes]) -> bool:
    return spool.total_bytes + sum(map(len, items)) > spool.max_bytes


def _deadline(timeout: float | None) -> float | None:
    return None if timeout is None else time.monotonic() + timeout


def _remaining(deadline: float | None) -> float | None:
    return None if deadline is None else max(deadline - time.monotonic(), 0.0)
