"""
``otel-segment import``: replay JSON-lines logs as historical messages.

Lines stream through one client in bounded memory: every :data:`_FLUSH_EVERY` messages
the importer waits for the queue to drain, so a file of any length needs no more memory
than one queue. Malformed lines are reported with their numbers and skipped.
"""

from __future__ import annotations

import collections
import contextlib
import datetime as dt
import json
import pathlib
import sys
from typing import IO, TYPE_CHECKING, Any, Final, TextIO

from otel_segment.pipeline.client import Client
from otel_segment.sources.log_mapping import annotation_fields

if TYPE_CHECKING:
    import argparse
    from collections.abc import Iterator

__all__ = ["run_import"]

_FLUSH_EVERY: Final = 5_000
_SHOWN_PER_REASON: Final = 5
# A line the client refused (too large, queue full): on_error already counted it as failed.
_FAILED: Final = "failed"


class _Summary:
    """What an import came to."""

    def __init__(self) -> None:
        self.read = 0
        self.sent = 0
        self.unannotated = 0
        self.skipped: collections.Counter[str] = collections.Counter()
        self.examples: dict[str, list[str]] = collections.defaultdict(list)
        self.failed = 0
        self.failures: collections.Counter[str] = collections.Counter()

    def skip(self, where: str, reason: str) -> None:
        self.skipped[reason] += 1
        if len(self.examples[reason]) < _SHOWN_PER_REASON:
            self.examples[reason].append(where)

    def fail(self, error: Exception, messages: list[dict[str, Any]]) -> None:
        self.failed += len(messages)
        self.failures[str(error)] += len(messages)

    def print(self, out: TextIO, *, dry_run: bool) -> None:
        verb = "valid" if dry_run else "sent"
        print(
            f"read {self.read} lines: {self.sent} {verb}, {self.unannotated} without a "
            f"segment annotation, {sum(self.skipped.values())} skipped, {self.failed} failed",
            file=out,
        )
        for reason, count in self.skipped.most_common():
            lines = ", ".join(self.examples[reason])
            more = " ..." if count > len(self.examples[reason]) else ""
            print(f"  skipped {count}: {reason} (at {lines}{more})", file=out)
        for reason, count in self.failures.most_common():
            print(f"  failed {count}: {reason}", file=out)

    @property
    def ok(self) -> bool:
        return self.failed == 0 and not self.skipped


def run_import(args: argparse.Namespace) -> int:
    """Import every file named in *args*; returns the exit status."""
    summary = _Summary()
    try:
        client = Client(
            args.write_key,
            args.host,
            send=not args.dry_run,
            gzip=args.gzip,
            timeout=args.timeout,
            on_error=summary.fail,
        )
    except (TypeError, ValueError) as exc:
        print(f"otel-segment import: {exc}", file=sys.stderr)
        return 2
    with client:
        for name in args.files:
            try:
                _import_file(client, name, args, summary)
            except OSError as exc:
                print(f"otel-segment import: cannot read {name}: {exc}", file=sys.stderr)
                return 1
        client.flush()
    summary.print(sys.stderr, dry_run=args.dry_run)
    return 0 if summary.ok else 1


def _import_file(client: Client, name: str, args: argparse.Namespace, summary: _Summary) -> None:
    with contextlib.ExitStack() as stack:
        stream = (  # bytes: a line that is not UTF-8 is skipped, not the rest of the file
            sys.stdin.buffer if name == "-" else stack.enter_context(pathlib.Path(name).open("rb"))
        )
        label = "stdin" if name == "-" else name
        for number, line in _progress(stream, label, disabled=args.no_progress):
            summary.read += 1
            where = f"{label}:{number}"
            outcome = _import_line(client, line, args.timestamp_field)
            if outcome is None:
                summary.sent += 1
                if summary.sent % _FLUSH_EVERY == 0:
                    client.flush()
            elif outcome == "":
                summary.unannotated += 1
            elif outcome != _FAILED:
                summary.skip(where, outcome)


def _import_line(client: Client, line: bytes, timestamp_field: str) -> str | None:  # noqa: PLR0911 - one return per outcome
    """Send one line; ``None`` if sent, ``""`` if not annotated, else why it was skipped."""
    if not line.strip():
        return ""
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        return f"not JSON ({exc.msg})"
    except UnicodeDecodeError:
        return "not UTF-8 text"
    if not isinstance(record, dict):
        return "not a JSON object"
    if "segment" not in record:
        return ""
    timestamp = _record_time(record, timestamp_field)
    if timestamp is None:
        return f"no readable time in {timestamp_field!r} or 'created'"
    message = record.get("message")
    try:
        kind, fields = annotation_fields(
            record["segment"],
            message=message if isinstance(message, str) else None,
            timestamp=timestamp,
            extras=_extras(record, timestamp_field),
        )
        accepted, _ = client.message(kind, **fields)
    except (TypeError, ValueError) as exc:
        return f"invalid annotation: {exc}"
    return None if accepted else _FAILED


def _record_time(record: dict[str, Any], field: str) -> dt.datetime | None:
    for key in (field, "created"):
        value = record.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            try:
                return dt.datetime.fromtimestamp(value, dt.UTC)
            except (OverflowError, OSError, ValueError):  # NaN, or a year out of range
                continue
        if isinstance(value, str):
            try:
                return dt.datetime.fromisoformat(value)
            except ValueError:
                continue
    return None


def _extras(record: dict[str, Any], timestamp_field: str) -> dict[str, Any]:
    from pythonjsonlogger.core import RESERVED_ATTRS  # noqa: PLC0415 - only for imports

    skip = {*RESERVED_ATTRS, "message", "asctime", "segment", timestamp_field}
    return {k: v for k, v in record.items() if k not in skip and not k.startswith("_")}


def _progress(stream: IO[bytes], label: str, *, disabled: bool) -> Iterator[tuple[int, bytes]]:
    """Number the lines of *stream*, with a progress bar when stderr is a terminal."""
    if disabled or not sys.stderr.isatty():
        yield from enumerate(stream, start=1)
        return
    from tqdm import tqdm  # noqa: PLC0415 - only on a terminal

    with tqdm(desc=label, unit=" lines", file=sys.stderr, leave=False) as bar:
        for number, line in enumerate(stream, start=1):
            bar.update(1)
            yield number, line
