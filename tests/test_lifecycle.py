"""Tests for the pipeline's process lifecycle: interpreter exit and os.fork(), in subprocesses."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from collections import Counter
from typing import TYPE_CHECKING

import pytest

from otel_segment.sink import Sink

if TYPE_CHECKING:
    from _server import ScriptedServer


def run_script(source: str, *args: str, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    """Run *source* in a fresh interpreter with *args*; return the finished process."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(source), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


EXIT_WITHOUT_FLUSH = """
    import sys
    import otel_segment

    client = otel_segment.Client("k", host=sys.argv[1], flush_interval=30, flush_at=1000)
    for n in range(5):
        client.track("u1", "Exit", {"n": n})
    print(client.stats()["delivered"])
"""


EXIT_BOUNDED = """
    import sys
    import otel_segment

    def on_error(error, messages):
        print("on_error", type(error).__name__, [m["event"] for m in messages], flush=True)

    client = otel_segment.Client("k", host=sys.argv[1], exit_timeout=0.5, on_error=on_error)
    client.track("u1", "Lost")
"""


EXIT_WHILE_HANGING = """
    import sys
    import otel_segment

    def on_error(error, messages):
        print(type(error).__name__, len(messages), flush=True)

    client = otel_segment.Client("k", host=sys.argv[1], exit_timeout=0.5, on_error=on_error)
    for n in range(3000):
        client.track("u1", "Lost", {"n": n})
"""


FIRST_MESSAGE_AT_EXIT = """
    import sys
    import otel_segment

    client = otel_segment.Client("k", host=sys.argv[1])
    client.every(3600, lambda: client.group("u1", "g1", {"seats": 3}))
"""


class TestExit:
    """At interpreter exit the queue is drained, within a bound."""

    def test_first_message_sent_at_exit(self, segment_server: ScriptedServer) -> None:
        """
        A message made only at exit (a final snapshot) still arrives.

        Python 3.12+ refuses to start threads in an exit hook: the queue is then sent
        from the exit hook's own thread.
        """
        done = run_script(FIRST_MESSAGE_AT_EXIT, segment_server.url)

        assert 0 == done.returncode, done.stderr
        assert segment_server.wait_for_messages(1)
        [message] = segment_server.messages
        assert ("group", "g1", {"seats": 3}) == (
            message["type"],
            message["groupId"],
            message["traits"],
        )

    def test_exit_without_flush(self, segment_server: ScriptedServer) -> None:
        """A script that never flushes still delivers its five messages."""
        done = run_script(EXIT_WITHOUT_FLUSH, segment_server.url)

        assert (0, "0") == (done.returncode, done.stdout.strip()), done.stderr
        assert segment_server.wait_for_messages(5)
        assert [0, 1, 2, 3, 4] == sorted(m["properties"]["n"] for m in segment_server.messages)

    def test_exit_with_dead_server_is_bounded(self) -> None:
        """With nothing listening, exit gives up after exit_timeout and reports the loss."""
        with Sink() as gone:
            url = gone.url
        started = time.monotonic()
        done = run_script(EXIT_BOUNDED, url)
        elapsed = time.monotonic() - started

        assert 0 == done.returncode, done.stderr
        assert elapsed < 10, "the default retry budget is 600 s; exit_timeout must bound it"
        assert "on_error DeliveryError ['Lost']" == done.stdout.strip()
        assert "not delivered" in done.stderr

    def test_exit_with_hanging_server_is_bounded(self, segment_server: ScriptedServer) -> None:
        """A request that never ends cannot hold the exit past exit_timeout; it is logged."""
        segment_server.hang(60)
        started = time.monotonic()
        done = run_script(EXIT_BOUNDED, segment_server.url)

        assert 0 == done.returncode, done.stderr
        assert time.monotonic() - started < 10
        assert "1 messages were still being sent" in done.stderr
        assert [] == segment_server.messages

    def test_exit_while_the_server_hangs_reports_every_message(
        self, segment_server: ScriptedServer
    ) -> None:
        """3,000 messages, every request hangs: all are reported before the process ends."""
        for _ in range(10):
            segment_server.hang(60)
        done = run_script(EXIT_WHILE_HANGING, segment_server.url)

        assert 0 == done.returncode, done.stderr
        reported = [line.split() for line in done.stdout.splitlines()]
        assert {"ShutdownError"} == {kind for kind, _ in reported}
        assert 3000 == sum(int(count) for _, count in reported)
        assert "more message(s) not delivered since the last report" in done.stderr

    def test_module_api_exit(self, segment_server: ScriptedServer) -> None:
        """The module-level API's default client is drained at exit too."""
        script = """
            import sys
            import otel_segment

            otel_segment.write_key = "k"
            otel_segment.host = sys.argv[1]
            otel_segment.track("u1", "Module")
        """
        done = run_script(script, segment_server.url)
        assert 0 == done.returncode, done.stderr
        assert segment_server.wait_for_messages(1)


