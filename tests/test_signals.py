"""Tests for otel_segment.pipeline.signals: drain_on_signals(), with real signals."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import threading

import pytest

import otel_segment
from otel_segment.sink import Sink

SIGNALLED = """
    import os
    import signal
    import sys
    import otel_segment

    how = sys.argv[2]
    client = otel_segment.Client("k", host=sys.argv[1], flush_interval=30, flush_at=1000)
    if how == "own-handler":
        signal.signal(signal.SIGTERM, lambda *_: print("own handler", client.stats()["delivered"]))
    if how == "ignored":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if how != "not-installed":
        otel_segment.drain_on_signals()
        otel_segment.drain_on_signals()  # twice: the handler before stays the program's own
    for n in range(10):
        client.track("u1", "Signalled", {"n": n})
    try:
        os.kill(os.getpid(), signal.SIGINT if how == "sigint" else signal.SIGTERM)
        print("went on", client.stats()["delivered"], client.closed)
    except KeyboardInterrupt:
        print("interrupted", client.stats()["delivered"], client.closed)
"""


def run(how: str, sink: Sink) -> subprocess.CompletedProcess[str]:
    """Run the SIGNALLED script with *how* against *sink*."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(SIGNALLED), sink.url, how],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


class TestDrainOnSignals:
    """The signal drains every client first, then does what it did before."""

    def test_sigterm_drains_then_ends_the_process(self) -> None:
        """SIGTERM's default action still ends the process, once the queue is delivered."""
        with Sink() as sink:
            done = run("default", sink)
            assert sink.wait_for_messages(10, timeout=5), done.stderr
            delivered = len(sink.messages)

        assert (-signal.SIGTERM, "", 10) == (done.returncode, done.stdout, delivered)

    def test_without_it_sigterm_loses_the_queue(self) -> None:
        """Python's default SIGTERM ends the process at once: the queue is lost (documented)."""
        with Sink() as sink:
            done = run("not-installed", sink)
            delivered = len(sink.messages)

        assert (-signal.SIGTERM, 0) == (done.returncode, delivered)

    def test_sigint_flushes_then_raises_keyboard_interrupt(self) -> None:
        """Python's SIGINT handler runs after a flush; the client stays open."""
        with Sink() as sink:
            done = run("sigint", sink)

        assert (0, "interrupted 10 False") == (done.returncode, done.stdout.strip()), done.stderr

    def test_the_programs_own_handler_runs_after_the_flush(self) -> None:
        """A handler installed before is called, with everything delivered; the process lives."""
        with Sink() as sink:
            done = run("own-handler", sink)

        assert (0, ["own handler 10", "went on 10 False"]) == (
            done.returncode,
            done.stdout.splitlines(),
        ), done.stderr

    def test_an_ignored_signal_stays_ignored(self) -> None:
        """SIG_IGN before: the clients are flushed and the process goes on."""
        with Sink() as sink:
            done = run("ignored", sink)

        assert (0, "went on 10 False") == (done.returncode, done.stdout.strip()), done.stderr

    def test_not_a_signal(self) -> None:
        """A number that is no signal is refused with ValueError."""
        with pytest.raises(ValueError, match="999"):
            otel_segment.drain_on_signals([999])

    def test_only_from_the_main_thread(self) -> None:
        """Python installs signal handlers from the main thread only: ValueError elsewhere."""
        raised: list[BaseException] = []

        def install() -> None:
            try:
                otel_segment.drain_on_signals([signal.SIGUSR2])
            except ValueError as error:
                raised.append(error)

        thread = threading.Thread(target=install)
        thread.start()
        thread.join()
        assert [ValueError] == [type(error) for error in raised]
