"""
``otel-segment plan infer FILE... > plan.json``: draft a tracking plan from logs.

Reads the same lines as ``otel-segment validate`` and prints a plan in the plain format
(a JSON Schema per event: types, required fields, enums for small closed sets), to be
reviewed, checked in, and then kept true in CI with ``otel-segment validate``.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any, Final

from otel_segment.cli.validate import Reading, read_messages
from otel_segment.plans.infer import PlanInference

if TYPE_CHECKING:
    import argparse

__all__ = ["add_plan", "run_infer"]

_EPILOG: Final = """\
examples:
  otel-segment plan infer received.jsonl > plan.json
  otel-segment plan infer --enum-max 5 app.log.jsonl other.jsonl > plan.json
"""


def add_plan(commands: Any) -> None:
    """Register ``plan infer`` with the command line's subparsers."""
    import argparse  # noqa: PLC0415 - only to build the parser

    command = commands.add_parser(
        "plan", help="work with tracking plans", description="Work with tracking plans."
    )
    actions = command.add_subparsers(dest="plan_command", metavar="ACTION", required=True)
    infer = actions.add_parser(
        "infer",
        help="draft a plan (JSON Schema per event) from JSON-lines logs",
        description="Draft a tracking plan from the messages in JSON-lines files; "
        "print it as JSON.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    infer.add_argument("files", metavar="FILE", nargs="+", help="JSON-lines files ('-': stdin)")
    infer.add_argument(
        "--enum-max",
        type=int,
        default=10,
        help="draft a string field with at most this many values as an enum (default 10)",
    )
    infer.add_argument("--no-progress", action="store_true", help="no progress bar")
    infer.set_defaults(run=run_infer)


def run_infer(args: argparse.Namespace) -> int:
    """Print the draft plan of the files named in *args*; returns the exit status."""
    inference = PlanInference(enum_max=args.enum_max)
    reading = Reading()
    try:
        for _, message in read_messages(args.files, reading, progress=not args.no_progress):
            inference.observe(message)
    except OSError as exc:
        print(f"otel-segment plan infer: {exc}", file=sys.stderr)
        return 2
    json.dump(inference.plan(), sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")
    print(
        f"drafted {len(inference.plan()['events'])} events from {inference.seen} messages "
        f"({reading.ignored} other lines ignored, {reading.unreadable} unreadable)",
        file=sys.stderr,
    )
    return 0 if inference.seen else 1
