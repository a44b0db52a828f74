"""
The fault suite: crashes, outages, restarts, resets, timeouts; a full, corrupt or shared spool.

Each test runs a real local server (and, where a process must die or compete, real
processes: ``tests/_spool_child.py``) and counts, by messageId, what was lost and what
arrived twice. Nothing may be lost, except what a full spool drops, which must be exactly
what was counted in ``stats()`` and handed to ``on_error``.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import json
import re
import selectors
import subprocess
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import pytest
from _helpers import ErrorLog, closed_port
from _server import ScriptedServer
from _spool_child import FAST_RETRY

from otel_segment import Client, SpoolError, SpoolFullError, SpoolLockedError
from otel_segment.pipeline.spool import Spool
from otel_segment.sink import Sink

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

CHILD = Path(__file__).with_name("_spool_child.py")
PATIENT_RETRY = FAST_RETRY.replace(max_attempts=5, max_elapsed=10.0)
"""Retries that do not run out on a busy machine, where a test counts on them."""
LINE_TIMEOUT_SECONDS = 20.0


@dataclasses.dataclass(frozen=True, slots=True)
class Tally:
    """What a server received against what was sent, by messageId."""

    lost: set[str]
    duplicates: int
    unexpected: set[str]


def tally(sent: Iterable[str], received: list[dict[str, Any]]) -> Tally:
    """Count lost, duplicated and unexpected messages."""
    expected = set(sent)
    counts = collections.Counter(message["messageId"] for message in received)
    return Tally(
        lost=expected - set(counts),
        duplicates=sum(count - 1 for count in counts.values()),
        unexpected=set(counts) - expected,
    )


def ids(prefix: str, count: int) -> list[str]:
    """The message ids ``prefix-0`` ... as the child process and the tests give them."""
    return [f"{prefix}-{number}" for number in range(count)]


def track_all(client: Client, message_ids: list[str]) -> None:
    """Track one message per id; each must be accepted."""
    for message_id in message_ids:
        accepted, _ = client.track("u1", "Fault Tested", {"id": message_id}, message_id=message_id)
        assert accepted


class Child:
    """A ``_spool_child.py`` process with pipes; killed and reaped on exit."""

    def __init__(self, *args: str, stderr: Any = subprocess.DEVNULL) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(CHILD), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )

    def read_line(self, timeout: float = LINE_TIMEOUT_SECONDS) -> str:
        """The next line on its stdout; fails the test after *timeout* seconds."""
        stdout = self.process.stdout
        assert stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(stdout, selectors.EVENT_READ)
            assert selector.select(timeout), f"no line from the child within {timeout} s"
        return stdout.readline().strip()

    def close(self) -> None:
        """Close its stdin, then make sure it is gone."""
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> Self:
        """Use in a ``with`` block."""
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Close."""
        self.close()


