"""Tests for otel_segment.pipeline.spooled: the pipeline with a spool, inside one process."""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any

from _helpers import ErrorLog

from otel_segment import Client, DeliveryError, SpoolError
from otel_segment.pipeline.spool import Spool
from otel_segment.pipeline.spooled import WRITE_INTERVAL_SECONDS, SpoolBacklog

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    import pytest
    from _server import ScriptedServer

DOWN = "http://127.0.0.1:9"  # the discard port: nothing answers


def processor_of(client: Client) -> SpoolBacklog:
    """The client's backlog, which must be the spool."""
    backlog = client._processor.backlog
    assert isinstance(backlog, SpoolBacklog)
    return backlog


def rows(path: Path) -> list[bytes]:
    """The messages in the (free) spool at *path*."""
    with Spool(path) as spool:
        return [data for _, data in spool.load(limit=100_000)]


class TestWriteBehind:
    """The caller's thread never writes; the writer commits within the stated bound."""

    def test_committed_within_the_bound(self, spooled: Callable[..., Client]) -> None:
        """Without any flush, a message is in the spool within the write interval (+slack)."""
        client = spooled(DOWN, flush_interval=30)
        processor = processor_of(client)
        started = time.monotonic()
        client.track("u1", "Ev")
        with processor._changed:
            assert processor._changed.wait_for(lambda: processor._written >= 1, timeout=2)
        assert time.monotonic() - started < WRITE_INTERVAL_SECONDS + 0.5

    def test_only_the_writer_thread_touches_the_file(
        self, spooled: Callable[..., Client], segment_server: ScriptedServer
    ) -> None:
        """Every spool write happens on the pipeline's spool thread."""
        client = spooled(segment_server.url)
        processor = processor_of(client)
        spool = processor._spool
        assert spool is not None
        threads: set[str] = set()
        write = spool.write

        def recording_write(*args: Any, **kwargs: Any) -> Any:
            threads.add(threading.current_thread().name)
            return write(*args, **kwargs)

        spool.write = recording_write  # type: ignore[method-assign]
        for number in range(200):
            client.track("u1", "Ev", {"n": number})
        assert client.flush(5)
        assert {"otel_segment-spool"} == threads


class TestLifecycle:
    """What stays in the spool, what is deleted, what a later client finds."""

    def test_a_later_client_sends_the_same_messages(
        self, spooled: Callable[..., Client], spool_path: Path, segment_server: ScriptedServer
    ) -> None:
        """Shut down during an outage: kept, not failed; the next client sends the same bytes."""
        errors = ErrorLog()
        first = spooled(DOWN, on_error=errors)
        sent = [first.track("u1", "Ev", {"n": n})[1] for n in range(10)]
        assert first.shutdown(2)
        assert (0, [], 10) == (first.stats()["failed"], errors.calls, len(rows(spool_path)))

        second = spooled(segment_server.url)
        assert second.flush(5)
        wire = [{**message, "timestamp": message["timestamp"]} for message in sent]
        assert [m["messageId"] for m in wire] == [m["messageId"] for m in segment_server.messages]
        assert 10 == second.stats()["delivered"]

    def test_in_flight_at_the_deadline_stays_spooled(
        self, spooled: Callable[..., Client], spool_path: Path, segment_server: ScriptedServer
    ) -> None:
        """A batch still being sent at shutdown's deadline is kept, not failed; sent later."""
        segment_server.hang(30)
        errors = ErrorLog()
        first = spooled(segment_server.url, on_error=errors, max_in_flight=1)
        sent = [first.track("u1", "Ev", {"n": n})[1] for n in range(10)]
        assert first.flush(0.5) is False  # committed, fed, and stuck in the hung request
        first.shutdown(0.2)
        assert (0, [], 10) == (first.stats()["failed"], errors.calls, len(rows(spool_path)))

        second = spooled(segment_server.url)
        assert second.flush(5)
        assert [m["messageId"] for m in sent] == [m["messageId"] for m in segment_server.messages]

    def test_refused_for_good_fails_and_leaves_the_spool(
        self, spooled: Callable[..., Client], spool_path: Path, segment_server: ScriptedServer
    ) -> None:
        """A status that is never retried fails as without a spool; its rows are deleted."""
        errors = ErrorLog()
        segment_server.respond(400)
        client = spooled(segment_server.url, on_error=errors)
        client.track("u1", "Ev")
        assert client.flush(5)
        assert client.shutdown(5)

        assert [DeliveryError] == [type(error) for error, _ in errors.calls]
        assert (1, []) == (client.stats()["failed"], rows(spool_path))

    def test_a_backlog_larger_than_the_memory_window(
        self, spooled: Callable[..., Client], segment_server: ScriptedServer
    ) -> None:
        """200 spooled messages go through a queue of 20, each exactly once."""
        first = spooled(DOWN, max_queue_size=20)
        for chunk in range(10):
            for n in range(20):
                assert first.track("u1", "Ev", {"n": chunk * 20 + n})[0]
            assert processor_of(first).wait_durable(5)
        assert first.shutdown(2)

        second = spooled(segment_server.url, max_queue_size=20)
        assert second.flush(10)
        numbers = [message["properties"]["n"] for message in segment_server.messages]
        assert list(range(200)) == sorted(numbers)
        assert 200 == second.stats()["delivered"]

    def test_send_false_opens_no_spool(self, spool_path: Path) -> None:
        """send=False queues nothing, so the spool file is not even created."""
        with Client(send=False, spool=spool_path) as client:
            client.track("u1", "Ev")
        assert not spool_path.exists()

    def test_stats_show_the_spool(self, spooled: Callable[..., Client]) -> None:
        """stats() adds 'spooled' and counts queued messages as enqueued."""
        client = spooled(DOWN)
        client.track("u1", "Ev")
        assert processor_of(client).wait_durable(5)
        stats = client.stats()
        assert (1, 1) == (stats["enqueued"], stats["spooled"])


class TestSpoolFailure:
    """A spool that fails while running never raises into the caller: memory takes over."""

    def test_write_error_goes_on_in_memory(
        self,
        spooled: Callable[..., Client],
        segment_server: ScriptedServer,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        """The disk fails: an error is logged, the messages are still delivered."""
        client = spooled(segment_server.url)
        spool = processor_of(client)._spool
        assert spool is not None

        def broken_write(*_: Any, **__: Any) -> Any:
            raise SpoolError(spool.path, "write failed: disk I/O error")

        spool.write = broken_write  # type: ignore[method-assign]
        with caplog.at_level(logging.ERROR, logger="otel_segment"):
            for n in range(20):
                assert client.track("u1", "Ev", {"n": n})[0]
            assert client.flush(5)

        assert 20 == len(segment_server.messages)
        assert any("going on without it" in record.getMessage() for record in caplog.records)
        assert client.track("u1", "After")[0]  # in memory now
        assert client.flush(5)