FORK = """
    import os
    import sys
    import otel_segment

    client = otel_segment.Client("k", host=sys.argv[1], flush_interval=30, flush_at=1000)
    for n in range(3):
        client.track("u1", "Parent", {"n": n})
    pid = os.fork()
    if pid == 0:
        for n in range(2):
            client.track("u2", "Child", {"n": n})
        ok = client.flush(timeout=10)
        stats = client.stats()
        print("child", ok, stats["delivered"], stats["queued"], flush=True)
        sys.exit(0 if ok else 3)
    for n in range(2):
        client.track("u1", "Parent", {"n": 3 + n})  # ids must differ from the child's
    _, status = os.waitpid(pid, 0)
    print("parent", os.waitstatus_to_exitcode(status), client.flush(timeout=10), flush=True)
"""


FORK_WITH_LOCKS_HELD = """
    import os
    import sys
    import threading
    import otel_segment

    client = otel_segment.Client("k", host=sys.argv[1], flush_interval=30)
    client.every(3600, lambda: client.track("u1", "Snapshot"))
    holding, release = threading.Event(), threading.Event()

    def hold():
        with client._periodic._lock, client._processor._lock:
            holding.set()
            release.wait()

    threading.Thread(target=hold, daemon=True).start()
    holding.wait()
    pid = os.fork()
    if pid == 0:
        import signal
        signal.alarm(15)  # a deadlocked child must not outlive the test
        client.track("u2", "Child")
        print("child", client.shutdown(timeout=5), flush=True)
        os._exit(0)
    release.set()
    _, status = os.waitpid(pid, 0)
    print("parent", os.waitstatus_to_exitcode(status), flush=True)
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
class TestFork:
    """After fork the child has a pipeline of its own; nothing is sent twice."""

    def test_fork(self, segment_server: ScriptedServer) -> None:
        """The child's flush returns True; parent and child messages each arrive once."""
        done = run_script(FORK, segment_server.url)

        assert 0 == done.returncode, done.stderr
        assert ["child True 2 0", "parent 0 True"] == done.stdout.split("\n")[:2]
        assert segment_server.wait_for_messages(7)
        messages = segment_server.messages
        counts = Counter(m["messageId"] for m in messages)
        assert {1} == set(counts.values())
        assert Counter({"Parent": 5, "Child": 2}) == Counter(m["event"] for m in messages)

    def test_fork_while_locks_are_held(self, segment_server: ScriptedServer) -> None:
        """Locks a parent's thread held at fork do not deadlock the child's shutdown."""
        done = run_script(FORK_WITH_LOCKS_HELD, segment_server.url, timeout=20)

        assert 0 == done.returncode, done.stderr
        assert ["child True", "parent 0"] == done.stdout.split("\n")[:2]
        assert segment_server.wait_for_messages(2)
        events = Counter(m["event"] for m in segment_server.messages)
        # The parent's periodic snapshot stays the parent's: the child does not repeat it.
        assert Counter({"Snapshot": 1, "Child": 1}) == events


