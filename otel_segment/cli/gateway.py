"""
``otel-segment gateway``: OTLP/HTTP and OTLP/gRPC in, Segment messages out.

The command needs the ``otel-segment[gateway]`` extra; its modules load only when it runs.
It logs JSON lines to stderr (python-json-logger) and exits 0 after a drain that
delivered or spooled everything, 1 otherwise, 2 on a usage error.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import pathlib
import sys
from typing import TYPE_CHECKING, Any, Final, cast

from otel_segment.pipeline.client import ENV_HOST, ENV_WRITE_KEY

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["add_gateway"]

ENV_TOKEN: Final = "OTEL_SEGMENT_GATEWAY_TOKEN"  # noqa: S105 - a variable name
_EPILOG: Final = """\
examples:
  otel-segment gateway --write-key KEY                       # :4318 HTTP, :4317 gRPC
  otel-segment gateway --http 127.0.0.1:4318 --grpc none --spool /var/lib/gateway.db
  OTEL_SEGMENT_GATEWAY_TOKEN=secret otel-segment gateway --tls-cert c.pem --tls-key k.pem
Senders export OTLP logs and traces (protobuf or JSON, gzip or not) to /v1/logs and
/v1/traces, or over gRPC; marked spans and log records become Segment messages.
GET /healthz, /readyz and /metrics (Prometheus). SIGTERM drains, then exits.
"""
_MIB: Final = 1024 * 1024


def add_gateway(commands: Any) -> None:
    """Register the ``gateway`` command on the ``otel-segment`` sub-command parser."""
    text = "Receive OTLP logs and traces; send their Segment messages through one client."
    command: argparse.ArgumentParser = commands.add_parser(
        "gateway",
        help=text,
        description=text,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_listening(command.add_argument_group("listening"))
    _add_delivery(command.add_argument_group("delivery (the client's options)"))
    _add_hooks(command.add_argument_group("hooks"))
    command.set_defaults(run=run_gateway)


def _add_listening(listen: argparse._ArgumentGroup) -> None:
    listen.add_argument(
        "--http",
        type=_address,
        default="0.0.0.0:4318",
        help="OTLP/HTTP HOST:PORT or 'none' (default 0.0.0.0:4318)",
    )
    listen.add_argument(
        "--grpc",
        type=_address,
        default="0.0.0.0:4317",
        help="OTLP/gRPC HOST:PORT or 'none' (default 0.0.0.0:4317)",
    )
    listen.add_argument(
        "--token",
        default=os.environ.get(ENV_TOKEN),
        help=f"bearer token senders must present (default ${ENV_TOKEN}; none: no check)",
    )
    listen.add_argument("--tls-cert", metavar="FILE", help="PEM certificate: serve TLS")
    listen.add_argument("--tls-key", metavar="FILE", help="PEM private key of --tls-cert")
    listen.add_argument(
        "--max-body-bytes",
        type=_positive_int,
        default=20 * _MIB,
        help="largest request body, also inflated; OTLP JSON: a quarter (default 20 MiB)",
    )
    listen.add_argument(
        "--drain-timeout",
        type=_positive_float,
        default=30.0,
        help="seconds to drain at SIGTERM (default 30)",
    )


def _add_delivery(segment: argparse._ArgumentGroup) -> None:
    segment.add_argument(
        "--write-key",
        default=os.environ.get(ENV_WRITE_KEY),
        help=f"source write key (default ${ENV_WRITE_KEY})",
    )
    segment.add_argument(
        "--host",
        default=os.environ.get(ENV_HOST),
        help=f"API base URL (default ${ENV_HOST}, else Segment)",
    )
    segment.add_argument(
        "--spool", metavar="PATH", help="SQLite spool: acknowledge only what is committed to it"
    )
    segment.add_argument(
        "--spool-max-bytes",
        type=_positive_int,
        default=64 * _MIB,
        help="message bytes the spool holds at most; beyond, the oldest are dropped "
        "(default 64 MiB)",
    )
    segment.add_argument(
        "--flush-at", type=_positive_int, default=100, help="messages per batch (default 100)"
    )
    segment.add_argument(
        "--flush-interval",
        type=_positive_float,
        default=0.5,
        help="seconds a message may wait (default 0.5)",
    )
    segment.add_argument(
        "--max-queue-size",
        type=_positive_int,
        default=10_000,
        help="messages held at most; beyond, 429 (default 10000)",
    )
    segment.add_argument(
        "--max-in-flight",
        type=_positive_int,
        default=2,
        help="requests to Segment at once (default 2)",
    )
    segment.add_argument("--gzip", action="store_true", help="compress request bodies")
    segment.add_argument(
        "--timeout", type=_positive_float, default=15.0, help="seconds per request (default 15)"
    )


def _add_hooks(hooks: argparse._ArgumentGroup) -> None:
    hooks.add_argument(
        "--plan",
        metavar="FILE",
        action="append",
        help="tracking plan (JSON or YAML; repeat for a catalog's files) checked on every message",
    )
    hooks.add_argument(
        "--on-violation",
        choices=("report", "drop"),
        default="report",
        help="a message breaking the plan: counted, and sent (report) or dropped (default report)",
    )
    hooks.add_argument(
        "--before-send",
        metavar="MODULE:FUNCTION",
        type=_function,
        help="callable(message) -> message | None run on every message; "
        "MODULE is imported from the working directory or sys.path",
    )


def run_gateway(args: argparse.Namespace) -> int:
    """Build the client and the gateway from *args*, serve until SIGTERM; the exit status."""
    try:
        from otel_segment.gateway import Gateway, GatewayConfig, run  # noqa: PLC0415 - the extra
    except ImportError as error:
        print(
            "otel-segment gateway needs the gateway extra: "
            f"pip install 'otel-segment[gateway]' ({error})",
            file=sys.stderr,
        )
        return 2
    from otel_segment.pipeline.client import Client  # noqa: PLC0415 - keep --help fast
    from otel_segment.plans.plan import TrackingPlan  # noqa: PLC0415 - keep --help fast

    try:
        plan = TrackingPlan.load(*args.plan) if args.plan else None
        config = GatewayConfig(
            http=args.http,
            grpc=args.grpc,
            token=args.token,
            tls_cert=args.tls_cert,
            tls_key=args.tls_key,
            max_body_bytes=args.max_body_bytes,
            drain_timeout=args.drain_timeout,
        )
        client = Client(
            args.write_key,
            args.host,
            spool=args.spool,
            spool_max_bytes=args.spool_max_bytes,
            flush_at=args.flush_at,
            flush_interval=args.flush_interval,
            max_queue_size=args.max_queue_size,
            max_in_flight=args.max_in_flight,
            gzip=args.gzip,
            timeout=args.timeout,
            plan=plan,
            on_violation=args.on_violation,
            before_send=args.before_send,
        )
    except (TypeError, ValueError) as error:
        print(f"otel-segment gateway: {error}", file=sys.stderr)
        return 2
    _log_json()
    try:
        drained = run(Gateway(config, client))
    except OSError as error:  # an address in use or not ours
        logging.getLogger("otel_segment.gateway").error("cannot listen: %s", error)  # noqa: TRY400
        client.shutdown(0)
        return 1
    return 0 if drained else 1


def _log_json() -> None:
    """Structured logs: the gateway's, the pipeline's and uvicorn's, as JSON lines on stderr."""
    from pythonjsonlogger.json import JsonFormatter  # noqa: PLC0415 - this command only

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter("{asctime}{levelname}{name}{message}", style="{", timestamp=True)
    )
    for name in ("otel_segment", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False


def _address(text: str) -> tuple[str, int] | None:
    if text.lower() == "none":
        return None
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:  # noqa: PLR2004 - the port range
        raise argparse.ArgumentTypeError(f"expected HOST:PORT or 'none', got {text!r}")
    return host.strip("[]") or "0.0.0.0", int(port)  # noqa: S104 - an empty host means all


def _function(text: str) -> Callable[..., Any]:
    """The callable *text* names (``module:function``), its module imported."""
    module_name, sep, name = text.partition(":")
    if not sep or not module_name or not name:
        raise argparse.ArgumentTypeError(f"expected MODULE:FUNCTION, got {text!r}")
    working = str(pathlib.Path.cwd())
    if working not in sys.path:  # as `python -m` does: the working directory's modules
        sys.path.insert(0, working)
    try:
        found = getattr(importlib.import_module(module_name), name)
    except Exception as error:  # noqa: BLE001 - any failure to import it is a usage error
        raise argparse.ArgumentTypeError(f"cannot load {text!r}: {error}") from None
    if not callable(found):
        raise argparse.ArgumentTypeError(f"{text!r} is not callable")
    return cast("Callable[..., Any]", found)


def _positive_int(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return number


def _positive_float(text: str) -> float:
    try:
        number = float(text)
    except ValueError:
        number = 0.0
    if not number > 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
    return number
