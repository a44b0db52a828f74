"""
``otel-segment validate PLAN FILE...``: check JSON-lines logs against a tracking plan.

Each line is a Segment message (as ``otel-segment sink --json`` records it, or as a
collector stores it) or an annotated log line, checked as the message
``otel-segment import`` would send for it (its other fields as properties); other lines
are ignored. Lines stream through in bounded memory: the summary keeps counts
per event, field and rule, and a few example line numbers for each. Exit status 1 when
any message breaks the plan.
"""

from __future__ import annotations

import contextlib
import pathlib
import sys
from typing import IO, TYPE_CHECKING, Any, Final, TextIO

import orjson

from otel_segment.cli.replay_lines import Skipped, TimeZone, parse_line
from otel_segment.errors import FieldViolation, TrackingPlanError
from otel_segment.pipeline import messages
from otel_segment.pipeline.calls import BUILDERS
from otel_segment.pipeline.encoding import dumps
from otel_segment.plans import TrackingPlan

if TYPE_CHECKING:
    import argparse
    from collections.abc import Iterator, Sequence

__all__ = ["Line", "add_validate", "read_messages", "run_validate"]

_EXAMPLES: Final = 3
_MAX_KEYS: Final = 10_000
"""Distinct (event, field, rule) kept in the summary; beyond, counted as ``(other)``."""
_PROGRESS_EVERY: Final = 4096
_BASE_CONTEXT: Final = {"library": messages.LIBRARY}
_LOCAL_TIME: Final = TimeZone()
_EPILOG: Final = """\
examples:
  otel-segment validate plan.json received.jsonl            # exit 1 on a violation
  otel-segment validate --unplanned violation plan.yaml app.log.jsonl
  otel-segment plan infer received.jsonl > plan.json        # start a plan from logs
"""

Line = tuple[str, dict[str, Any]]
"""``("file:line", wire message)``."""


class Reading:
    """Counts of the lines read that were not messages."""

    def __init__(self) -> None:
        self.lines = 0
        self.ignored = 0
        self.unreadable = 0
        self.examples: list[str] = []

    def bad(self, where: str) -> None:
        """Count a line that holds no readable message; keep the first few places."""
        self.unreadable += 1
        if len(self.examples) < _EXAMPLES:
            self.examples.append(where)


