"""
Whether code runs inside the pipeline's own delivery: the guard against feedback loops.

A worker, the spool writer, a sync send and every ``on_error`` call run inside the
pipeline. Sources check :func:`in_pipeline` so that the pipeline's own logs and HTTP
calls never become messages, and ``flush()`` refuses to wait on itself. The pipeline's
threads also keep the process's signals away from themselves (:func:`block_signals`).
Standard library only.
"""

from __future__ import annotations

import contextlib
import contextvars
import signal
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["block_signals", "in_pipeline", "inside_pipeline", "mark_pipeline_thread"]

_IN_PIPELINE: Final = contextvars.ContextVar("otel_segment_in_pipeline", default=False)

# Signals a process gets from outside, which a program may handle.
_PROCESS_SIGNALS: Final = tuple(
    getattr(signal, name)
    for name in ("SIGTERM", "SIGINT", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGALRM")
    if hasattr(signal, name)
)


def in_pipeline() -> bool:
    """Whether this code runs inside the pipeline's own delivery (a worker or a sync send)."""
    return _IN_PIPELINE.get()


def mark_pipeline_thread() -> None:
    """Mark the current thread (one the pipeline started) as inside the pipeline for good."""
    _IN_PIPELINE.set(True)
    block_signals()


def block_signals() -> None:
    """
    Keep the process's signals (SIGTERM, SIGINT ...) off the current thread (one of ours).

    The kernel hands a signal to any thread that does not block it, and Python runs its
    handler only when the main thread next runs Python code. Should the signal land on
    one of our threads while the main thread waits in a lock that nothing releases (a
    multiprocessing worker that ``Pool.terminate()`` ends), the handler would never run.
    """
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_BLOCK, _PROCESS_SIGNALS)


@contextlib.contextmanager
def inside_pipeline() -> Iterator[None]:
    """Run the block as inside the pipeline (a send on a caller's thread)."""
    token = _IN_PIPELINE.set(True)
    try:
        yield
    finally:
        _IN_PIPELINE.reset(token)
