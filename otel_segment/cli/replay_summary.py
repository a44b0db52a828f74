"""
What an ``otel-segment import`` came to: every line and message counted once.

A line without a ``segment`` annotation is *unannotated*; a malformed or invalid one (or
one the client refuses, e.g. too large) is *skipped*, with its reason and line numbers.
Each message queued then ends in exactly one of: *delivered* (the endpoint accepted it),
*failed* (the endpoint refused it, or did not answer, after the retries; with the reason)
or *not sent* (the import stopped first: Ctrl-C, or the endpoint is down).
"""

from __future__ import annotations

import collections
import threading
from typing import TYPE_CHECKING, Any, Final

from otel_segment.errors import DeliveryError, ShutdownError

if TYPE_CHECKING:
    from typing import TextIO

__all__ = ["Summary"]

_SHOWN_PER_REASON: Final = 5
# The endpoint refused this batch for what it holds: other batches may still go through.
_CONTENT_STATUSES: Final = frozenset({400, 413})


class Summary:
    """The counts of one import; ``on_error`` feeds it from the client's threads."""

    def __init__(self, stop: threading.Event) -> None:
        self._lock = threading.Lock()
        self._stop = stop
        self.read = 0
        self.queued = 0
        self.unannotated = 0
        self.delivered = 0
        self.skipped: collections.Counter[str] = collections.Counter()
        self.where: dict[str, list[str]] = collections.defaultdict(list)
        self.failed: collections.Counter[str] = collections.Counter()
        self.not_sent: collections.Counter[str] = collections.Counter()
        self.refusal = ""  # why the client refused the last message at the call
        self.stopped = ""  # why the import stopped early
        self.endpoint_down = False  # stopped because the endpoint is unusable: wait no more
        self.all_read = False  # every line of every file was read

    def skip(self, where: str, reason: str) -> None:
        """Count a line that is not sent, with where it is."""
        self.skipped[reason] += 1
        if len(self.where[reason]) < _SHOWN_PER_REASON:
            self.where[reason].append(where)

    def stop(self, reason: str) -> None:
        """Stop the import (the first reason given is kept)."""
        with self._lock:
            self.stopped = self.stopped or reason
        self._stop.set()

    def on_error(self, error: Exception, messages: list[dict[str, Any]]) -> None:
        """The client's ``on_error``: sort each report into one count."""
        with self._lock:
            if isinstance(error, ShutdownError):
                self.not_sent["the import stopped before they were sent"] += len(messages)
                return
            if not isinstance(error, DeliveryError):  # refused at the call: the line is skipped
                self.refusal = str(error)
                return
            self.failed[str(error)] += len(messages)
        if error.status not in _CONTENT_STATUSES:
            self.endpoint_down = True
            self.stop(f"the endpoint is unusable ({error})")

    def settle(self, delivered: int) -> None:
        """Take the client's final ``delivered`` count; the rest of what was queued is unknown."""
        with self._lock:
            self.delivered = delivered
            unknown = self.queued - delivered - sum(self.failed.values())
            unknown -= sum(self.not_sent.values())
            if unknown > 0:
                self.not_sent["still being sent when the import stopped: fate unknown"] += unknown

    @property
    def ok(self) -> bool:
        """Whether every annotated line was delivered."""
        return not (self.skipped or self.failed or self.not_sent or self.stopped)

    def print(self, out: TextIO, *, dry_run: bool) -> None:
        """Write the summary: one line of counts, then each reason once."""
        done = f"{self.queued} valid" if dry_run else f"{self.delivered} delivered"
        counts = [done]
        if not dry_run:
            counts.append(f"{sum(self.failed.values())} failed")
        counts.append(f"{sum(self.skipped.values())} skipped")
        if not dry_run:
            counts.append(f"{sum(self.not_sent.values())} not sent")
        print(
            f"read {self.read} lines: {', '.join(counts)}; "
            f"{self.unannotated} without a segment annotation",
            file=out,
        )
        if self.stopped:
            rest = "" if self.all_read else "; the rest of the input was not read"
            print(f"  stopped early: {self.stopped}{rest}", file=out)
        for reason, count in self.failed.most_common():
            print(f"  failed {count}: {reason}", file=out)
        for reason, count in self.skipped.most_common():
            lines = ", ".join(self.where[reason])
            more = " ..." if count > len(self.where[reason]) else ""
            print(f"  skipped {count}: {reason} (at {lines}{more})", file=out)
        for reason, count in self.not_sent.most_common():
            print(f"  not sent {count}: {reason}", file=out)