FORK_DURING_FIRST_SENDS = """
    import collections
    import os
    import random
    import signal
    import sys
    import threading

    import otel_segment

    url, trials = sys.argv[1], int(sys.argv[2])
    rng = random.Random(20261204)
    children = collections.deque()
    outcomes = collections.Counter()
    parent = os.getpid()
    importing, forked = threading.Event(), threading.Event()


    def hold_imports(event, args):
        # The moment seen to hang: a worker's first request imports netrc, which imports
        # shlex. Hold it there, with netrc's import lock taken, until the main thread forked.
        if event == "import" and args[0] == "shlex" and os.getpid() == parent:
            if threading.current_thread() is not threading.main_thread():
                importing.set()
                forked.wait(0.05)


    sys.addaudithook(hold_imports)

    def reap():
        _, status = os.waitpid(children.popleft(), 0)
        if os.WIFSIGNALED(status):  # killed by its alarm
            outcomes["hung"] += 1
        elif os.waitstatus_to_exitcode(status) != 0:
            outcomes["not flushed"] += 1

    for _ in range(trials):
        for name in ("netrc", "shlex"):  # as in a fresh process: a first request imports them
            sys.modules.pop(name, None)
        importing.clear()
        forked.clear()
        client = otel_segment.Client("k", host=url, flush_at=10)
        for n in range(20):
            client.track("u1", "Parent", {"n": n})
        importing.wait(rng.random() / 500)  # fork at a random moment of the first sends
        pid = os.fork()
        if pid == 0:
            signal.alarm(3)  # a hung child ends by SIGALRM: counted as hung

            def send(k):
                for n in range(2):
                    client.track("u2", "Child", {"n": n, "k": k})

            helpers = [threading.Thread(target=send, args=(k,)) for k in range(2)]
            for helper in helpers:
                helper.start()
            for helper in helpers:
                helper.join()
            flushed = []
            flusher = threading.Thread(target=lambda: flushed.append(client.flush(timeout=10)))
            flusher.start()
            flusher.join()
            os._exit(0 if flushed == [True] else 1)
        forked.set()
        children.append(pid)
        client.shutdown(5)
        if len(children) >= 8:  # a few children at a time overlap their requests
            reap()
    while children:
        reap()
    print(dict(outcomes))
"""


POOL = """
    import multiprocessing
    import sys
    from concurrent.futures import ProcessPoolExecutor

    import otel_segment

    url, how = sys.argv[1], sys.argv[2]
    client = otel_segment.Client("k", host=url, flush_interval=30, flush_at=1000)


    def work(numbers):
        for n in numbers:
            client.track("u1", "Pooled", {"n": n})
        return len(numbers)


    if __name__ == "__main__":
        context = multiprocessing.get_context("fork")
        chunks = [range(start, start + 100) for start in range(0, 2000, 100)]
        if how == "close-join":
            pool = context.Pool(4)
            print(sum(pool.map(work, chunks)))
            pool.close()
            pool.join()
        elif how == "executor":
            with ProcessPoolExecutor(4, mp_context=context) as executor:
                print(sum(executor.map(work, chunks)))
        elif how == "with-pool":  # terminate(): SIGTERM to every worker
            otel_segment.drain_on_signals()
            with context.Pool(4) as pool:
                print(sum(pool.map(work, chunks)))
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
class TestForkedChildren:
    """A forked child is immune to what its parent's threads held, and drains on its way out."""

    def test_fork_during_the_first_sends_never_hangs(self) -> None:
        """200 forks at random moments of a parent's first requests: every child delivers."""
        with Sink() as sink:
            done = run_script(FORK_DURING_FIRST_SENDS, sink.url, "200", timeout=120)
            assert 0 == done.returncode, done.stderr
            assert sink.wait_for_messages(200 * 24, timeout=10)
            delivered = len(sink.messages)

        assert ("{}", 200 * 24) == (done.stdout.strip(), delivered)

    @pytest.mark.parametrize("how", ["close-join", "executor", "with-pool"])
    def test_multiprocessing_workers_lose_nothing(self, how: str) -> None:
        """
        Pool and ProcessPoolExecutor workers (fork) deliver all 2,000 messages.

        Their workers end with ``os._exit``: no ``atexit``. ``with Pool()`` ends them with
        SIGTERM, which only drain_on_signals() turns into a drain.
        """
        with Sink() as sink:
            done = run_script(POOL, sink.url, how, timeout=60)
            assert 0 == done.returncode, done.stderr
            sink.wait_for_messages(2000, timeout=10)
            numbers = sorted(message["properties"]["n"] for message in sink.messages)

        assert ("2000", list(range(2000))) == (done.stdout.strip(), numbers)


EXIT_AFTER_CLIENT_DROPPED = """
    import gc
    import sys
    import otel_segment

    def send():
        client = otel_segment.Client("k", host=sys.argv[1], flush_interval=30, flush_at=1000)
        client.track("u1", "Dropped")

    send()
    gc.collect()
"""


class TestExitEdges:
    """At interpreter exit, queued messages are drained."""

    def test_client_no_longer_referenced(self, segment_server: ScriptedServer) -> None:
        """A client the program dropped without shutdown still delivers at exit."""
        done = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(EXIT_AFTER_CLIENT_DROPPED), segment_server.url],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )

        assert 0 == done.returncode, done.stderr
        assert segment_server.wait_for_messages(1, timeout=5)
