"""Whole requests through the client: encode(), enqueue_all() and wait_durable()."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from _helpers import FAST_RETRY

from otel_segment import MessageTooLargeError

if TYPE_CHECKING:
    from collections.abc import Callable

    from _helpers import Clients
    from _server import ScriptedServer

    from otel_segment import Client


def track(client: Client, event: str) -> bytes:
    """A track of *event* by user "u", encoded (not dropped by a hook)."""
    data = client.encode("track", user_id="u", event=event)
    assert data is not None
    return data


class TestEncode:
    """encode() builds and checks a message as message() would, without queueing it."""

    def test_the_wire_message(self, clients: Clients, segment_server: ScriptedServer) -> None:
        """The bytes are the message message() would send; nothing is queued."""
        client = clients()
        data = client.encode("track", user_id="u1", event="E", properties={"n": 1})
        assert 0 == client.stats()["enqueued"]
        assert data is not None
        assert client.enqueue_all([data])
        assert client.flush(5)
        [message] = segment_server.messages
        assert ("track", "u1", "E", {"n": 1}) == (
            message["type"],
            message["userId"],
            message["event"],
            message["properties"],
        )

    def test_the_hooks_apply(self, clients: Clients, segment_server: ScriptedServer) -> None:
        """Super properties and before_send apply; a message it drops encodes to None."""

        def before_send(message: dict[str, Any]) -> dict[str, Any] | None:
            return None if message.get("event") == "Drop" else message

        client = clients(before_send=before_send, super_properties={"tier": "gold"})
        assert client.encode("track", user_id="u", event="Drop") is None
        kept = client.encode("track", user_id="u", event="Keep")
        assert kept is not None
        assert client.enqueue_all([kept])
        assert client.flush(5)
        assert [("Keep", {"tier": "gold"})] == [
            (m["event"], m["properties"]) for m in segment_server.messages
        ]

    @pytest.mark.parametrize(
        ("kind", "fields", "error"),
        [
            ("track", {"event": "E"}, ValueError),
            ("teleport", {"user_id": "u"}, ValueError),
            (
                "track",
                {"user_id": "u", "event": "E", "properties": {"x": "y" * 40_000}},
                MessageTooLargeError,
            ),
        ],
    )
    def test_invalid_messages_raise_and_count(
        self, clients: Clients, kind: str, fields: dict[str, object], error: type[Exception]
    ) -> None:
        """No user, an unknown type, an oversize message: raised and counted as rejected."""
        client = clients()
        with pytest.raises(error):
            client.encode(kind, **fields)
        assert 1 == client.stats()["rejected"]


class TestEnqueueAll:
    """enqueue_all() queues a whole request or none of it."""

    def test_all_or_nothing(self, clients: Clients, segment_server: ScriptedServer) -> None:
        """Past the queue bound nothing is queued and nothing counted as dropped."""
        segment_server.hang(1.0)
        client = clients(max_queue_size=4, max_in_flight=1, flush_at=1)
        first = [track(client, f"E{n}") for n in range(3)]
        assert client.enqueue_all(first)
        assert segment_server.wait_for_requests(1, 5)  # the first batch is in flight
        assert client.enqueue_all(first[:2])
        assert not client.enqueue_all(first)  # 2 queued + 3 > 4
        stats = client.stats()
        assert (5, 0, 2) == (stats["enqueued"], stats["dropped"], stats["queued"])
        assert client.flush(10)
        assert 5 == len(segment_server.messages)

    def test_spooled_and_durable(
        self, spooled: Callable[..., Client], segment_server: ScriptedServer
    ) -> None:
        """With a spool, wait_durable() returns once the request is committed."""
        client = spooled(segment_server.url)
        data = [track(client, f"E{n}") for n in range(4)]
        assert client.enqueue_all(data)
        assert client.wait_durable(5)
        assert client.flush(5)
        assert 4 == len(segment_server.messages)

    def test_in_memory_wait_durable_is_immediate(self, clients: Clients) -> None:
        """Without a spool there is nothing to wait for."""
        assert clients().wait_durable(0)

    def test_a_full_spool_refuses_instead_of_dropping(
        self, spooled: Callable[..., Client], segment_server: ScriptedServer
    ) -> None:
        """Past spool_max_bytes, enqueue_all refuses: nothing accepted is dropped later."""
        segment_server.respond_many(503, 50)
        client = spooled(
            segment_server.url, spool_max_bytes=3000, max_message_bytes=1000, retry=FAST_RETRY
        )
        accepted = 0
        while accepted < 100:
            batch = [track(client, f"E{accepted + n}") for n in range(2)]
            if not client.enqueue_all(batch):
                break
            accepted += len(batch)
            assert client.wait_durable(5)
        assert 0 < accepted < 100
        stats = client.stats()
        assert (0, 0, accepted) == (stats["dropped"], stats["failed"], stats["enqueued"])
