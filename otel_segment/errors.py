"""
Every public exception of otel_segment, under one base class.

Raised at direct calls and construction (``ClientClosedError``, ``SpoolError``,
``EncodingError``), or handed to ``on_error`` with the messages they concern
(``DeliveryError``, ``QueueFullError``, ``ShutdownError``, ``SpoolFullError``,
``MessageTooLargeError``, ``PlanViolation``). Loading a tracking plan raises
``TrackingPlanError``. Each keeps the built-in base that 0.1 gave it, so
``except ValueError`` goes on working. Standard library only.
"""

from __future__ import annotations

import dataclasses

__all__ = [
    "ClientClosedError",
    "DeliveryError",
    "EncodingError",
    "FieldViolation",
    "MessageTooLargeError",
    "OtelSegmentError",
    "PlanViolation",
    "QueueFullError",
    "ShutdownError",
    "SpoolError",
    "SpoolFullError",
    "SpoolLockedError",
    "TrackingPlanError",
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


@dataclasses.dataclass(frozen=True, slots=True)
class FieldViolation:
    """
    One way a message breaks its tracking plan.

    Attributes:
        path: The field, dotted from the message's top: ``"properties.total"``,
            ``"traits.email"``; ``""`` for the message itself.
        rule: The rule it breaks: a JSON Schema keyword (``"type"``, ``"required"``,
            ``"enum"`` ...), or ``"unplanned"`` for an event the plan does not name.
        detail: A sentence for people: ``'"42" is not of type "number"'``.

    .. versionadded:: 0.2.0
    """

    path: str
    rule: str
    detail: str

    def __str__(self) -> str:
        """``path: detail (rule)``."""
        return f"{self.path or '(message)'}: {self.detail} ({self.rule})"


class PlanViolation(OtelSegmentError, ValueError):  # noqa: N818 - the name DESIGN.md promises
    """
    A message breaks the client's tracking plan.

    Handed to ``on_error`` with the message; raised from direct calls when the client
    was built with ``on_violation="raise"``.

    Attributes:
        message_type: The message's ``type``.
        event: Its event (track) or name (page/screen), or ``None``.
        errors: What is wrong, one :class:`FieldViolation` per field and rule.

    .. versionadded:: 0.2.0
    """

    def __init__(
        self, message_type: str, event: str | None, errors: tuple[FieldViolation, ...]
    ) -> None:
        what = message_type if event is None else f"{message_type} {event!r}"
        super().__init__(f"{what} breaks the tracking plan: " + "; ".join(map(str, errors)))
        self.message_type = message_type
        self.event = event
        self.errors = errors


class TrackingPlanError(OtelSegmentError, ValueError):
    """
    A tracking plan cannot be loaded: unreadable, malformed, or using what is not supported.

    Attributes:
        source: The file (or ``"<mapping>"`` for a plan given as data).
        location: Where in it, e.g. ``"rules[3].jsonSchema.properties.properties"``.

    .. versionadded:: 0.2.0
    """

    def __init__(self, source: str, location: str, reason: str) -> None:
        where = f"{source}: {location}" if location else source
        super().__init__(f"tracking plan {where}: {reason}")
        self.source = source
        self.location = location
