"""
The ``otel-segment`` command line: ``demo``, ``sink``, ``send`` and ``import``.

Each command returns an exit status: 0 success, 1 a delivery or input failure, 2 a usage
error (argparse's own).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import logging
import os
import pathlib
import sys
import threading
import zoneinfo
from typing import TYPE_CHECKING, Any, Final, TextIO

from otel_segment._version import __version__
from otel_segment.cli.common import CLI_RETRY, as_flags, write_key_for
from otel_segment.cli.gateway import add_gateway
from otel_segment.cli.plan import add_plan
from otel_segment.cli.validate import add_validate
from otel_segment.pipeline.client import ENV_HOST, ENV_WRITE_KEY, Client
from otel_segment.pipeline.messages import MESSAGE_TYPES
from otel_segment.sink import Sink, format_message

if TYPE_CHECKING:
    from collections.abc import Sequence

    from otel_segment.sink import ReceivedRequest

__all__ = ["main"]

_EPILOG_SEND: Final = """\
examples:
  otel-segment send track --user-id u1 --event "Test" --properties '{"a": 1}'
  otel-segment send identify --user-id u1 --traits '{"plan": "pro"}'
  otel-segment send alias --previous-id anon-7 --user-id u1 --host http://127.0.0.1:8080
"""
_EPILOG_SINK: Final = """\
examples:
  otel-segment sink --port 8080            # then: SEGMENT_HOST=http://127.0.0.1:8080
  otel-segment sink --port 8080 --json --output received.jsonl
"""
_EPILOG_IMPORT: Final = """\
examples:
  otel-segment import app.log.jsonl                 # send, with a progress bar
  otel-segment import --dry-run app.log.jsonl       # validate only
  otel-segment import --timezone Europe/Berlin app.log.jsonl
  cat app.log.jsonl | otel-segment import -
Each line is one JSON object, as python-json-logger writes it. A line whose "segment"
field holds an annotation (as for SegmentHandler) becomes a message with its own
timestamp; the other fields become properties (traits for identify/group).
Safe to run again: each message keeps the line's own messageId, or gets one derived
from the line's content and line number, so Segment drops the repeats. Times without
an offset are read as this machine's local time (--utc, --timezone to say otherwise).
Stops with a summary when the endpoint keeps failing (~20 s) or on Ctrl-C.
"""
_EPILOG_DEMO: Final = """\
examples:
  otel-segment demo                                   # local sink, no write key
  otel-segment demo --host https://api.segment.io --write-key KEY
