"""
When the next batch goes.

``flush_at``, ``flush_interval``, the batch's byte budget, and the spacing of requests
that overlap. The processor asks under its lock. Standard library only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from otel_segment.pipeline.backlogs import Backlog
    from otel_segment.pipeline.inflight import InFlight

__all__ = ["Pacing"]


class Pacing:
    """
    When a backlog's next batch may be cut.

    Args:
        flush_at: A batch is due once this many messages wait and no request is under way.
        flush_interval: A batch is due once its oldest message waited this many seconds.
        batch_budget: A batch is due once more bytes than one batch holds wait.
    """

    __slots__ = ("_batch_budget", "_first_at", "_flush_at", "_flush_interval")

    def __init__(self, flush_at: int, flush_interval: float, batch_budget: int) -> None:
        self._flush_at = flush_at
        self._flush_interval = flush_interval
        self._batch_budget = batch_budget
        self._first_at: float | None = None

    def wait(self, now: float, backlog: Backlog, inflight: InFlight, *, urgent: bool) -> float:
        """
        Seconds until the next batch of a backlog that is not empty may be cut (<= 0: now).

        A batch is due when *urgent* (a flush or shutdown), when its oldest message waited
        ``flush_interval``, when a full batch (by bytes) waits, or when ``flush_at``
        messages wait and no request is under way: while one is, messages pile up and
        leave together in the next, larger batch. Full batches make several requests
        overlap for slow endpoints; a due batch starts once
        :meth:`~otel_segment.pipeline.inflight.InFlight.overlap_wait` allows it.
        """
        if self._first_at is None:
            self._first_at = now
        due = self._first_at + self._flush_interval
        if (
            urgent
            or now >= due
            or backlog.queued_bytes > self._batch_budget
            or (len(backlog) >= self._flush_at and not inflight)
        ):
            return inflight.overlap_wait(now)
        return due - now

    def cut(self, now: float, *, more: bool) -> None:
        """A batch was cut at *now*; with *more* waiting, their clock starts now."""
        self._first_at = now if more else None

    def restart(self) -> None:
        """Nothing waits (a forked child's empty backlog)."""
        self._first_at = None