def add_validate(commands: Any) -> None:
    """Register ``validate`` with the command line's subparsers."""
    import argparse  # noqa: PLC0415 - only to build the parser

    command = commands.add_parser(
        "validate",
        help="check JSON-lines logs against a tracking plan",
        description="Check JSON-lines logs against a tracking plan; exit 1 on a violation.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    command.add_argument("plan", metavar="PLAN", help="the plan: a JSON or YAML file, or a folder")
    command.add_argument("files", metavar="FILE", nargs="+", help="JSON-lines files ('-': stdin)")
    command.add_argument(
        "--unplanned",
        choices=("allow", "violation"),
        default="allow",
        help="whether an event the plan does not name is a violation (default allow)",
    )
    command.add_argument("--no-progress", action="store_true", help="no progress bar")
    command.set_defaults(run=run_validate)


def run_validate(args: argparse.Namespace) -> int:
    """Check every file named in *args*; returns the exit status."""
    try:
        plan = TrackingPlan.load(args.plan, unplanned=args.unplanned)
    except TrackingPlanError as exc:
        print(f"otel-segment validate: {exc}", file=sys.stderr)
        return 2
    summary = _Summary()
    reading = Reading()
    try:
        for where, message in read_messages(args.files, reading, progress=not args.no_progress):
            summary.add(where, message, plan.check(message))
    except OSError as exc:
        print(f"otel-segment validate: {exc}", file=sys.stderr)
        return 2
    summary.print(sys.stdout, reading)
    return 1 if summary.violating else 0


class _Summary:
    def __init__(self) -> None:
        self.checked = 0
        self.violating = 0
        self.per_event: dict[str, list[int]] = {}  # event: [checked, violating]
        self.per_field: dict[tuple[str, str, str], list[Any]] = {}  # [count, detail, examples]

    def add(self, where: str, message: dict[str, Any], errors: tuple[FieldViolation, ...]) -> None:
        self.checked += 1
        label = _label(message)
        counts = self.per_event.get(label)
        if counts is None:
            if len(self.per_event) >= _MAX_KEYS:
                label = "(other)"
            counts = self.per_event.setdefault(label, [0, 0])
        counts[0] += 1
        if not errors:
            return
        self.violating += 1
        counts[1] += 1
        for error in errors:
            key = (label, error.path, error.rule)
            entry = self.per_field.get(key)
            if entry is None:
                if len(self.per_field) >= _MAX_KEYS:
                    key = (label, "(other)", "(other)")
                entry = self.per_field.setdefault(key, [0, error.detail, []])
            entry[0] += 1
            if len(entry[2]) < _EXAMPLES:
                entry[2].append(where)

    def print(self, out: TextIO, reading: Reading) -> None:
        print(
            f"checked {self.checked} messages: {self.checked - self.violating} conform, "
            f"{self.violating} violate the plan ({reading.ignored} other lines ignored, "
            f"{reading.unreadable} unreadable)",
            file=out,
        )
        if reading.examples:
            print(f"  unreadable lines at {', '.join(reading.examples)}", file=out)
        for label, (checked, violating) in sorted(self.per_event.items()):
            if not violating:
                continue
            print(f"{label}: {violating} of {checked} violate", file=out)
            for (event, path, rule), (count, detail, examples) in sorted(self.per_field.items()):
                if event == label:
                    print(
                        f"  {path or '(message)'} [{rule}] x{count}: {detail} "
                        f"(at {', '.join(examples)})",
                        file=out,
                    )


def _label(message: dict[str, Any]) -> str:
    kind = message.get("type")
    named = message.get("event") if kind == "track" else message.get("name")
    return f"{kind} {named}" if isinstance(named, str) and named else str(kind)


def read_messages(files: Sequence[str], reading: Reading, *, progress: bool) -> Iterator[Line]:
    """
    The wire messages the JSON-lines *files* hold, with where each is.

    Raises:
        OSError: A file cannot be read.
    """
    for name in files:
        with contextlib.ExitStack() as stack:
            stream: IO[bytes] = (
                sys.stdin.buffer
                if name == "-"
                else stack.enter_context(pathlib.Path(name).open("rb"))
            )
            label = "stdin" if name == "-" else name
            for number, line in _numbered(stream, label, progress=progress):
                reading.lines += 1
                message = _message(line, number, reading, f"{label}:{number}")
                if message is not None:
                    yield f"{label}:{number}", message


def _message(line: bytes, number: int, reading: Reading, where: str) -> dict[str, Any] | None:
    """The wire message of one line, or ``None`` (counted) when it holds none."""
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError:
        if line.strip():
            reading.bad(where)
        else:
            reading.ignored += 1
        return None
    if not isinstance(record, dict):
        reading.ignored += 1
        return None
    if record.get("type") in BUILDERS:
        return record
    if "segment" not in record:
        reading.ignored += 1
        return None
    return _annotated(line, number, reading, where)


def _annotated(line: bytes, number: int, reading: Reading, where: str) -> dict[str, Any] | None:
    """The wire message `otel-segment import` would send for an annotated log line."""
    parsed = parse_line(line, number, time_field="timestamp", zone=_LOCAL_TIME)
    if isinstance(parsed, Skipped):
        reading.bad(where)
        return None
    try:
        built = BUILDERS[parsed.kind](_BASE_CONTEXT, **parsed.fields)
        wire: dict[str, Any] = orjson.loads(dumps(built))
    except (TypeError, ValueError, KeyError):
        reading.bad(where)
        return None
    return wire


def _numbered(stream: IO[bytes], label: str, *, progress: bool) -> Iterator[tuple[int, bytes]]:
    """Number the lines of *stream*; a progress bar (by bytes) when stderr is a terminal."""
    if not progress or not sys.stderr.isatty():
        yield from enumerate(stream, start=1)
        return
    from tqdm import tqdm  # noqa: PLC0415 - only on a terminal

    total = None if label == "stdin" else pathlib.Path(label).stat().st_size
    with tqdm(desc=label, total=total, unit="B", unit_scale=True, file=sys.stderr) as bar:
        done = 0
        for number, line in enumerate(stream, start=1):
            done += len(line)
            if number % _PROGRESS_EVERY == 0:
                bar.update(done)
                done = 0
            yield number, line
        bar.update(done)
