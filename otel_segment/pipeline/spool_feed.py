"""
The writer half of :class:`~otel_segment.pipeline.spooled.SpoolBacklog`: its thread and outcomes.

Callers append encoded messages to ``_pending``; the writer thread commits them to the
:class:`~otel_segment.pipeline.spool.Spool` in one transaction per :data:`WRITE_INTERVAL_SECONDS`
or :data:`WRITE_MAX_MESSAGES`, then feeds committed rows, oldest first, into the memory
window the workers take batches from, each item with its row id as its handle. The
batches' outcomes come back through :meth:`SpoolFeed.settle`: an accepted batch's rows
are deleted at the next commit; a batch given up after a retryable failure stays spooled
and its rows are fed again after a pause. The spool state is guarded by ``_wlock``; the
window by the host's lock, always taken first.
"""

from __future__ import annotations

import collections
import logging
import math
import threading
import time
from typing import TYPE_CHECKING, Final

from otel_segment.errors import DeliveryError, ShutdownError, SpoolError, SpoolFullError
from otel_segment.pipeline.guard import mark_pipeline_thread
from otel_segment.pipeline.spool import Spool, Written

if TYPE_CHECKING:
    from collections.abc import Collection

    from otel_segment.pipeline.backlogs import Batch, Host
    from otel_segment.pipeline.retry import RetryPolicy

__all__ = ["WRITE_INTERVAL_SECONDS", "WRITE_MAX_MESSAGES", "SpoolFeed"]

_logger = logging.getLogger("otel_segment")

WRITE_INTERVAL_SECONDS: Final = 0.05
"""A queued message is committed to the spool at most this long after the call returned."""

WRITE_MAX_MESSAGES: Final = 1000
"""...or as soon as this many messages wait to be committed, whichever comes first."""

_PAUSE_MIN_SECONDS: Final = 1.0
_PAUSE_MAX_SECONDS: Final = 60.0


