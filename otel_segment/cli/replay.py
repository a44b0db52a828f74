"""
``otel-segment import``: replay JSON-lines logs as historical messages, safe to rerun.

Lines stream through one client in bounded memory: every :data:`_DRAIN_EVERY` messages
the importer waits for the queue to drain. How a line maps is in
:mod:`~otel_segment.cli.replay_lines` (times, deterministic message ids), what the run
came to in :mod:`~otel_segment.cli.replay_summary`.

The import stops early, and still prints its summary, when:

- the endpoint is unusable: a batch is given up after the command line's short retries
  (:data:`~otel_segment.cli.common.CLI_RETRY`: 4 attempts within 20 s) for any reason
  but its own content (400, 413). What is still queued is not sent;
- the user presses Ctrl-C. The first stops reading and gives what is queued
  :data:`_GRACE_SECONDS` to be delivered; a second one stops waiting at once.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import signal
import stat
import sys
import threading
from typing import IO, TYPE_CHECKING, Any, Final

from otel_segment.cli.common import CLI_RETRY, as_flags, write_key_for
from otel_segment.cli.replay_lines import Parsed, Skipped, TimeZone, parse_line
from otel_segment.cli.replay_summary import Summary
from otel_segment.pipeline.client import Client

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable, Iterator
    from types import FrameType

__all__ = ["INTERRUPTED", "run_import"]

INTERRUPTED: Final = 130
"""The exit status after Ctrl-C (128 + SIGINT), as shells report it."""

_DRAIN_EVERY: Final = 5_000
_GRACE_SECONDS: Final = 3.0  # what queued messages get after Ctrl-C or an endpoint failure
_POLL_SECONDS: Final = 0.2  # how often a drain wait looks at the stop flag
_INTERRUPTED_BY: Final = "interrupted (Ctrl-C)"


def run_import(args: argparse.Namespace) -> int:
    """Import every file named in *args*; returns the exit status."""
    stop = threading.Event()
    summary = Summary(stop)
    try:
        client = Client(
            write_key_for(args.host, args.write_key),
            args.host,
            send=not args.dry_run,
            gzip=args.gzip,
            timeout=args.timeout,
            retry=CLI_RETRY,
            on_error=summary.on_error,
        )
    except (TypeError, ValueError) as exc:
        print(f"otel-segment import: {as_flags(str(exc))}", file=sys.stderr)
        return 2
    status = 0
    with _interruptible(summary) as hurry:
        try:
            summary.all_read = all(
                not stop.is_set() and _import_file(client, name, args, summary, stop)
                for name in args.files
            )
            _drain(client, stop)
        except OSError as exc:
            print(f"otel-segment import: cannot read {exc.filename}: {exc}", file=sys.stderr)
            status = 1
        except KeyboardInterrupt:  # the second Ctrl-C: stop waiting
            pass
        finally:
            _close(client, stop, hurry.is_set() or summary.endpoint_down)
    if not args.dry_run:
        summary.settle(client.stats()["delivered"])
    summary.print(sys.stderr, dry_run=args.dry_run)
    if summary.stopped.startswith(_INTERRUPTED_BY):
        return INTERRUPTED
    return status or (0 if summary.ok else 1)


@contextlib.contextmanager
def _interruptible(summary: Summary) -> Iterator[threading.Event]:
    """
    While inside, Ctrl-C stops the import instead of raising; a second one hurries it.

    Yields the event set by the second Ctrl-C. Outside the main thread (a test calling
    :func:`run_import` from another thread), signals are left alone.
    """
    hurry = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield hurry
        return

    def on_sigint(_signum: int, _frame: FrameType | None) -> None:
        if not summary.stopped.startswith(_INTERRUPTED_BY):
            summary.stop(_INTERRUPTED_BY)
        elif not hurry.is_set():  # the second: also break a blocking read or wait
            hurry.set()
            raise KeyboardInterrupt
        # later ones: the import is already ending as fast as it can

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield hurry
    finally:
        signal.signal(signal.SIGINT, previous)


def _close(client: Client, stop: threading.Event, at_once: bool) -> None:
    """Shut the client down: with all the time it needs, a grace period, or none."""
    timeout = 0 if at_once else (_GRACE_SECONDS if stop.is_set() else None)
    try:
        client.shutdown(timeout)
    except KeyboardInterrupt:  # the second Ctrl-C, while waiting
        client.shutdown(0)


def _drain(client: Client, stop: threading.Event) -> bool:
    """Wait until what is queued is delivered or failed, or the import is stopped."""
    while not client.flush(_POLL_SECONDS):
        if stop.is_set():
            return False
    return True


def _import_file(
    client: Client, name: str, args: argparse.Namespace, summary: Summary, stop: threading.Event
) -> bool:
    """Import the lines of file *name* (``-``: stdin); ``False`` if stopped before its end."""
    zone = TimeZone() if args.zone is None else TimeZone(args.zone, str(args.zone))
    with contextlib.ExitStack() as stack:
        stream = (  # bytes: a line that is not UTF-8 is skipped, not the rest of the file
            sys.stdin.buffer if name == "-" else stack.enter_context(pathlib.Path(name).open("rb"))
        )
        label = "stdin" if name == "-" else name
        for number, line in _progress(stream, label, disabled=args.no_progress):
            if stop.is_set():
                return False
            summary.read += 1
            where = f"{label}:{number}"
            parsed = parse_line(line, number, time_field=args.timestamp_field, zone=zone)
            _import_line(client, parsed, where, summary)
            if summary.queued and summary.queued % _DRAIN_EVERY == 0:
                _drain(client, stop)
    return True


def _import_line(client: Client, parsed: Parsed | Skipped, where: str, summary: Summary) -> None:
    """Count a skipped line, or send a parsed one (a refusal skips it, with the reason)."""
    if not isinstance(parsed, Parsed):
        if parsed.reason:
            summary.skip(where, parsed.reason)
        else:
            summary.unannotated += 1
        return
    summary.refusal = ""
    try:
        accepted, _ = client.message(parsed.kind, **parsed.fields)
    except (TypeError, ValueError) as error:
        summary.skip(where, f"invalid message: {error}")
        return
    if accepted:
        summary.queued += 1
    else:
        summary.skip(where, f"refused: {summary.refusal or 'not accepted'}")


def _progress(stream: IO[bytes], label: str, *, disabled: bool) -> Iterator[tuple[int, bytes]]:
    """
    Number the lines of *stream*, with a progress bar when stderr is a terminal.

    For a regular file the bar counts bytes against the file's size, so it shows a
    total and an ETA; for a pipe it counts lines.
    """
    if disabled or not sys.stderr.isatty():
        yield from enumerate(stream, start=1)
        return
    from tqdm import tqdm  # noqa: PLC0415 - only on a terminal

    size = _regular_size(stream)
    bar_options: dict[str, Any] = (
        {"unit": " lines"}
        if size is None
        else {"total": size, "unit": "B", "unit_scale": True, "unit_divisor": 1024}
    )
    step: Callable[[bytes], int] = (lambda _line: 1) if size is None else len
    with tqdm(desc=label, file=sys.stderr, leave=False, **bar_options) as bar:
        for number, line in enumerate(stream, start=1):
            bar.update(step(line))
            yield number, line


def _regular_size(stream: IO[bytes]) -> int | None:
    """The size of *stream* if it is a regular file, else ``None``."""
    try:
        info = os.fstat(stream.fileno())
    except (OSError, ValueError):
        return None
    return info.st_size if stat.S_ISREG(info.st_mode) else None
