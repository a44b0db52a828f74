"""
The one home of process lifecycle state: deadlines, the exit registry and the fork registry.

- :func:`drain_at_exit`: clients not yet shut down, held strongly (a client the program
  dropped may still have messages queued), drained by one exit hook, each within its
  ``exit_timeout``. A forked child drains its own on its way out too, including a
  ``multiprocessing`` worker, which ends with ``os._exit`` and so skips ``atexit``.
- :func:`reset_at_fork`: pipeline parts (held weakly) that a forked child must reset,
  so that nothing a parent's thread held at the fork (a lock, a connection) is used.

Standard library only.
"""

from __future__ import annotations

import atexit
import logging
import os
import sys
import threading
import time
import weakref
from typing import TYPE_CHECKING, Final, Protocol

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "deadline_after",
    "drain_all",
    "drain_at_exit",
    "exit_timeouts",
    "forget_at_exit",
    "forget_at_fork",
    "in_multiprocessing_worker",
    "remaining",
    "reset_at_fork",
    "when_drained",
]

_logger = logging.getLogger("otel_segment")


class _ForkAware(Protocol):
    def _after_fork_in_child(self) -> None: ...


class _Drainable(Protocol):
    def shutdown(self, timeout: float | None = None) -> bool: ...

    def flush(self, timeout: float | None = None) -> bool: ...


class _Hook:
    """A weakly referable key for multiprocessing's after-fork registry."""


# Every object to reset in a forked child, so that one fork hook reaches them all.
_FORK_RESET: Final[weakref.WeakSet[_ForkAware]] = weakref.WeakSet()

# Every client to drain at exit, with its exit timeout (see the module docstring).
_EXIT_DRAIN: Final[dict[_Drainable, float]] = {}
_WHEN_DRAINED: Final[list[Callable[[], object]]] = []  # to run when the drain under way ends
_IN_WORKER: Final[list[Callable[[], object]]] = []  # to run as a multiprocessing worker starts
_exit_lock = threading.RLock()  # re-entrant: a signal handler may run while its thread holds it
_exit_drained = threading.Condition(_exit_lock)
_drainers: Final[list[int]] = []  # the threads of the drains under way
_MULTIPROCESSING_HOOK: Final = _Hook()


def deadline_after(timeout: float | None) -> float | None:
    """The ``time.monotonic()`` at which *timeout* seconds from now run out (``None``: never)."""
    return None if timeout is None else time.monotonic() + timeout


def remaining(deadline: float | None) -> float | None:
    """Seconds left until *deadline*, at least 0 (``None``: no deadline)."""
    return None if deadline is None else max(deadline - time.monotonic(), 0.0)


# -- the exit registry -------------------------------------------------------------------


def drain_at_exit(target: _Drainable, timeout: float) -> None:
    """Have the process call ``target.shutdown(timeout)`` on its way out (held strongly)."""
    with _exit_lock:
        _EXIT_DRAIN[target] = timeout


def forget_at_exit(target: _Drainable) -> None:
    """*target* was shut down: nothing to drain at exit."""
    with _exit_lock:
        _EXIT_DRAIN.pop(target, None)


def exit_timeouts() -> float:
    """Seconds :func:`drain_all` may take at most: the clients' exit timeouts together."""
    with _exit_lock:
        return sum(_EXIT_DRAIN.values())


def drain_all(*, close: bool = True) -> None:
    """
    Shut down every client not yet shut down, each within its exit timeout; never raises.

    A drain under way on another thread is waited for first (within the exit timeouts):
    a process that ends once this returns must not cut that one short.

    Args:
        close: ``False`` flushes them instead (a process that may live on, e.g. after
            a signal a handler of its own catches).
    """
    me = threading.get_ident()
    with _exit_drained:
        _exit_drained.wait_for(lambda: not set(_drainers) - {me}, exit_timeouts() + 1.0)
        targets = list(_EXIT_DRAIN.items())
        _drainers.append(me)
    try:
        for target, timeout in targets:
            try:
                if close:
                    target.shutdown(timeout)
                else:
                    target.flush(timeout)
            except Exception:
                _logger.exception("draining at exit failed")
    finally:
        with _exit_drained:
            _drainers.remove(me)
            _exit_drained.notify_all()
            callbacks = [] if _drainers else list(_WHEN_DRAINED)
            if not _drainers:
                _WHEN_DRAINED.clear()
        for callback in callbacks:
            callback()


def when_drained(callback: Callable[[], object]) -> bool:
    """
    Call *callback* once the drain under way ends, if one is (on any thread).

    Returns:
        Whether a drain was under way; if not, *callback* is not called.
    """
    with _exit_lock:
        if not _drainers:
            return False
        _WHEN_DRAINED.append(callback)
        return True


# -- the fork registry -------------------------------------------------------------------


def reset_at_fork(target: _ForkAware) -> None:
    """Have a forked child call ``target._after_fork_in_child()``; *target* is held weakly."""
    _FORK_RESET.add(target)


def forget_at_fork(target: _ForkAware) -> None:
    """Leave *target* alone in a forked child from now on."""
    _FORK_RESET.discard(target)


def _reset_all_in_child() -> None:
    global _exit_lock, _exit_drained  # noqa: PLW0603 - the parent's threads are gone
    _exit_lock = threading.RLock()
    _exit_drained = threading.Condition(_exit_lock)
    _drainers.clear()
    _WHEN_DRAINED.clear()
    for target in list(_FORK_RESET):
        target._after_fork_in_child()  # noqa: SLF001 - the registry's own hook
    if "multiprocessing.util" in sys.modules:  # this child may be a multiprocessing worker
        from multiprocessing import util  # noqa: PLC0415 - loaded already

        util.register_after_fork(_MULTIPROCESSING_HOOK, _start_worker)


def in_multiprocessing_worker(callback: Callable[[], object]) -> None:
    """Call *callback* on the main thread of each multiprocessing worker forked from now on."""
    _IN_WORKER.append(callback)


def _start_worker(_hook: _Hook) -> None:
    """
    In a multiprocessing worker: drain when it ends, for it ends with ``os._exit``.

    A worker runs multiprocessing's after-fork callbacks once it cleared the finalizers
    it inherited; its last act before ``os._exit`` is to run the finalizers registered
    since, this one among them (priority 0: after those of higher priority).
    """
    from multiprocessing import util  # noqa: PLC0415 - loaded already

    util.Finalize(None, drain_all, exitpriority=0)
    for callback in _IN_WORKER:
        callback()


atexit.register(drain_all)
os.register_at_fork(after_in_child=_reset_all_in_child)
