"""
The process-wide capture registry behind :func:`otel_segment.testing.capture`.

While a capture is open, every client of the process records each message it accepts,
decoded from the bytes that would go on the wire, and queues it only when a capture asks
for delivery too. The clients check one module flag, :data:`active`, per message.
"""

from __future__ import annotations

import threading
from typing import Any

import orjson

__all__ = ["Recorder", "active", "record", "start", "stop"]

active = False
"""Whether any capture is open (read by the client on every message)."""

_lock = threading.Lock()
_recorders: list[Recorder] = []


class Recorder:
    """
    The messages one capture has seen, in order; thread-safe.

    Args:
        deliver: Whether the messages are also sent as usual.
    """

    def __init__(self, *, deliver: bool) -> None:
        self.deliver = deliver
        self._lock = threading.Lock()
        self._messages: list[dict[str, Any]] = []

    def append(self, message: dict[str, Any]) -> None:
        """Record one message."""
        with self._lock:
            self._messages.append(message)

    def messages(self) -> list[dict[str, Any]]:
        """A copy of the list of messages recorded so far."""
        with self._lock:
            return list(self._messages)

    def clear(self) -> None:
        """Forget the messages recorded so far."""
        with self._lock:
            self._messages.clear()


def start(*, deliver: bool = False) -> Recorder:
    """Open a capture: from now on, every client records into the returned recorder."""
    global active  # noqa: PLW0603 - the one flag the clients read
    recorder = Recorder(deliver=deliver)
    with _lock:
        _recorders.append(recorder)
        active = True
    return recorder


def stop(recorder: Recorder) -> None:
    """Close a capture opened by :func:`start` (closing it twice is harmless)."""
    global active  # noqa: PLW0603
    with _lock:
        if recorder in _recorders:
            _recorders.remove(recorder)
        active = bool(_recorders)


def record(data: bytes) -> bool:
    """
    Give one encoded message to every open capture.

    Returns:
        Whether the message is to be delivered as well (a capture asked for it, or
        none is open any more).
    """
    with _lock:
        recorders = list(_recorders)
    for recorder in recorders:
        recorder.append(orjson.loads(data))
    return not recorders or any(recorder.deliver for recorder in recorders)
