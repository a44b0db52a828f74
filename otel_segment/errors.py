"""
Every public exception of otel_segment, under one base class.

Raised at direct calls and construction (``ClientClosedError``, ``SpoolError``,
``EncodingError``), or handed to ``on_error`` with the messages they concern
(``DeliveryError``, ``QueueFullError``, ``ShutdownError``, ``SpoolFullError``,
``MessageTooLargeError``). Each keeps the built-in base that 0.1 gave it, so
``except ValueError`` goes on working. Standard library only.
"""

from __future__ import annotations

__all__ = [
    "ClientClosedError",
    "DeliveryError",
    "EncodingError",
    "MessageTooLargeError",
    "OtelSegmentError",
    "QueueFullError",
    "ShutdownError",
    "SpoolError",
    "SpoolFullError",
    "SpoolLockedError",
]


class OtelSegmentError(Exception):
    """The base class of every exception otel_segment defines."""


class ClientClosedError(OtelSegmentError, RuntimeError):
    """A call was made on a client that was shut down."""


class EncodingError(OtelSegmentError, ValueError):
    """A value cannot be encoded as JSON (a circular structure)."""


class MessageTooLargeError(OtelSegmentError, ValueError):
    """A message is larger than ``max_message_bytes`` once encoded."""


class DeliveryError(OtelSegmentError):
    """
    A batch was given up.

    Attributes:
        status: The last HTTP status, or ``None`` when no response arrived.
        attempts: How many times the batch was sent.
    """

    def __init__(self, reason: str, *, status: int | None = None, attempts: int = 0) -> None:
        super().__init__(reason)
        self.status = status
        self.attempts = attempts


class QueueFullError(OtelSegmentError):
    """The queue held ``max_queue_size`` messages; this one was dropped."""


class ShutdownError(OtelSegmentError):
    """The client shut down before these messages could be delivered."""


class SpoolFullError(OtelSegmentError):
    """The spool reached ``spool_max_bytes``; these messages were dropped, oldest first."""


class SpoolError(OtelSegmentError, ValueError):
    """
    The spool file cannot be used: unreadable, corrupt, foreign or failing.

    A ``ValueError``, like every other bad ``Client`` argument; the message names the path.

    Attributes:
        path: The spool file.
    """

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"spool {path}: {reason}")
        self.path = path


class SpoolLockedError(SpoolError):
    """Another process (or another client of this one) holds the spool: one owner per file."""
