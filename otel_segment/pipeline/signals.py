"""
Opt-in: drain every client when the process gets a signal, then let the signal do its work.

Python's default action for SIGTERM ends the process at once: no ``atexit`` hook runs, and
the messages still queued are lost without a count or a word. ``with multiprocessing.Pool()``
ends its workers that way. :func:`drain_on_signals` installs a handler that drains first
(each client within its ``exit_timeout``) and then hands the signal on to the handler
that was there before, or to the default action. A forked child (a pool worker) inherits it.
"""

from __future__ import annotations

import os
import signal
import threading
from typing import TYPE_CHECKING, Final

from otel_segment.pipeline import lifecycle
from otel_segment.pipeline.guard import block_signals

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from types import FrameType

    _Handler = Callable[[int, FrameType | None], object] | int | signal.Handlers

__all__ = ["drain_on_signals"]

_DRAIN_GRACE_SECONDS: Final = 1.0  # on top of the clients' exit timeouts

# What each signal did before drain_on_signals() took it over.
_PREVIOUS: Final[dict[int, _Handler]] = {}
_WATCHING: Final[list[bool]] = []  # whether multiprocessing workers watch for signals


def drain_on_signals(signals: Iterable[int] = (signal.SIGTERM, signal.SIGINT)) -> None:
    """
    Drain every client when one of *signals* arrives, then hand the signal on.

    When the signal would end the process (its default action), every client is shut
    down first, so what cannot be delivered within ``exit_timeout`` is counted and
    reported as at exit. When a handler of the program's own was installed before
    (e.g. Python's ``KeyboardInterrupt`` for SIGINT), the clients are flushed instead
    (the program may go on) and that handler is called. An ignored signal stays ignored,
    after the flush. Calling this again is harmless.

    Call it from the main thread, before starting worker processes: a forked child, such
    as a ``multiprocessing`` pool worker that ``Pool.terminate()`` ends with SIGTERM,
    inherits the handler.

    Args:
        signals: The signals to take over.

    Raises:
        ValueError: A number is not a signal, or this is not the main thread.

    .. versionadded:: 0.2.0
    """
    for number in signals:
        which = signal.Signals(number)
        previous = signal.getsignal(which)
        if previous is _on_signal:
            continue
        signal.signal(which, _on_signal)
        _PREVIOUS[which] = signal.SIG_DFL if previous is None else previous
    if not _WATCHING:
        _WATCHING.append(True)
        lifecycle.in_multiprocessing_worker(_watch_in_worker)


def _on_signal(number: int, frame: FrameType | None) -> None:
    # A drain under way (at exit, in a multiprocessing worker's last act, or for an earlier
    # signal) may be the very code this handler interrupted: the signal waits for its end.
    if lifecycle.when_drained(lambda: _hand_on(number, None)):
        return
    previous = _PREVIOUS.get(number, signal.SIG_DFL)
    _drain(close=previous == signal.SIG_DFL)
    _hand_on(number, frame)


def _hand_on(number: int, frame: FrameType | None) -> None:
    """Do what the signal did before: call the old handler, ignore it, or end the process."""
    previous = _PREVIOUS.get(number, signal.SIG_DFL)
    if callable(previous):
        previous(number, frame)
    elif previous != signal.SIG_IGN:  # the default action: end the process as it would have
        signal.signal(number, signal.SIG_DFL)
        os.kill(os.getpid(), number)


def _drain(*, close: bool) -> None:
    """
    Drain on a thread of its own, and wait for it within the clients' exit timeouts.

    The handler runs on the main thread between two of its bytecodes, perhaps while it
    holds one of the pipeline's locks: draining there could wait on itself for ever.
    """
    drainer = threading.Thread(
        target=_drain_here,
        kwargs={"close": close},
        name="otel_segment-signal-drain",
        daemon=True,
    )
    try:
        drainer.start()
    except RuntimeError:  # at interpreter exit no thread starts: drain here
        lifecycle.drain_all(close=close)
        return
    drainer.join(lifecycle.exit_timeouts() + _DRAIN_GRACE_SECONDS)


def _drain_here(*, close: bool) -> None:
    block_signals()
    lifecycle.drain_all(close=close)


def _watch_in_worker() -> None:
    """
    In a multiprocessing worker: take the signals whose default ends it on a thread.

    A pool worker waits for tasks in a lock that ``Pool.terminate()`` never releases, and
    there CPython does not always run a Python handler for the SIGTERM that follows (about
    1 in 50, with any handler): the worker, and the pool's ``__exit__``, would wait for
    ever. So the worker blocks those signals and a thread waits for them with
    ``sigwait``, drains, and ends the worker by the signal's default action.
    """
    taken = {number for number, then in _PREVIOUS.items() if then == signal.SIG_DFL}
    if not taken or not hasattr(signal, "pthread_sigmask"):
        return
    for number in taken:
        signal.signal(number, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_BLOCK, taken)  # threads started later inherit it
    watcher = threading.Thread(
        target=_wait_for, args=(taken,), name="otel_segment-signals", daemon=True
    )
    watcher.start()


def _wait_for(taken: set[int]) -> None:
    number = signal.sigwait(taken)
    if not lifecycle.when_drained(lambda: _end_by(number)):  # else a drain is under way
        lifecycle.drain_all()
        _end_by(number)


def _end_by(number: int) -> None:
    """End the process by *number*'s default action (this thread lets it through)."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {number})
    os.kill(os.getpid(), number)
