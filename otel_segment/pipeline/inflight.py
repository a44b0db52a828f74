"""
The ledger of batches being sent: what ``flush()`` waits for, what a deadline writes off.

Every message taken from a backlog gets a sequence number; a batch is known by the number
of its first message. :meth:`InFlight.low_water` is the number below which every message
is settled, so ``flush()`` waits for it to pass a target. When a batch's request ends,
its worker *claims* its outcome; at a shutdown deadline the batches not claimed are
*written off* (reported as of unknown delivery): each batch is settled exactly once. The
processor's lock guards the ledger. Standard library only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from otel_segment.pipeline.backlogs import Batch

__all__ = ["OVERLAP_AFTER_SECONDS", "InFlight"]

OVERLAP_AFTER_SECONDS: Final = 0.004
"""How long the latest request is under way before another may start beside it."""


class InFlight:
    """Batches taken and not yet settled, by the sequence number of their first message."""

    def __init__(self) -> None:
        self._taken = 0
        self._started_at = 0.0
        self._batches: dict[int, Batch] = {}
        self._claimed: set[int] = set()
        self._written_off: set[int] = set()

    def __len__(self) -> int:
        """Batches being sent."""
        return len(self._batches)

    @property
    def taken(self) -> int:
        """Messages ever taken from the backlog (sent, or failed at shutdown)."""
        return self._taken

    def add(self, batch: Batch, now: float) -> int:
        """Number *batch*, taken at *now*, and hold it until :meth:`done`; its number."""
        self._started_at = now
        start = self._taken
        self._taken += len(batch.items)
        self._batches[start] = batch
        return start

    def skip(self, count: int) -> None:
        """Number *count* messages settled at once (failed at shutdown)."""
        self._taken += count

    def claim(self, start: int) -> bool:
        """The request of batch *start* ended: settle it, unless it was written off."""
        if start in self._written_off:
            return False
        self._claimed.add(start)
        return True

    def done(self, start: int) -> None:
        """The batch *start* is settled (or written off): forget it."""
        del self._batches[start]
        self._claimed.discard(start)
        self._written_off.discard(start)

    def overlap_wait(self, now: float) -> float:
        """
        Seconds until another request may start beside those under way (<= 0: now).

        Requests overlap to hide the network's latency. One answered within
        :data:`OVERLAP_AFTER_SECONDS` gains nothing from a second beside it, as both take
        the GIL, and two workers trading the GIL starve a waiting event loop for up to
        CPython's 5 ms switch interval.
        """
        if not self._batches:
            return 0.0
        return self._started_at + OVERLAP_AFTER_SECONDS - now

    def low_water(self) -> int:
        """The sequence number below which every message is settled."""
        return min(self._batches, default=self._taken)

    def write_off(self) -> list[Batch]:
        """The batches still being sent (neither claimed nor written off): written off now."""
        settled = self._claimed | self._written_off
        fresh = [start for start in self._batches if start not in settled]
        self._written_off.update(fresh)
        return [self._batches[start] for start in fresh]
