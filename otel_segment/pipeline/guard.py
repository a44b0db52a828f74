"""
Whether code runs inside the pipeline's own delivery: the guard against feedback loops.

A worker, the spool writer, a sync send and every ``on_error`` call run inside the
pipeline. Sources check :func:`in_pipeline` so that the pipeline's own logs and HTTP
calls never become messages, and ``flush()`` refuses to wait on itself. Standard library only.
"""

from __future__ import annotations

import contextlib
import contextvars
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["in_pipeline", "inside_pipeline", "mark_pipeline_thread"]

_IN_PIPELINE: Final = contextvars.ContextVar("otel_segment_in_pipeline", default=False)


def in_pipeline() -> bool:
    """Whether this code runs inside the pipeline's own delivery (a worker or a sync send)."""
    return _IN_PIPELINE.get()


def mark_pipeline_thread() -> None:
    """Mark the current thread (one the pipeline started) as inside the pipeline for good."""
    _IN_PIPELINE.set(True)


@contextlib.contextmanager
def inside_pipeline() -> Iterator[None]:
    """Run the block as inside the pipeline (a send on a caller's thread)."""
    token = _IN_PIPELINE.set(True)
    try:
        yield
    finally:
        _IN_PIPELINE.reset(token)
