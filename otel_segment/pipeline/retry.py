"""
When to try a batch again, and how long to wait first.

:class:`RetryPolicy` is a frozen value, like urllib3's ``Retry``: build one, pass it to the
client, derive variants with :meth:`RetryPolicy.replace`. Its defaults follow Segment's own
rules (segment-analytics-python 2.4): retry connection errors, timeouts, 408, 410, 429, 460
and 5xx except 501 and 505; honour ``Retry-After`` (capped at 300 s); never retry any
other 4xx.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import email.utils
import math
import random
import time
from typing import TYPE_CHECKING, Final

from otel_segment.pipeline.options import seconds

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["DEFAULT_RETRY_STATUSES", "RetryPolicy", "exponential_backoff", "parse_retry_after"]

DEFAULT_RETRY_STATUSES: Final = frozenset(
    {408, 410, 429, 460} | (set(range(500, 600)) - {501, 505})
)
"""HTTP statuses Segment's libraries retry."""

_BACKOFF_BASE_SECONDS: Final = 0.5
_BACKOFF_CAP_SECONDS: Final = 60.0


def exponential_backoff(retry: int) -> float:
    """
    Segment's schedule: the first retry at once, then 0.5 s, 1 s, 2 s ... capped at 60 s.

    Args:
        retry: 1 for the first retry, 2 for the second, and so on.
    """
    if retry <= 1:
        return 0.0
    return min(_BACKOFF_BASE_SECONDS * 2.0 ** (retry - 2), _BACKOFF_CAP_SECONDS)


@dataclasses.dataclass(frozen=True, slots=True)
class RetryPolicy:
    """
    How a batch is retried: which failures, how often, how long in all.

    Args:
        max_attempts: Attempts per batch, the first included (1 = never retry).
        backoff: ``callable(retry) -> seconds`` before retry number *retry* (1-based);
            ``None`` is Segment's schedule (0, 0.5, 1, 2 ... 60 s).
        max_elapsed: Seconds from a batch's first attempt after which it is given up;
            a wait that would end past this budget is not started.
        jitter: Up to this fraction of each wait is added at random, so that many
            processes do not retry in step.
        max_retry_after: A server's ``Retry-After`` is honoured up to this many seconds.
        retry_statuses: HTTP statuses that are retried; connection errors and timeouts
            always are (while attempts and budget remain).

    .. versionadded:: 0.1.0
    """

    max_attempts: int = 11
    backoff: Callable[[int], float] | None = None
    max_elapsed: float = 600.0
    jitter: float = 0.1
    max_retry_after: float = 300.0
    retry_statuses: frozenset[int] = DEFAULT_RETRY_STATUSES

    def __post_init__(self) -> None:
        """Validate every field, naming the one that is wrong."""
        if isinstance(self.max_attempts, bool) or not isinstance(self.max_attempts, int):
            raise TypeError(f"max_attempts must be an int, got {self.max_attempts!r}")
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {self.max_attempts!r}")
        if self.backoff is not None and not callable(self.backoff):
            raise TypeError(f"backoff must be callable or None, got {self.backoff!r}")
        seconds("max_elapsed", self.max_elapsed)
        seconds("max_retry_after", self.max_retry_after, allow_zero=True)
        seconds("jitter", self.jitter, allow_zero=True)
        if self.jitter > 1:
            raise ValueError(f"jitter must be in 0..1, got {self.jitter!r}")
        object.__setattr__(self, "retry_statuses", frozenset(self.retry_statuses))

    def replace(self, **changes: object) -> RetryPolicy:
        """Return a copy with *changes* applied (validated like the constructor)."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    def is_retryable(self, status: int | None) -> bool:
        """Whether a failure is worth retrying; ``None`` means no HTTP response."""
        return status is None or status in self.retry_statuses

    def wait_seconds(
        self,
        *,
        attempts: int,
        status: int | None,
        retry_after: float | None,
        elapsed: float,
    ) -> float | None:
        """
        Seconds to wait before the next attempt, or ``None`` to give up.

        Args:
            attempts: Attempts made so far (>= 1).
            status: HTTP status of the last attempt, ``None`` if there was no response.
            retry_after: The server's ``Retry-After`` in seconds, if it sent one.
            elapsed: Seconds since the first attempt started.
        """
        if attempts >= self.max_attempts or not self.is_retryable(status):
            return None
        if retry_after is not None:
            wait = min(max(retry_after, 0.0), self.max_retry_after)
        else:
            base = (self.backoff or exponential_backoff)(attempts)
            wait = base + random.uniform(0.0, self.jitter * base)  # noqa: S311 - not crypto
        if elapsed + wait > self.max_elapsed:
            return None
        return wait


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """
    Read a ``Retry-After`` header: delta-seconds or an HTTP date.

    Returns:
        Seconds to wait (>= 0), or ``None`` when the header is absent or unreadable.
    """
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(seconds, 0.0) if math.isfinite(seconds) else None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    current = time.time() if now is None else now
    # parsedate_to_datetime gives a naive datetime for "-0000"; that zone is UTC.
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(when.timestamp() - current, 0.0)
