"""
Where queued messages wait for the workers: the backlog interface, and the memory backlog.

The batching processor (:mod:`otel_segment.pipeline.batching`) owns *when* a batch goes:
its workers, triggers, flush and shutdown. A backlog owns *where* messages wait and what
happens to a batch after its delivery: the processor takes a :class:`Batch`, sends it, and
settles it with its outcome. It never knows which backlog it has: :class:`MemoryBacklog`
(a bounded deque) or :class:`~otel_segment.pipeline.spooled.SpoolBacklog` (an SQLite file
behind a memory window, whose items carry their spool row ids as handles).

The processor's lock guards a backlog's memory (the calls marked "lock held"); the
processor is the backlog's :class:`Host`.
"""

from __future__ import annotations

import collections
import dataclasses
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import threading
    from collections.abc import Callable, Sequence

__all__ = ["Backlog", "Batch", "Host", "MemoryBacklog", "cut"]


@dataclasses.dataclass(frozen=True, slots=True)
class Batch:
    """
    Messages taken together for one request.

    Attributes:
        items: The encoded messages, oldest first.
        handles: What the backlog needs to settle each item (spool row ids, ``0`` for
            an item held in memory only), parallel to *items*; empty for a memory backlog.
    """

    items: list[bytes]
    handles: list[int] = dataclasses.field(default_factory=list)


class Host(Protocol):
    """What a backlog may ask of the processor that drains it."""

    @property
    def lock(self) -> threading.Lock:
        """The lock that guards the backlog's memory (new in a forked child)."""
        ...

    def wake(self) -> None:
        """Messages were fed to memory: start a worker on them (lock held)."""
        ...

    def dropped(self, error: Exception, items: list[bytes]) -> None:
        """Count and report messages the backlog had to drop."""
        ...


class Backlog(Protocol):
    """The storage behind a batching processor's workers (see the module docstring)."""

    def attach(self, host: Host, *, flush_at: int, batch_budget: int) -> None:
        """Be drained by *host*: wake it at *flush_at* messages or *batch_budget* bytes."""
        ...

    def put(self, data: bytes) -> bool | None:
        """Accept one message (lock held): ``None`` if full, else whether to wake a worker."""
        ...

    def put_all(self, items: Sequence[bytes]) -> bool | None:
        """Accept all of *items* or none (lock held): ``None`` if they do not all fit."""
        ...

    def __len__(self) -> int:
        """Messages waiting in memory for a worker (lock held)."""
        ...

    @property
    def queued_bytes(self) -> int:
        """Their sizes, plus one comma each (lock held)."""
        ...

    def take(self, budget: int) -> Batch:
        """Cut the oldest messages that fit *budget* bytes; at least one (lock held)."""
        ...

    def take_all(self) -> Batch:
        """Take every message waiting in memory (lock held)."""
        ...

    def settle(self, batch: Batch, error: Exception | None) -> list[bytes]:
        """Record *batch*'s outcome (``None``: accepted); return the items failed for good."""
        ...

    def flush(self, flush_memory: Callable[[float | None], bool], timeout: float | None) -> bool:
        """Flush, using *flush_memory* to wait until what is in memory is settled."""
        ...

    def close(self, close_memory: Callable[[float | None], bool], timeout: float | None) -> bool:
        """Shut down within *timeout*, using *close_memory* to stop the processor."""
        ...

    def wait_durable(self, timeout: float | None) -> bool:
        """Wait until everything accepted is durable; ``True`` at once if nothing can be."""
        ...

    def stats(self, counts: dict[str, int]) -> None:
        """Add the backlog's own figures to the processor's *counts*."""
        ...

    def after_fork(self) -> None:
        """In a forked child: start empty, in memory, with nothing of the parent's."""
        ...


def cut(queue: collections.deque[bytes], budget: int) -> tuple[list[bytes], int]:
    """Pop the longest run of *queue* that fits *budget* bytes (one at least); its size."""
    items = [queue.popleft()]
    size = len(items[0])
    while queue and size + len(queue[0]) + 1 <= budget:
        item = queue.popleft()
        size += len(item) + 1
        items.append(item)
    return items, size


class MemoryBacklog:
    """
    A bounded deque: what a process does not deliver is lost when it ends.

    Args:
        max_queue_size: Messages held at most; beyond, :meth:`put` refuses.
    """

    def __init__(self, max_queue_size: int) -> None:
        self._max_queue_size = max_queue_size
        self._flush_at = 1
        self._budget = 0
        self._queue: collections.deque[bytes] = collections.deque()
        self._bytes = 0

    def attach(self, host: Host, *, flush_at: int, batch_budget: int) -> None:
        """Wake *host*'s workers at *flush_at* messages or past *batch_budget* bytes."""
        del host  # fed by callers only, through the host's put
        self._flush_at, self._budget = flush_at, batch_budget

    def put(self, data: bytes) -> bool | None:
        """Append *data* (lock held); ``None`` if full, else whether a trigger was crossed."""
        queue = self._queue
        queued = len(queue)
        if queued >= self._max_queue_size:
            return None
        queue.append(data)
        before = self._bytes
        self._bytes = after = before + len(data) + 1
        return queued == 0 or queued + 1 == self._flush_at or before <= self._budget < after

    def put_all(self, items: Sequence[bytes]) -> bool | None:
        """Append all of *items* (lock held), or none: ``None`` if they do not all fit."""
        queue = self._queue
        if len(queue) + len(items) > self._max_queue_size:
            return None
        queue.extend(items)
        self._bytes += sum(map(len, items)) + len(items)
        return True

    def __len__(self) -> int:
        """Messages waiting."""
        return len(self._queue)

    @property
    def queued_bytes(self) -> int:
        """Their sizes, plus one comma each."""
        return self._bytes

    def take(self, budget: int) -> Batch:
        """Cut the oldest messages that fit *budget* bytes."""
        items, size = cut(self._queue, budget)
        self._bytes -= size + 1
        return Batch(items)

    def take_all(self) -> Batch:
        """Take every message waiting."""
        items = list(self._queue)
        self._queue.clear()
        self._bytes = 0
        return Batch(items)

    def settle(self, batch: Batch, error: Exception | None) -> list[bytes]:
        """Nothing is kept: a batch given up fails for good."""
        return [] if error is None else batch.items

    def flush(self, flush_memory: Callable[[float | None], bool], timeout: float | None) -> bool:
        """Memory is all there is."""
        return flush_memory(timeout)

    def close(self, close_memory: Callable[[float | None], bool], timeout: float | None) -> bool:
        """Memory is all there is."""
        return close_memory(timeout)

    def wait_durable(self, timeout: float | None) -> bool:
        """Nothing is ever durable here: ``True`` at once."""
        del timeout
        return True

    def stats(self, counts: dict[str, int]) -> None:
        """No figures of its own."""

    def after_fork(self) -> None:
        """The parent's messages stay the parent's."""
        self._queue = collections.deque()
        self._bytes = 0
