"""
Callbacks run every so many seconds on one daemon thread per client.

Used by ``@snapshot``: each client has at most one timer thread, whatever the number of
periodic callbacks, started when the first one is added. Each callback runs once more
when the timer stops (at client shutdown), so a final state is reported.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from typing import TYPE_CHECKING

from otel_segment.pipeline.guard import block_signals
from otel_segment.pipeline.lifecycle import reset_at_fork

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["Periodic"]

_logger = logging.getLogger("otel_segment")


@dataclasses.dataclass(slots=True)
class _Task:
    every: float
    callback: Callable[[], object]
    due: float
    cancelled: bool = False


class Periodic:
    """A timer thread running callbacks at fixed intervals."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._tasks: list[_Task] = []
        self._thread: threading.Thread | None = None
        self._stopped = False
        reset_at_fork(self)

    def _after_fork_in_child(self) -> None:
        """
        Start the child empty, with a fresh lock.

        A lock held by a parent's thread at fork would never be released. The parent's
        callbacks stay the parent's: a snapshot describes the installation, and every
        forked worker re-sending it would only duplicate it.
        """
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._tasks = []
        self._thread = None  # not running here; add() starts one

    def add(self, every: float, callback: Callable[[], object]) -> Callable[[], None]:
        """
        Run *callback* every *every* seconds (first after *every*), and once at stop.

        Returns:
            A function that cancels the callback.

        Raises:
            RuntimeError: If the timer was stopped.
        """
        task = _Task(every, callback, time.monotonic() + every)
        with self._lock:
            if self._stopped:
                raise RuntimeError("the client was shut down; no new periodic callbacks")
            self._tasks.append(task)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="otel_segment-periodic", daemon=True
                )
                self._thread.start()
            self._changed.notify()

        def cancel() -> None:
            with self._lock:
                task.cancelled = True
                if task in self._tasks:
                    self._tasks.remove(task)

        return cancel

    def stop(self, timeout: float | None = None) -> None:
        """Stop the thread, then run every remaining callback once on this thread."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            tasks = list(self._tasks)
            self._tasks.clear()
            self._changed.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        for task in tasks:
            _call(task)

    def _run(self) -> None:
        block_signals()
        while True:
            with self._lock:
                while True:
                    if self._stopped:
                        return
                    now = time.monotonic()
                    due = [t for t in self._tasks if t.due <= now]
                    if due:
                        break
                    next_due = min((t.due for t in self._tasks), default=None)
                    self._changed.wait(None if next_due is None else next_due - now)
                for task in due:
                    task.due = now + task.every
            for task in due:
                if not task.cancelled:
                    _call(task)


def _call(task: _Task) -> None:
    try:
        task.callback()
    except Exception:
        _logger.exception("periodic callback %r raised", task.callback)
