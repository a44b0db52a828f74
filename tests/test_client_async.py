"""Tests for the client's asyncio methods: aflush, ashutdown, async with, otel_segment.aflush."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

import pytest

import otel_segment
from otel_segment import Client

if TYPE_CHECKING:
    from _helpers import Clients
    from _server import ScriptedServer


class Ticker:
    """Counts event-loop turns while it runs, and the longest gap between two of them."""

    def __init__(self) -> None:
        self.ticks = 0
        self.longest_gap = 0.0
        self._stop = asyncio.Event()

    async def run(self) -> None:
        """Tick every millisecond or so until :meth:`stop`."""
        last = time.perf_counter()
        while not self._stop.is_set():
            await asyncio.sleep(0.001)  # a loop turn, not a wait for a result
            now = time.perf_counter()
            self.ticks += 1
            self.longest_gap = max(self.longest_gap, now - last)
            last = now

    def stop(self) -> None:
        """End :meth:`run`."""
        self._stop.set()


class TestClientAsync:
    """The awaitable twins of flush and shutdown never block the event loop."""

    def test_aflush_delivers(self, clients: Clients, segment_server: ScriptedServer) -> None:
        """Awaiting aflush(): everything queued before it is delivered."""
        client = clients(flush_interval=60)

        async def main() -> bool:
            client.track("u1", "E")
            return await client.aflush(5)

        assert asyncio.run(main())
        assert ["E"] == [m["event"] for m in segment_server.messages]

    def test_loop_runs_while_flushing(
        self, clients: Clients, segment_server: ScriptedServer
    ) -> None:
        """A ticker task keeps ticking while aflush waits on a slow server (0.2 s)."""
        client = clients(flush_interval=60)
        segment_server.hang(0.2)

        async def main() -> tuple[bool, int]:
            ticker = Ticker()
            ticking = asyncio.create_task(ticker.run())
            client.track("u1", "E")
            flushed = await client.aflush(5)
            ticks_during_flush = ticker.ticks
            ticker.stop()
            await ticking
            return flushed, ticks_during_flush

        flushed, ticks = asyncio.run(main())
        assert flushed
        assert ticks > 0
        assert 1 == len(segment_server.messages)

    def test_aflush_during_a_burst(self, clients: Clients, segment_server: ScriptedServer) -> None:
        """Tracks made while aflush() is awaited are delivered too (2,000, ticker running)."""
        client = clients()

        async def main() -> bool:
            ticker = Ticker()
            ticking = asyncio.create_task(ticker.run())
            flushing = asyncio.create_task(client.aflush(10))
            for i in range(2000):
                client.track(f"u{i}", "Burst")
                if i % 100 == 0:
                    await asyncio.sleep(0)  # let the ticker and the flush run
            first = await flushing
            last = await client.aflush(10)
            ticker.stop()
            await ticking
            return first and last

        assert asyncio.run(main())
        assert segment_server.wait_for_messages(2000, 5)
        assert 2000 == client.stats()["delivered"]

    def test_async_with(self, segment_server: ScriptedServer) -> None:
        """With async with Client(...): shut down (and delivered) on exit."""

        async def main() -> Client:
            async with Client("test-key", host=segment_server.url) as client:
                client.track("u1", "E")
            return client

        client = asyncio.run(main())
        assert client.closed
        assert 1 == len(segment_server.messages)

    def test_ashutdown(self, clients: Clients, segment_server: ScriptedServer) -> None:
        """Awaiting ashutdown(): delivered, then closed; later calls are refused."""
        client = clients(flush_interval=60)

        async def main() -> bool:
            client.track("u1", "E")
            return await client.ashutdown(5)

        assert asyncio.run(main())
        assert client.closed
        assert 1 == len(segment_server.messages)
        with pytest.raises(otel_segment.ClientClosedError):
            client.track("u1", "E")

    def test_module_level_aflush(
        self, clients: Clients, segment_server: ScriptedServer, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Awaiting otel_segment.aflush() flushes the default client."""
        monkeypatch.setattr(otel_segment, "default_client", clients(flush_interval=60))

        async def main() -> bool:
            otel_segment.track("u1", "E")
            return await otel_segment.aflush(5)

        assert asyncio.run(main())
        assert 1 == len(segment_server.messages)
