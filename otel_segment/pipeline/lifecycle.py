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
import threading
import time
import weakref
from typing import Final, Protocol

__all__ = [
    "deadline_after",
    "drain_all",
    "drain_at_exit",
    "forget_at_exit",
    "forget_at_fork",
    "remaining",
    "reset_at_fork",
]

_logger = logging.getLogger("otel_segment")


class _ForkAware(Protocol):
    def _after_fork_in_child(self) -> None: ...


class _Drainable(Protocol):
    def shutdown(self, timeout: float | None = None) -> bool: ...


# Every object to reset in a forked child, so that one fork hook reaches them all.
_FORK_RESET: Final[weakref.WeakSet[_ForkAware]] = weakref.WeakSet()

# Every client to drain at exit, with its exit timeout (see the module docstring).
_EXIT_DRAIN: Final[dict[_Drainable, float]] = {}
_exit_lock = threading.Lock()


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


def drain_all() -> None:
    """Shut down every client not yet shut down, each within its exit timeout; never raises."""
    with _exit_lock:
        targets = list(_EXIT_DRAIN.items())
    for target, timeout in targets:
        try:
            target.shutdown(timeout)
        except Exception:
            _logger.exception("draining at exit failed")


# -- the fork registry -------------------------------------------------------------------


def reset_at_fork(target: _ForkAware) -> None:
    """Have a forked child call ``target._after_fork_in_child()``; *target* is held weakly."""
    _FORK_RESET.add(target)


def forget_at_fork(target: _ForkAware) -> None:
    """Leave *target* alone in a forked child from now on."""
    _FORK_RESET.discard(target)


def _reset_all_in_child() -> None:
    global _exit_lock  # noqa: PLW0603 - a lock a parent's thread held at the fork is dead here
    _exit_lock = threading.Lock()
    for target in list(_FORK_RESET):
        target._after_fork_in_child()  # noqa: SLF001 - the registry's own hook


atexit.register(drain_all)
os.register_at_fork(after_in_child=_reset_all_in_child)
