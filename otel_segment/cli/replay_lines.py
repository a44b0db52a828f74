"""
How ``otel-segment import`` reads one JSON line: its record, time, message id and fields.

Pure functions, no client: :func:`parse_line` turns a line into the ``(type, fields)`` of a
:meth:`Client.message <otel_segment.Client.message>` call, or says why the line is skipped.

- **Time.** The record's ``--timestamp-field`` (default ``timestamp``), else ``created``:
  ISO-8601 text or epoch seconds. A time without an offset is read in the log's zone
  (:class:`TimeZone`): the local zone by default, UTC with ``--utc``, or a named zone.
- **messageId.** The line's own (``segment.message_id``, else a top-level ``messageId``);
  else :func:`line_message_id`, derived from the line's bytes and its line number, so
  importing the same file again sends the same ids and Segment de-duplicates them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from pythonjsonlogger.core import RESERVED_ATTRS

from otel_segment.sources.log_mapping import ANNOTATION_KEY, annotation_fields

if TYPE_CHECKING:
    import zoneinfo

__all__ = [
    "ID_NAMESPACE",
    "Parsed",
    "Skipped",
    "TimeZone",
    "line_message_id",
    "parse_line",
    "record_time",
]

ID_NAMESPACE: Final = uuid.UUID("6f1c2f7e-3a51-5b1e-9a40-5e6d0c1b2a77")
"""The UUID-5 namespace of derived message ids (fixed: changing it breaks de-duplication)."""

_NOT_EXTRAS: Final = frozenset({*RESERVED_ATTRS, "message", "asctime", ANNOTATION_KEY, "messageId"})


@dataclass(frozen=True, slots=True)
class TimeZone:
    """
    The zone of times written without an offset.

    Attributes:
        zone: A named zone, or ``None`` for the local zone of this machine (``$TZ``).
        name: How the summary names it.
    """

    zone: dt.tzinfo | zoneinfo.ZoneInfo | None = None
    name: str = "local time"

    def attach(self, naive: dt.datetime) -> dt.datetime:
        """*naive* read as a time of this zone."""
        if self.zone is None:
            return naive.astimezone()  # a naive datetime's astimezone() reads it as local
        return naive.replace(tzinfo=self.zone)


@dataclass(frozen=True, slots=True)
class Parsed:
    """A line that maps to a message: its type and the fields of ``Client.message``."""

    kind: str
    fields: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Skipped:
    """A line that is not sent, and why (an empty reason: a line without an annotation)."""

    reason: str


def line_message_id(line: bytes, number: int) -> str:
    """
    The message id of line *number* (1-based) whose bytes are *line*, without its own.

    A UUID 5 of the line number and the SHA-256 of the line without its line ending: the
    same line at the same place gets the same id on every run, from a file or stdin.
    """
    digest = hashlib.sha256(line.rstrip(b"\r\n")).hexdigest()
    return str(uuid.uuid5(ID_NAMESPACE, f"{number}:{digest}"))


def parse_line(line: bytes, number: int, *, time_field: str, zone: TimeZone) -> Parsed | Skipped:
    """
    Map one JSON line to a message, or say why it is skipped; never raises.

    Args:
        line: The line's bytes.
        number: Its line number in its file (1-based), for the derived message id.
        time_field: The field holding the record's time (``created`` is tried next).
        zone: How to read times without an offset.
    """
    record = _record(line)
    if isinstance(record, Skipped):
        return record
    if ANNOTATION_KEY not in record:
        return Skipped("")
    timestamp = record_time(record, time_field, zone)
    if isinstance(timestamp, Skipped):
        return timestamp
    message = record.get("message")
    extras = {
        key: value
        for key, value in record.items()
        if key not in _NOT_EXTRAS and key != time_field and not key.startswith("_")
    }
    try:
        kind, fields = annotation_fields(
            record[ANNOTATION_KEY],
            message=message if isinstance(message, str) else None,
            timestamp=timestamp,
            extras=extras,
        )
    except (TypeError, ValueError) as error:
        return Skipped(f"invalid annotation: {error}")
    if fields.get("message_id") is None:
        own = record.get("messageId")
        fields["message_id"] = (
            own if isinstance(own, str) and own else line_message_id(line, number)
        )
    return Parsed(kind, fields)


def record_time(record: dict[str, Any], field: str, zone: TimeZone) -> dt.datetime | Skipped:
    """The record's time from *field*, else ``created``; or why there is none."""
    problem = f"no time in {field!r} or 'created'"
    for key in (field, "created"):
        value = record.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            try:
                return dt.datetime.fromtimestamp(value, dt.UTC)
            except (OverflowError, OSError, ValueError):  # NaN, inf, a year out of range
                problem = f"the time in {key!r} is out of range for epoch seconds"
        elif isinstance(value, str):
            try:
                parsed = dt.datetime.fromisoformat(value)
            except ValueError:
                problem = f"the time in {key!r} is not ISO-8601"
                continue
            return parsed if parsed.tzinfo is not None else zone.attach(parsed)
    return Skipped(problem)


def _record(line: bytes) -> dict[str, Any] | Skipped:  # noqa: PLR0911 - one per outcome
    if not line.strip():
        return Skipped("")
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        return Skipped(f"not JSON ({error.msg})")
    except UnicodeDecodeError:
        return Skipped("not UTF-8 text")
    except RecursionError:
        return Skipped("JSON nested too deeply")
    except ValueError as error:  # e.g. an integer of more than 4300 digits
        return Skipped(f"unreadable JSON ({_cut(str(error))})")
    if not isinstance(record, dict):
        return Skipped("not a JSON object")
    return record


def _cut(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else f"{text[: limit - 3]}..."