"""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    # Commands report failures themselves; keep the pipeline's log lines off the terminal.
    logging.getLogger("otel_segment").addHandler(logging.NullHandler())
    logging.getLogger("otel_segment").propagate = False
    if args.command is None:
        parser.print_help()
        return 2
    status: int = args.run(args)
    return status


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="otel-segment",
        description="Segment analytics from logging, OpenTelemetry and decorated functions.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_demo(commands)
    _add_sink(commands)
    _add_send(commands)
    _add_import(commands)
    add_validate(commands)
    add_plan(commands)
    add_gateway(commands)
    return parser


def _command(commands: Any, name: str, help_text: str, epilog: str) -> argparse.ArgumentParser:
    command: argparse.ArgumentParser = commands.add_parser(
        name,
        help=help_text,
        description=help_text,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    return command


def _add_endpoint_options(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--host", default=os.environ.get(ENV_HOST), help=f"API base URL (default ${ENV_HOST})"
    )
    command.add_argument(
        "--write-key",
        default=os.environ.get(ENV_WRITE_KEY),
        help=f"source write key (default ${ENV_WRITE_KEY}; not needed for a local sink)",
    )
    command.add_argument("--gzip", action="store_true", help="compress request bodies")
    command.add_argument(
        "--timeout", type=float, default=15.0, help="seconds per request (default 15)"
    )


# -- sink ----------------------------------------------------------------------------


def _add_sink(commands: Any) -> None:
    command = _command(
        commands,
        "sink",
        "Run a local Segment-compatible endpoint and show what arrives.",
        _EPILOG_SINK,
    )
    command.add_argument("--bind", default="127.0.0.1", help="address (default 127.0.0.1)")
    command.add_argument("--port", type=int, default=8080, help="port (default 8080; 0 = any)")
    command.add_argument("--json", action="store_true", help="print JSON lines, one a message")
    command.add_argument("--output", metavar="FILE", help="write to FILE instead of stdout")
    command.add_argument(
        "--latency-ms", type=_milliseconds, default=0.0, help="answer each request this much later"
    )
    command.set_defaults(run=_run_sink)


def _run_sink(args: argparse.Namespace) -> int:
    try:
        out: TextIO = (
            pathlib.Path(args.output).open("a", encoding="utf-8") if args.output else sys.stdout  # noqa: SIM115 - closed below
        )
    except OSError as exc:
        print(f"otel-segment sink: cannot write {args.output}: {exc}", file=sys.stderr)
        return 1
    lock = threading.Lock()

    def show(request: ReceivedRequest) -> None:
        with lock:
            for message in request.messages:
                line = (
                    json.dumps(message, ensure_ascii=False)
                    if args.json
                    else format_message(message)
                )
                print(line, file=out, flush=True)

    try:
        sink = Sink(
            host=args.bind,
            port=args.port,
            latency_seconds=args.latency_ms / 1000,
            on_batch=show,
            keep=False,
        )
    except (OSError, OverflowError) as exc:  # OverflowError: a port > 65535
        if out is not sys.stdout:
            out.close()
        print(
            f"otel-segment sink: cannot listen on {args.bind}:{args.port}: {exc}", file=sys.stderr
        )
        return 1
    with sink:
        print(f"listening on {sink.url}  (SEGMENT_HOST={sink.url}; Ctrl-C stops)", file=sys.stderr)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()
    if out is not sys.stdout:
        out.close()
    return 0


# -- send ----------------------------------------------------------------------------


def _add_send(commands: Any) -> None:
    command = _command(
        commands, "send", "Send one message now, e.g. to test a write key.", _EPILOG_SEND
    )
    command.add_argument("type", choices=MESSAGE_TYPES, help="the Segment call")
    _add_endpoint_options(command)
    for flag in (
        "user-id",
        "anonymous-id",
        "event",
        "name",
        "category",
        "group-id",
        "previous-id",
        "message-id",
    ):
        command.add_argument(f"--{flag}")
    for flag in ("properties", "traits", "context", "integrations"):
        command.add_argument(f"--{flag}", type=_json_object, metavar="JSON")
    command.add_argument("--timestamp", type=_timestamp, metavar="ISO-8601")
    command.set_defaults(run=_run_send)


_FIELDS_BY_TYPE: Final = {
    "track": ("user_id", "anonymous_id", "event", "properties"),
    "identify": ("user_id", "anonymous_id", "traits"),
    "page": ("user_id", "anonymous_id", "category", "name", "properties"),
    "screen": ("user_id", "anonymous_id", "category", "name", "properties"),
    "group": ("user_id", "anonymous_id", "group_id", "traits"),
    "alias": ("previous_id", "user_id"),
}
_COMMON_FIELDS: Final = ("context", "timestamp", "integrations", "message_id")


def _run_send(args: argparse.Namespace) -> int:
    given = {k: v for k, v in vars(args).items() if v is not None}
    allowed = _FIELDS_BY_TYPE[args.type] + _COMMON_FIELDS
    stray = sorted(k for k in given if k in _all_fields() and k not in allowed)
    if stray:
        flags = ", ".join("--" + k.replace("_", "-") for k in stray)
        print(f"otel-segment send: {args.type} takes no {flags}", file=sys.stderr)
        return 2
    errors: list[Exception] = []
    try:
        client = Client(
            write_key_for(args.host, args.write_key),
            args.host,
            sync_mode=True,
            gzip=args.gzip,
            timeout=args.timeout,
            retry=CLI_RETRY,
            on_error=lambda error, _messages: errors.append(error),
        )
    except (TypeError, ValueError) as exc:
        print(f"otel-segment send: {as_flags(str(exc))}", file=sys.stderr)
        return 2
    with client:
        try:
            accepted, message = client.message(
                args.type, **{k: given[k] for k in allowed if k in given}
            )
        except (TypeError, ValueError) as exc:
            print(f"otel-segment send: {as_flags(str(exc), _all_fields())}", file=sys.stderr)
            return 2
    if not accepted:
        reason = errors[0] if errors else "not accepted"
        print(f"otel-segment send: not delivered to {client.host}: {reason}", file=sys.stderr)
        return 1
    print(f"sent {format_message(message)}  messageId={message['messageId']}")
    return 0


def _all_fields() -> set[str]:
    return {f for fields in _FIELDS_BY_TYPE.values() for f in fields} | set(_COMMON_FIELDS)


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON ({exc.msg}): {text!r}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"must be a JSON object, got {text!r}")
    return value


def _milliseconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:  # also refuses NaN
        raise argparse.ArgumentTypeError(f"must be a number >= 0, got {text!r}")
    return value


def _zone(text: str) -> dt.tzinfo:
    try:
        return zoneinfo.ZoneInfo(text)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise argparse.ArgumentTypeError(f"unknown time zone: {text!r}") from None


def _timestamp(text: str) -> dt.datetime:
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO-8601 time: {text!r}") from None


# -- import and demo (in their own modules) ------------------------------------------


def _add_import(commands: Any) -> None:
    command = _command(
        commands, "import", "Replay JSON-lines logs as historical messages.", _EPILOG_IMPORT
    )
    command.add_argument("files", nargs="+", metavar="FILE", help="JSON-lines files; - is stdin")
    _add_endpoint_options(command)
    command.add_argument("--dry-run", action="store_true", help="validate, send nothing")
    command.add_argument(
        "--timestamp-field",
        default="timestamp",
        help='field holding the record time, ISO-8601 or epoch seconds (default "timestamp"; '
        '"created" is tried next)',
    )
    zones = command.add_mutually_exclusive_group()
    zones.add_argument(
        "--utc",
        dest="zone",
        action="store_const",
        const=dt.UTC,
        help="read times without an offset as UTC (default: this machine's local time)",
    )
    zones.add_argument(
        "--timezone",
        dest="zone",
        type=_zone,
        metavar="NAME",
        help="read times without an offset in this IANA zone, e.g. Europe/Berlin",
    )
    command.add_argument(
        "--no-progress", action="store_true", help="no progress bar even on a terminal"
    )
    command.set_defaults(run=_run_import, zone=None)


def _run_import(args: argparse.Namespace) -> int:
    from otel_segment.cli.replay import run_import  # noqa: PLC0415 - loaded only for this command

    return run_import(args)


def _add_demo(commands: Any) -> None:
    command = _command(
        commands,
        "demo",
        "Drive logging, OpenTelemetry and decorators through one client; show the batches.",
        _EPILOG_DEMO,
    )
    _add_endpoint_options(command)
    command.set_defaults(run=_run_demo)


def _run_demo(args: argparse.Namespace) -> int:
    from otel_segment.cli.demo import run_demo  # noqa: PLC0415 - loads the OTel SDK

    return run_demo(args)
