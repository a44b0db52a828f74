"""
What the pipeline tells the log and ``on_error`` about messages it will not deliver.

:class:`Reporter`: one home for calling ``on_error`` safely, logging failures, and warning
about drops at most once per interval. The errors it hands on live in :mod:`otel_segment.errors`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Final

from otel_segment._json import loads

__all__ = ["ErrorCallback", "Reporter"]

_logger = logging.getLogger("otel_segment")

ErrorCallback = Callable[[Exception, list[dict[str, Any]]], object]
"""``on_error(exception, messages)``: called for messages that will not be delivered."""

_DROP_WARNING_INTERVAL_SECONDS: Final = 10.0


class Reporter:
    """
    Log messages that will not be delivered, and hand them to ``on_error``.

    Thread-safe. Drops (a full queue or spool, a closed client) are warned about at most
    once per 10 s, with the number dropped since the last warning; failures and rejections
    are logged each time. An exception from ``on_error`` is logged, never raised.

    Args:
        on_error: The user's callback, or ``None``.
    """

    def __init__(self, on_error: ErrorCallback | None) -> None:
        self._on_error = on_error
        self._lock = threading.Lock()
        self._unwarned = 0
        self._last_warning = -_DROP_WARNING_INTERVAL_SECONDS

    def failed(self, error: Exception, items: list[bytes]) -> None:
        """Log and report encoded messages that were given up."""
        _logger.error("%d message(s) not delivered: %s", len(items), error)
        self._report(error, items)

    def dropped(self, error: Exception, items: list[bytes]) -> None:
        """Report encoded messages that were dropped; warn if the last warning is old."""
        now = time.monotonic()
        with self._lock:
            self._unwarned += len(items)
            warn = now - self._last_warning >= _DROP_WARNING_INTERVAL_SECONDS
            if warn:
                count, self._unwarned = self._unwarned, 0
                self._last_warning = now
        if warn:
            _logger.warning("%s (%d dropped since the last warning)", error, count)
        self._report(error, items)

    def rejected(self, error: Exception, message: dict[str, Any]) -> None:
        """Log and report a message refused before it was queued."""
        _logger.warning("message rejected: %s", error)
        self._report_decoded(error, [message])

    def violated(self, error: Exception, message: dict[str, Any]) -> None:
        """Report a message that breaks the tracking plan (the hooks log, rate-limited)."""
        self._report_decoded(error, [message])

    def _report(self, error: Exception, items: list[bytes]) -> None:
        if self._on_error is not None:  # decode only for a callback
            self._report_decoded(error, [loads(item) for item in items])

    def _report_decoded(self, error: Exception, messages: list[dict[str, Any]]) -> None:
        if self._on_error is None:
            return
        try:
            self._on_error(error, messages)
        except Exception:
            _logger.exception("on_error callback raised")