class SpoolFeed:
    """
    A spool, its writer thread, and the memory window it feeds.

    The half that faces the processor (put, flush, close) is
    :class:`~otel_segment.pipeline.spooled.SpoolBacklog`; it starts :meth:`_write_loop`.

    Args:
        spool: The open spool; owned from now on, closed at shutdown.
        policy: Which failures are worth keeping a batch spooled for.
        max_queue_size: Messages held in memory at most (and waiting to be committed).
    """

    _host: Host

    def __init__(self, spool: Spool, *, policy: RetryPolicy, max_queue_size: int) -> None:
        self._policy = policy
        self._max_queue_size = max_queue_size
        self._owned: Final = spool
        self._init_spool_state(spool)

    def _init_spool_state(self, spool: Spool | None) -> None:
        """Fresh spool-side state: at construction, and in a forked child (no spool)."""
        # the memory window, guarded by the host's lock: items and their row ids (0: none)
        self._window: collections.deque[bytes] = collections.deque()
        self._handles: collections.deque[int] = collections.deque()
        self._window_bytes = 0
        self._spool = spool
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
        self._held: set[int] = set()  # rows in memory: queued or being sent
        self._acked: set[int] = set()  # rows to delete at the next commit
        self._parked_min: int | None = None  # lowest row id given up since the last rewind
        self._rewind_at: float | None = None
        self._pause = _PAUSE_MIN_SECONDS
        self._urgent = 0  # callers waiting for a commit: write now, do not rewind
        self._closing = False
        self._stop = False

    # -- outcomes, from the workers ------------------------------------------------

    def settle(self, batch: Batch, error: Exception | None) -> list[bytes]:
        """
        Record a batch's outcome; return the items failed for good.

        An accepted batch's rows are deleted at the next commit. After a retryable
        failure the rows stay spooled, to be fed again after a pause; a batch refused for
        good fails as without a spool, and its rows are deleted.
        """
        handles = batch.handles or [0] * len(batch.items)
        if error is None:
            self._acknowledged(handles)
            return []
        spool = self._spool
        keep = spool is not None and self._worth_keeping(error)
        tracked = [rowid for rowid in handles if rowid]
        pause = self._park(tracked, keep=keep)
        if spool is None or not keep:
            return batch.items
        if pause is not None:
            message = "%d messages stay in the spool %s after: %s; retrying in %.0f s"
            _logger.warning(message, len(tracked), spool.path, error, pause)
        elif self._closing and tracked:
            _logger.info("%d messages stay in the spool %s: %s", len(tracked), spool.path, error)
        # items without a row were queued in memory only, during shutdown
        return [item for item, rowid in zip(batch.items, handles, strict=True) if not rowid]

    def _acknowledged(self, rowids: list[int]) -> None:
        """Mark the rows of an accepted batch for deletion; the endpoint is back."""
        with self._wlock:
            held, acked = self._held, self._acked
            for rowid in rowids:
                if rowid:
                    held.discard(rowid)
                    acked.add(rowid)
            self._pause = _PAUSE_MIN_SECONDS
            if self._parked_min is not None:
                self._rewind_at = time.monotonic()
            self._wake.notify()

    def _park(self, tracked: list[int], *, keep: bool) -> float | None:
        """Keep the *tracked* rows for a rewind, or drop them; the pause, if one starts."""
        with self._wlock:
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
        return pause

    def _worth_keeping(self, error: Exception) -> bool:
        if isinstance(error, ShutdownError):
            return True
        return isinstance(error, DeliveryError) and self._policy.is_retryable(error.status)

    # -- the writer thread ---------------------------------------------------------

    def _write_loop(self, spool: Spool) -> None:
        """The writer thread: commit and feed until stopped; on a spool error, degrade."""
        mark_pipeline_thread()
        try:
            while self._write_once(spool):
                pass
        except Exception as exc:  # a disk error, or a bug of ours: go on in memory
            _logger.exception("the spool %s failed; going on without it", spool.path)
            self._degrade(spool, exc)

    def _write_once(self, spool: Spool) -> bool:
        """One cycle: wait, commit, report drops, feed memory. ``False`` once stopped."""
        with self._wlock:
            self._wait_for_work()
            items, self._pending = self._pending, []
            acked, self._acked = self._acked, set()
            stop = self._stop
            self._rewind_if_due()
        written = self._commit(spool, items, acked)
        if stop:
            spool.close()
            return False
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
            and len(self._window) < self._max_queue_size
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

    def _commit(self, spool: Spool, items: list[bytes], acked: Collection[int]) -> Written:
        """Append *items* and delete the *acked* rows, in one transaction if there are any."""
        try:
            if not items and not acked:
                written = Written([], [], [])
            else:
                may_overflow = spool.total_bytes + sum(map(len, items)) > spool.max_bytes
                protect = self._held_now() if may_overflow else ()
                written = spool.write(items, delete=acked, protect=protect)
        except SpoolError:
            with self._wlock:
                self._pending[:0] = items  # not committed: back in front, memory only
            raise
        with self._wlock:
            self._written += len(items)
            self._last_id, self._spooled = spool.last_id, spool.count
            self._changed.notify_all()
        if written.dropped:
            dropped = written.evicted + written.refused
            reason = f"spool {spool.path} full; {len(dropped)} oldest messages dropped"
            self._host.dropped(SpoolFullError(reason), dropped)
        return written

    def _held_now(self) -> set[int]:
        """Rows that must survive an eviction: in memory, or acknowledged (snapshot)."""
        with self._wlock:
            return self._held | self._acked

    def _feed(self, spool: Spool, ids: list[int], stored: list[bytes]) -> None:
        """Move committed rows, oldest first, into the workers' queue while it has room."""
        if not self._can_feed():
            return
        room = self._max_queue_size - len(self._window)
        if ids and self._fed_to == ids[0] - 1:  # no backlog: the rows just written
            rows = list(zip(ids[:room], stored[:room], strict=True))
        else:
            rows = spool.load(after=self._fed_to, limit=room)
        items: list[bytes] = []
        handles: list[int] = []
        with self._wlock:
            for rowid, data in rows:
                if rowid in self._held or rowid in self._acked:
                    continue
                self._held.add(rowid)
                items.append(data)
                handles.append(rowid)
        if items:
            self._to_memory(items, handles)
        with self._wlock:
            self._fed_to = rows[-1][0] if rows else self._last_id
            self._changed.notify_all()

    def _degrade(self, spool: Spool, error: Exception) -> None:
        """The spool failed: deliver from memory only from now on."""
        with self._wlock:
            self._spool = None  # callers now queue in memory
            items, self._pending = self._pending, []
        if items:
            _logger.warning("%d queued messages kept in memory only: %s", len(items), error)
            self._to_memory(items, [0] * len(items))
        with self._wlock:  # only now: a flush waiting must see these messages queued
            self._in_memory = True
            self._changed.notify_all()
        try:
            spool.close()
        except Exception:  # the spool is already broken; closing is best effort
            _logger.debug("closing the failed spool raised", exc_info=True)

    def _to_memory(self, items: list[bytes], handles: list[int]) -> None:
        """Put items in the window past its bound (already counted) and wake a worker."""
        with self._host.lock:
            self._window.extend(items)
            self._handles.extend(handles)
            self._window_bytes += sum(map(len, items)) + len(items)
            self._host.wake()
