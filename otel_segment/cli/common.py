"""What the commands share."""

from __future__ import annotations

from typing import Final

from otel_segment.pipeline.retry import RetryPolicy

__all__ = ["CLI_RETRY"]

CLI_RETRY: Final = RetryPolicy(max_attempts=4, max_elapsed=20.0)
"""Retries suited to a person waiting at a terminal: a few quick tries, then an answer."""
