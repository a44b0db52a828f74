"""
The one path for messages that will not be delivered: counted, logged, handed to ``on_error``.

Every message a client rejects (invalid, too large), drops (queue or spool full, client
closed), filters (``before_send``), finds breaking the tracking plan, or fails (retries
given up, shutdown) goes through its :class:`Reporter`, which counts it under its kind in
``stats()``, hands it to ``on_error`` with the reason (not a filtered one: the user's
``before_send`` chose so), and logs under ``otel_segment`` at most one line per kind per
:data:`WARNING_INTERVAL_SECONDS`, saying how many were left unsaid since the last one
(:class:`Throttle`, the one rate limit every part of the library uses). The errors it
hands on live in :mod:`otel_segment.errors`.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Final, Literal, cast

from otel_segment._json import loads

__all__ = ["KINDS", "WARNING_INTERVAL_SECONDS", "ErrorCallback", "Kind", "Reporter", "Throttle"]

_logger = logging.getLogger("otel_segment")

ErrorCallback = Callable[[Exception, list[dict[str, Any]]], object]
"""``on_error(exception, messages)``: called for messages that will not be delivered."""

Kind = Literal["dropped", "rejected", "failed", "filtered", "violations"]
"""Why a message is not delivered (or, for a violation, reported); a counter of ``stats()``."""

KINDS: Final[tuple[Kind, ...]] = ("dropped", "rejected", "failed", "filtered", "violations")

WARNING_INTERVAL_SECONDS: Final = 10.0
"""One log line per kind of loss at most this often (per client); the rest are counted."""

# What a summary of each kind says, and how each kind is logged: the level, and the
# line, with the reason as its last "%s".
_SUMMARIES: Final[dict[Kind, str]] = {
    "dropped": "dropped",
    "rejected": "rejected",
    "failed": "not delivered",
    "filtered": "filtered",
    "violations": "broke the tracking plan",
}
_LINES: Final[dict[Kind, tuple[int, str]]] = {
    "dropped": (logging.WARNING, "%s"),
    "rejected": (logging.WARNING, "message rejected: %s"),
    "failed": (logging.ERROR, "message(s) not delivered: %s"),
    "filtered": (logging.DEBUG, "message filtered: %s"),  # the user's before_send chose so
    "violations": (logging.WARNING, "%s"),
}


class Throttle:
    """
    At most one log line per *interval* seconds; counts what it holds back. Thread-safe.

    Args:
        interval: Seconds between two lines.
        clock: Where the seconds come from.
    """

    def __init__(
        self,
        interval: float = WARNING_INTERVAL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._interval = interval
        self._clock = clock
        self._lock = threading.Lock()
        self._last = -math.inf
        self._held_back = 0

    def admit(self, count: int = 1) -> int | None:
        """
        Whether to log about *count* more events now.

        Returns:
            ``None``: not now (they are held back); else how many were held back before.
        """
        now = self._clock()
        with self._lock:
            if now - self._last < self._interval:
                self._held_back += count
                return None
            self._last = now
            held_back, self._held_back = self._held_back, 0
        return held_back

    def take_held_back(self) -> int:
        """How many were held back since the last line; counted as told from now on."""
        with self._lock:
            held_back, self._held_back = self._held_back, 0
        return held_back


def log_throttled(throttle: Throttle, level: int, line: str, *args: object, count: int = 1) -> None:
    """Log *line* % *args* (``otel_segment``) if *throttle* admits it, with what it held back."""
    held_back = throttle.admit(count)
    if held_back is None:
        return
    if held_back:
        _logger.log(level, "%s (and %d more since the last report)", line % args, held_back)
    else:
        _logger.log(level, line, *args)


class Reporter:
    """
    Count, log and report messages that will not be delivered. Thread-safe.

    An exception from ``on_error`` is logged, never raised.

    Args:
        on_error: The user's callback, or ``None``.
    """

    def __init__(self, on_error: ErrorCallback | None) -> None:
        self._on_error = on_error
        self._lock = threading.Lock()
        self._counts: dict[Kind, int] = dict.fromkeys(KINDS, 0)
        self._throttles = {kind: Throttle() for kind in KINDS}

    def counts(self) -> dict[str, int]:
        """Messages per kind so far."""
        with self._lock:
            return {kind: self._counts[kind] for kind in KINDS}

    def count(self, kind: Kind, number: int = 1) -> None:
        """Count *number* messages without logging or reporting (the caller was told: it raised)."""
        with self._lock:
            self._counts[kind] += number

    def summarize(self) -> None:
        """Log what the rate limit held back so far, one line per kind (at shutdown)."""
        for kind in KINDS:
            held_back = self._throttles[kind].take_held_back()
            if held_back:
                level = _LINES[kind][0]
                line = "%d more message(s) %s since the last report"
                _logger.log(level, line, held_back, _SUMMARIES[kind])

    def dropped(self, error: Exception, items: list[bytes]) -> None:
        """Encoded messages dropped (queue or spool full, client closed)."""
        self._report("dropped", error, len(items), lambda: _decoded(items))

    def failed(self, error: Exception, items: list[bytes]) -> None:
        """Encoded messages given up (retries ran out, refused, shut down)."""
        self._report("failed", error, len(items), lambda: _decoded(items))

    def rejected(self, error: Exception, message: Mapping[str, Any] | None = None) -> None:
        """A message refused before it was queued (*message*: ``None`` if none was built)."""
        self._report("rejected", error, 1, lambda: [] if message is None else [_plain(message)])

    def filtered(self, reason: Exception) -> None:
        """A message a ``before_send`` hook chose not to send: counted, not an error."""
        self._report("filtered", reason, 1, list)

    def violated(self, error: Exception, message: Mapping[str, Any]) -> None:
        """A message that breaks the tracking plan (sent or not, as ``on_violation`` says)."""
        self._report("violations", error, 1, lambda: [_plain(message)])

    def _report(
        self,
        kind: Kind,
        error: Exception,
        number: int,
        messages: Callable[[], list[dict[str, Any]]],
    ) -> None:
        self.count(kind, number)
        level, line = _LINES[kind]
        if kind == "failed":
            line = f"{number} {line}"
        log_throttled(self._throttles[kind], level, line, error, count=number)
        if self._on_error is None:  # decode only for a callback
            return
        reported = messages()
        if not reported:  # a source could not even build one: counted and logged only
            return
        try:
            self._on_error(error, reported)
        except Exception:
            _logger.exception("on_error callback raised")


def _plain(message: Mapping[str, Any]) -> dict[str, Any]:
    return cast("dict[str, Any]", message)  # a Message (TypedDict) is a dict


def _decoded(items: list[bytes]) -> list[dict[str, Any]]:
    return [loads(item) for item in items]