def run_child(*args: str) -> dict[str, Any]:
    """Run a child to its end; the JSON it printed last."""
    done = subprocess.run(
        [sys.executable, str(CHILD), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert 0 == done.returncode, done.stderr
    result: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return result


@pytest.fixture
def client_defaults() -> dict[str, Any]:
    """Spooled clients give up on a request after 5 s."""
    return {"timeout": 5.0}


def spooled_rows(path: Path) -> int:
    """Messages left in the spool at *path* (the spool must be free)."""
    with Spool(path) as spool:
        return spool.count


class TestCrash:
    """A process killed with SIGKILL mid-stream loses nothing that was durable."""

    def test_kill_mid_stream_then_a_new_process_delivers_everything(self, spool_path: Path) -> None:
        """Kill -9 while batches are in flight; a new process delivers every message."""
        sent = ids("m", 2000)
        with Sink(latency_seconds=0.1) as sink:
            with Child("produce", sink.url, str(spool_path), "--count", "2000") as child:
                assert "DURABLE" == child.read_line()
                assert sink.wait_for_messages(600, timeout=10)  # well into the stream
                child.process.kill()
                child.process.wait(10)
            before = len(sink.messages)
            result = run_child("drain", sink.url, str(spool_path))
            counted = tally(sent, sink.messages)

        assert before < len(sent), "the kill came after the end of the stream"
        assert (True, True) == (result["flushed"], result["closed"])
        assert (set(), set()) == (counted.lost, counted.unexpected)
        assert 0 == spooled_rows(spool_path)


class TestOutage:
    """The server is down or restarts; with a spool, nothing is lost."""

    def test_down_longer_than_the_retry_budget_then_back(
        self, spooled: Callable[..., Client], spool_path: Path
    ) -> None:
        """Batches out of retries stay spooled (not failed) and go once the server is back."""
        port, errors, sent = closed_port(), ErrorLog(), ids("m", 300)
        client = spooled(f"http://127.0.0.1:{port}", on_error=errors)
        track_all(client, sent)

        assert client.flush(10)  # everything given up for now: kept in the spool
        stats = client.stats()
        assert (0, 0, 300) == (stats["delivered"], stats["failed"], stats["spooled"])
        with Sink(port=port) as sink:
            assert sink.wait_for_messages(300, timeout=10)
            assert client.shutdown(5)
            counted = tally(sent, sink.messages)

        assert (set(), 0, []) == (counted.lost, counted.duplicates, errors.calls)
        assert 0 == spooled_rows(spool_path)

    def test_without_a_spool_an_outage_fails_messages(self) -> None:
        """The behaviour the spool improves on: given-up batches go to on_error."""
        errors = ErrorLog()
        with Client(
            "test-key", host=f"http://127.0.0.1:{closed_port()}", retry=FAST_RETRY, on_error=errors
        ) as client:
            track_all(client, ids("m", 20))
            assert client.flush(10)
            assert 20 == client.stats()["failed"]
        assert set(ids("m", 20)) == {message["messageId"] for message in errors.messages}

    def test_server_restarts_mid_batch(self, spooled: Callable[..., Client]) -> None:
        """The server dies with a batch unanswered, comes back on its port: all arrive."""
        sent = ids("m", 200)
        with ScriptedServer() as first:
            first.hang(30)
            client = spooled(first.url)
            track_all(client, sent)
            assert first.wait_for_requests(1, timeout=5)
        delivered_before = first.messages
        port = int(first.url.rsplit(":", 1)[1])
        with Sink(port=port) as second:
            assert second.wait_for_messages(200 - len(delivered_before), timeout=10)
            assert client.shutdown(5)
            counted = tally(sent, delivered_before + second.messages)

        assert (set(), set()) == (counted.lost, counted.unexpected)


class TestUnreliableResponses:
    """Resets after acceptance and answers slower than the timeout cause duplicates only."""

    def test_reset_after_accept_duplicates_with_the_same_message_id(
        self, segment_server: ScriptedServer, spooled: Callable[..., Client]
    ) -> None:
        """The server keeps a batch but resets; the retry sends the same bytes again."""
        segment_server.accept_then_reset()
        client = spooled(segment_server.url, retry=PATIENT_RETRY)
        sent = ids("m", 50)
        track_all(client, sent)

        assert client.flush(10)
        received = segment_server.messages
        counted = tally(sent, received)
        assert (set(), 50) == (counted.lost, counted.duplicates)
        first, again = received[:50], received[50:]
        assert first == again  # same messageIds, same bytes

    def test_slow_answer_beyond_the_timeout(
        self, segment_server: ScriptedServer, spooled: Callable[..., Client]
    ) -> None:
        """A request that times out is retried; the late answer only adds duplicates."""
        segment_server.hang(1.0)
        client = spooled(segment_server.url, timeout=0.3, retry=PATIENT_RETRY)
        sent = ids("m", 50)
        track_all(client, sent)

        assert client.flush(10)
        assert segment_server.wait_for_messages(100, timeout=5)  # the hung one, answered late
        counted = tally(sent, segment_server.messages)
        assert (set(), 50) == (counted.lost, counted.duplicates)


class TestChaos:
    """Several threads through a server that fails in every way the suite knows."""

    def test_threads_through_a_flaky_server(
        self, segment_server: ScriptedServer, spooled: Callable[..., Client]
    ) -> None:
        """503s, resets, a reset after acceptance and a hang: every message arrives."""
        segment_server.respond_many(503, 3).reset().accept_then_reset().respond(500)
        segment_server.hang(1.0).reset().respond(429, {"Retry-After": "0"})
        client = spooled(segment_server.url, timeout=0.3, flush_at=20)
        batches = [ids(f"t{number}", 250) for number in range(4)]
        threads = [threading.Thread(target=track_all, args=(client, batch)) for batch in batches]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        sent = {message_id for batch in batches for message_id in batch}

        with segment_server._changed:
            assert segment_server._changed.wait_for(
                lambda: sent <= {m["messageId"] for m in segment_server._messages}, 15
            )
        counted = tally(sent, segment_server.messages)
        assert (set(), set()) == (counted.lost, counted.unexpected)
        assert 0 == client.stats()["failed"]


class TestFullSpool:
    """A full spool drops its oldest messages, and exactly those are counted and reported."""

    def test_drops_are_counted_exactly(
        self, spooled: Callable[..., Client], spool_path: Path
    ) -> None:
        """Lost == dropped == reported, message for message."""
        port, errors, sent = closed_port(), ErrorLog(), ids("m", 80)
        client = spooled(
            f"http://127.0.0.1:{port}",
            on_error=errors,
            spool_max_bytes=8_000,
            max_message_bytes=2_000,
        )
        track_all(client, sent[:40])
        assert client.flush(10)
        track_all(client, sent[40:])
        assert client.flush(10)
        dropped = {message["messageId"] for message in errors.messages}
        assert dropped
        assert {SpoolFullError} == {type(error) for error, _ in errors.calls}
        assert len(dropped) == client.stats()["dropped"]

        with Sink(port=port) as sink:
            assert sink.wait_for_messages(len(sent) - len(dropped), timeout=10)
            assert client.shutdown(5)
            counted = tally(sent, sink.messages)

        assert (dropped, 0) == (counted.lost, counted.duplicates)
        assert 0 == spooled_rows(spool_path)


class TestCorruptSpool:
    """A corrupt spool file is refused at construction, naming the path."""

    def test_clear_error_naming_the_path(self, spool_path: Path) -> None:
        """Client(spool=garbage) raises SpoolError (a ValueError); nothing is left locked."""
        spool_path.write_bytes(b"this is not an SQLite database" * 100)

        with pytest.raises(SpoolError, match=re.escape(str(spool_path))) as raised:
            Client("test-key", host="http://127.0.0.1:9", spool=spool_path)

        assert isinstance(raised.value, ValueError)
        assert "not a database" in str(raised.value)
        with Spool(spool_path, recover=True) as spool:  # the lock was released
            assert 0 == spool.count


class TestSharedSpool:
    """Two processes on one spool: the second is refused clearly; the file stays sound."""

    def test_second_process_refused_then_takes_over(self, spool_path: Path) -> None:
        """While one process owns the spool another is refused; after it dies, it delivers."""
        down = f"http://127.0.0.1:{closed_port()}"
        sent = ids("m", 100)
        with Child("produce", down, str(spool_path), "--count", "100") as child:
            assert "DURABLE" == child.read_line()
            with pytest.raises(SpoolLockedError, match=re.escape(str(spool_path))):
                Client("test-key", host=down, spool=spool_path)
            child.process.kill()
            child.process.wait(10)

        with Sink() as sink, Client("test-key", host=sink.url, spool=spool_path) as client:
            assert client.flush(10)
            counted = tally(sent, sink.messages)
        assert (set(), 0) == (counted.lost, counted.duplicates)


class TestFork:
    """A forked child runs in memory; the spool, its connection and its lock stay the parent's."""

    def test_child_in_memory_parent_keeps_the_spool(self, spool_path: Path, tmp_path: Path) -> None:
        """Both deliver; the parent's exit frees the spool although the child still runs."""
        log_path = tmp_path / "stderr.txt"
        with (
            Sink() as sink,
            log_path.open("w") as log,
            Child("fork", sink.url, str(spool_path), stderr=log) as child,
        ):
            lines = [child.read_line(), child.read_line()]  # the child's and the parent's
            reports = {report["who"]: report for report in map(json.loads, lines)}
            child.process.wait(10)  # the parent process ended; the forked child lives on
            assert 0 == spooled_rows(spool_path)  # free, and the parent delivered its rows
            assert sink.wait_for_messages(3, timeout=5)
            counted = tally(["parent-0", "parent-1", "child-0"], sink.messages)

        assert (set(), 0) == (counted.lost, counted.duplicates)
        assert (True, True) == (reports["parent"]["closed"], reports["child"]["flushed"])
        assert 0 == reports["child"]["spooled"]
        assert "stays with the parent" in log_path.read_text()
