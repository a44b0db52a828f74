"""
The logging mapping rules: which log records are annotated, and the message they make.

:func:`annotate` builds the ``extra={"segment": {...}}`` mapping that marks a record;
:func:`annotation_fields` turns an annotation (with the record's message, time and other
fields) into the ``(type, fields)`` of a :meth:`Client.message <otel_segment.Client.message>`
call. :class:`~otel_segment.SegmentHandler` follows these rules for log records, and
``otel-segment import`` for JSON lines written by python-json-logger. Pure functions: no
client, no I/O.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from pythonjsonlogger.core import RESERVED_ATTRS, merge_record_extra

from otel_segment.pipeline.messages import MESSAGE_TYPES

if TYPE_CHECKING:
    import datetime as dt

    from otel_segment.pipeline.client import Id
    from otel_segment.pipeline.messages import MessageType

__all__ = [
    "ANNOTATION_KEY",
    "annotate",
    "annotation_fields",
    "checked_fields",
    "has_annotation",
    "record_annotation",
]

ANNOTATION_KEY: Final = "segment"
"""The ``extra`` key (a record attribute) that marks a record for Segment."""

_RESERVED: Final = frozenset({*RESERVED_ATTRS, "taskName", ANNOTATION_KEY})
_LOGURU_EXTRA: Final = "extra"  # loguru's handler sink nests the extras in record.extra
_EXTRAS_FIELD: Final = dict.fromkeys(("track", "page", "screen"), "properties") | dict.fromkeys(
    ("identify", "group"), "traits"
)
_ANNOTATION_NAME: Final = f"extra[{ANNOTATION_KEY!r}]"
# A record with no more attributes than a plain one plus the annotation has no extras.
_PLAIN_ATTRIBUTES: Final = len(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) + 1
_NAMED_BY_MESSAGE: Final = {"track": "event", "page": "name", "screen": "name"}


def has_annotation(record: logging.LogRecord) -> bool:
    """Whether *record* carries an annotation key (stdlib, structlog, loguru); cheap."""
    attributes = record.__dict__
    if ANNOTATION_KEY in attributes:
        return True
    nested = attributes.get(_LOGURU_EXTRA)  # loguru's extras
    return type(nested) is dict and ANNOTATION_KEY in nested


def annotate(
    type: MessageType = "track",
    *,
    user_id: Id = None,
    anonymous_id: Id = None,
    event: str | None = None,
    name: str | None = None,
    category: str | None = None,
    properties: Mapping[str, Any] | None = None,
    traits: Mapping[str, Any] | None = None,
    group_id: Id = None,
    previous_id: Id = None,
    context: Mapping[str, Any] | None = None,
    integrations: Mapping[str, Any] | None = None,
    message_id: str | None = None,
    timestamp: dt.datetime | float | None = None,
    **values: Any,
) -> dict[str, Any]:
    """
    Build the ``extra`` mapping that marks a log record for :class:`SegmentHandler`.

    The fields are those of the :class:`~otel_segment.Client` call of *type*; ``None``
    means "not given" (the handler's defaults apply). Any other keyword is a value that
    joins ``properties`` (track, page, screen) or ``traits`` (identify, group); entries of
    an explicit *properties* / *traits* mapping win. It never raises and never validates:
    a bad annotation is counted and reported by the handler, not by the logging call::

        log.info("Signed Up", extra=annotate(user_id="u1", plan="pro"))
        log.info("u1 changed", extra=annotate("identify", user_id="u1", plan="pro"))
        structlog_logger.info("Signed Up", **annotate(user_id="u1"))
        loguru_logger.bind(**annotate(user_id="u1")).info("Signed Up")

    Returns:
        ``{"segment": {...}}``, for ``extra=`` (stdlib) or ``**`` (structlog, loguru).

    .. versionadded:: 0.1.0
    """
    given = {
        "user_id": user_id,
        "anonymous_id": anonymous_id,
        "event": event,
        "name": name,
        "category": category,
        "properties": properties,
        "traits": traits,
        "group_id": group_id,
        "previous_id": previous_id,
        "context": context,
        "integrations": integrations,
        "message_id": message_id,
        "timestamp": timestamp,
    }
    annotation: dict[str, Any] = {"type": type}
    annotation.update((key, value) for key, value in given.items() if value is not None)
    if values:
        target = _EXTRAS_FIELD.get(type, "properties")
        _merge_into(annotation, target, values)
    return {ANNOTATION_KEY: annotation}


# The names an annotation may hold: annotate()'s, so the two never disagree.
_FIELDS: Final = frozenset(inspect.signature(annotate).parameters) - {"values"}


def annotation_fields(
    annotation: object,
    *,
    message: str | None = None,
    timestamp: dt.datetime | float | None = None,
    extras: Mapping[str, Any] | None = None,
) -> tuple[str, dict[str, Any]]:
    """
    Apply the default mapping rules to an annotation: ``(type, fields)`` for ``message()``.

    The rules :class:`SegmentHandler` follows, for other sources of annotated records
    (e.g. JSON lines written by python-json-logger): ``type`` defaults to ``"track"``,
    *message* is the default track ``event`` (page/screen ``name``), *timestamp* the
    default ``timestamp``, and *extras* join ``properties`` (track, page, screen) or
    ``traits`` (identify, group), the annotation's own entries winning. The values are
    not checked here; :meth:`Client.message <otel_segment.Client.message>` checks them.

    Args:
        annotation: The ``segment`` mapping: ``type`` and the fields of the call.
        message: The record's message.
        timestamp: When the record was made.
        extras: The record's other fields.

    Returns:
        The message type and the keyword fields for
        :meth:`Client.message <otel_segment.Client.message>`.

    Raises:
        TypeError: *annotation* is not a mapping, or has fields no call takes.
        ValueError: Its ``type`` is not one of the six Segment calls.

    .. versionadded:: 0.1.0
    """
    fields = checked_fields(annotation, _ANNOTATION_NAME)
    kind = fields.pop("type", None)
    if kind is None:
        kind = "track"
    named = _NAMED_BY_MESSAGE.get(kind)
    if named is not None and message is not None and fields.get(named) is None:
        fields[named] = message
    if timestamp is not None and fields.get("timestamp") is None:
        fields["timestamp"] = timestamp
    target = _EXTRAS_FIELD.get(kind)
    if target is not None and extras:
        _merge_into(fields, target, extras)
    return kind, fields


def record_annotation(record: logging.LogRecord) -> tuple[object, dict[str, Any]] | None:
    """
    ``(annotation, extras)`` of *record* (stdlib, structlog or loguru), else ``None``.

    An annotation of ``None`` (e.g. ``segment=None`` bound in structlog) means none.
    """
    attributes = record.__dict__
    annotation = attributes.get(ANNOTATION_KEY)
    if annotation is not None:
        if len(attributes) <= _PLAIN_ATTRIBUTES:  # nothing but the standard attributes
            return annotation, {}
        return annotation, merge_record_extra(record, {}, _RESERVED)
    nested = attributes.get(_LOGURU_EXTRA)
    if type(nested) is dict and nested.get(ANNOTATION_KEY) is not None:
        extras = {
            key: value
            for key, value in nested.items()
            if key != ANNOTATION_KEY and not (isinstance(key, str) and key.startswith("_"))
        }
        return nested[ANNOTATION_KEY], extras
    return None


def checked_fields(fields: object, what: str) -> dict[str, Any]:
    """A copy of *fields*, checked to be a mapping of known field names and a known type."""
    if type(fields) is not dict and not isinstance(fields, Mapping):
        raise TypeError(f"{what} must be a mapping (dict), got {type(fields).__name__}")
    if not fields.keys() <= _FIELDS:
        unknown = sorted(map(repr, fields.keys() - _FIELDS))
        known = ", ".join(sorted(_FIELDS))
        raise TypeError(f"{what} has unknown fields {', '.join(unknown)}; known: {known}")
    kind = fields.get("type")
    if kind is not None and kind not in MESSAGE_TYPES:
        raise ValueError(f"{what} type must be one of {', '.join(MESSAGE_TYPES)}, got {kind!r}")
    return dict(fields)


def _merge_into(fields: dict[str, Any], target: str, values: Mapping[str, Any]) -> None:
    """Put *values* under *fields[target]*, whose own entries win."""
    explicit = fields.get(target)
    if explicit is None:
        fields[target] = dict(values)
    elif isinstance(explicit, Mapping):
        fields[target] = {**values, **explicit}
    # else: leave the wrong value for the client to reject, naming the field
