"""
Lifecycle helpers the pipeline's parts share: deadlines for ``timeout`` arguments, and fork.

Standard library only.
"""

from __future__ import annotations

import os
import time
import weakref
from typing import Final, Protocol

__all__ = ["deadline_after", "forget_at_fork", "remaining", "reset_at_fork"]


class _ForkAware(Protocol):
    def _after_fork_in_child(self) -> None: ...


# Every object to reset in a forked child, so that one fork hook reaches them all.
_LIVE: Final[weakref.WeakSet[_ForkAware]] = weakref.WeakSet()


def deadline_after(timeout: float | None) -> float | None:
    """The ``time.monotonic()`` at which *timeout* seconds from now run out (``None``: never)."""
    return None if timeout is None else time.monotonic() + timeout


def remaining(deadline: float | None) -> float | None:
    """Seconds left until *deadline*, at least 0 (``None``: no deadline)."""
    return None if deadline is None else max(deadline - time.monotonic(), 0.0)


def reset_at_fork(target: _ForkAware) -> None:
    """Have a forked child call ``target._after_fork_in_child()``; *target* is held weakly."""
    _LIVE.add(target)


def forget_at_fork(target: _ForkAware) -> None:
    """Leave *target* alone in a forked child from now on."""
    _LIVE.discard(target)


def _reset_all_in_child() -> None:
    for target in list(_LIVE):
        target._after_fork_in_child()  # noqa: SLF001 - the registry's own hook


os.register_at_fork(after_in_child=_reset_all_in_child)
