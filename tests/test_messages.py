"""Tests for messages: builders, timestamps, context merging, and bad input."""

from __future__ import annotations

import datetime as dt
import math
import uuid
from typing import TYPE_CHECKING, Any

import pytest
from _helpers import TIMESTAMP_RE, Clients

from otel_segment.pipeline import messages

if TYPE_CHECKING:
    from _server import ScriptedServer

    from otel_segment import Client

BASE = {"library": messages.LIBRARY}
NAIVE = dt.datetime(2024, 1, 2, 3, 4, 5)  # noqa: DTZ001 - naive on purpose


@pytest.fixture
def client(clients: Clients) -> Client:
    """A client of the test server, shut down afterwards."""
    return clients()


class TestFormatTimestamp:
    """Timestamps are ISO-8601 with milliseconds and an offset."""

    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            (NAIVE, "2024-01-02T03:04:05.000+00:00"),
            (NAIVE.replace(microsecond=678999), "2024-01-02T03:04:05.678+00:00"),
            (dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC), "2024-01-02T03:04:05.000+00:00"),
            (
                dt.datetime(2024, 1, 2, 3, tzinfo=dt.timezone(dt.timedelta(hours=-5))),
                "2024-01-02T03:00:00.000-05:00",
            ),
        ],
    )
    def test_formats(self, value: dt.datetime, expected: str) -> None:
        """Naive means UTC; a given offset is kept; microseconds cut to milliseconds."""
        assert expected == messages.format_timestamp(value)

    def test_none_is_now(self) -> None:
        """No timestamp means now, in UTC."""
        before = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
        stamp = messages.format_timestamp(None)
        after = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)

        assert TIMESTAMP_RE.fullmatch(stamp)
        assert stamp.endswith("+00:00")
        assert before <= dt.datetime.fromisoformat(stamp) <= after

    @pytest.mark.parametrize("value", ["2020-01-01", dt.date(2020, 1, 1), True])
    def test_rejects_non_datetimes(self, value: Any) -> None:
        """A string, date or bool is a TypeError naming the field."""
        with pytest.raises(TypeError, match="timestamp must be a datetime or POSIX seconds"):
            messages.format_timestamp(value)

    @pytest.mark.parametrize(
        "value", [math.nan, math.inf, -math.inf, 1e12, 1e17, 1e19, -1e19, 2**80, -(2**80)]
    )
    def test_rejects_seconds_out_of_range(self, value: float) -> None:
        """NaN, infinite or out-of-range POSIX seconds are a ValueError naming the field."""
        with pytest.raises(ValueError, match=r"timestamp must be POSIX seconds in years 1\.\.9999"):
            messages.format_timestamp(value)

    @pytest.mark.parametrize(
        ("seconds", "expected"),
        [
            (-62_135_596_800, "0001-01-01T00:00:00.000+00:00"),
            (253_402_300_799.999, "9999-12-31T23:59:59.999+00:00"),
        ],
    )
    def test_accepts_the_ends_of_the_range(self, seconds: float, expected: str) -> None:
        """The first and the last millisecond datetime can write are accepted."""
        assert expected == messages.format_timestamp(seconds)

    def test_raising_tzinfo(self) -> None:
        """A tzinfo whose utcoffset() raises is a ValueError naming the field."""

        class Broken(dt.tzinfo):
            def utcoffset(self, when: dt.datetime | None) -> dt.timedelta:
                del when
                raise RuntimeError("no offset today")

            def tzname(self, when: dt.datetime | None) -> str:
                del when
                return "broken"

            def dst(self, when: dt.datetime | None) -> dt.timedelta:
                del when
                return dt.timedelta(0)

        with pytest.raises(ValueError, match=r"timestamp cannot be written.*no offset today"):
            messages.format_timestamp(dt.datetime(2024, 1, 1, tzinfo=Broken()))

    @pytest.mark.parametrize(
        "seconds", [0, 1_700_000_000, 1_700_000_000.123, 1_700_000_000.9999, -1.5, 1e9 + 0.0005]
    )
    def test_posix_seconds_match_the_datetime(self, seconds: float) -> None:
        """POSIX seconds (e.g. LogRecord.created) give what the equivalent UTC datetime gives."""
        expected = dt.datetime.fromtimestamp(seconds, dt.UTC).isoformat(timespec="milliseconds")

        assert expected == messages.format_timestamp(seconds)


class TestMergeContext:
    """merge_context merges mappings recursively; the override wins at the leaves."""

    def test_nested_merge(self) -> None:
        """Nested mappings merge; scalars and non-mappings replace."""
        base = {"app": {"name": "shop", "version": "1"}, "os": {"name": "linux"}, "ip": "1"}
        override = {"app": {"version": "2"}, "os": "mac", "locale": "en"}

        assert {
            "app": {"name": "shop", "version": "2"},
            "os": "mac",
            "ip": "1",
            "locale": "en",
        } == messages.merge_context(base, override)
        assert {"name": "shop", "version": "1"} == base["app"]


class TestMessageId:
    """Message ids are random uuid4 strings."""

    def test_uuid4(self) -> None:
        """Each id parses as a version-4 UUID and round-trips."""
        ids = [messages.new_message_id() for _ in range(1000)]
        parsed = [uuid.UUID(i) for i in ids]

        assert {4} == {p.version for p in parsed}
        assert {uuid.RFC_4122} == {p.variant for p in parsed}
        assert ids == [str(p) for p in parsed]
        assert 1000 == len(set(ids))


class TestBuilders:
    """The builders return the wire message and never mutate their inputs."""

    def test_track(self) -> None:
        """A track built directly has every header field."""
        properties = {"a": 1}
        msg = messages.track(BASE, user_id=5, event="Ev", properties=properties, message_id="m1")
        assert {
            "type": "track",
            "messageId": "m1",
            "timestamp": msg["timestamp"],
            "userId": "5",
            "anonymousId": None,
            "context": {"library": messages.LIBRARY},
            "integrations": {},
            "event": "Ev",
            "properties": {"a": 1},
        } == msg

    def test_library_always_ours(self) -> None:
        """context.library cannot be replaced by a base or call context."""
        msg = messages.identify(
            {"library": {"name": "other"}}, user_id="u1", context={"library": "x"}
        )
        assert messages.LIBRARY == msg["context"]["library"]

    def test_empty_string_ids_are_absent(self) -> None:
        """An empty user id counts as absent."""
        with pytest.raises(ValueError, match="user_id or an anonymous_id"):
            messages.track(BASE, user_id="", event="Ev")


# (call, keyword arguments, exception, text naming the field)
BAD_INPUT: list[tuple[str, dict[str, Any], type[Exception], str]] = [
    ("track", {"user_id": [], "event": "Ev"}, TypeError, "user_id"),
    ("track", {"user_id": True, "event": "Ev"}, TypeError, "user_id"),
    ("track", {"anonymous_id": {}, "event": "Ev"}, TypeError, "anonymous_id"),
    ("track", {"user_id": "u1", "event": 5}, TypeError, "event"),
    ("track", {"user_id": "u1", "event": "Ev", "properties": [1]}, TypeError, "properties"),
    ("track", {"user_id": "u1", "event": "Ev", "context": "x"}, TypeError, "context"),
    ("track", {"user_id": "u1", "event": "Ev", "integrations": 3}, TypeError, "integrations"),
    ("track", {"user_id": "u1", "event": "Ev", "timestamp": "2020-01-01"}, TypeError, "timestamp"),
    ("track", {"user_id": "u1", "event": "Ev", "message_id": []}, TypeError, "message_id"),
    ("track", {"event": "Ev"}, ValueError, "user_id or an anonymous_id"),
    ("track", {"user_id": "u1"}, ValueError, "event"),
    ("track", {"user_id": "u1", "event": ""}, ValueError, "event"),
    ("identify", {"traits": {"a": 1}}, ValueError, "user_id or an anonymous_id"),
    ("identify", {"user_id": "u1", "traits": [1]}, TypeError, "traits"),
    ("identify", {"user_id": "u1", "context": 1}, TypeError, "context"),
    ("page", {"name": "Home"}, ValueError, "user_id or an anonymous_id"),
    ("page", {"user_id": "u1", "name": 5}, TypeError, "name"),
    ("page", {"user_id": "u1", "category": 5}, TypeError, "category"),
    ("page", {"user_id": "u1", "properties": "x"}, TypeError, "properties"),
    ("screen", {"user_id": "u1", "name": ["x"]}, TypeError, "name"),
    ("screen", {"user_id": "u1", "timestamp": dt.date(2020, 1, 1)}, TypeError, "timestamp"),
    ("group", {"user_id": "u1"}, ValueError, "group_id"),
    ("group", {"user_id": "u1", "group_id": []}, TypeError, "group_id"),
    ("group", {"group_id": "g1"}, ValueError, "user_id or an anonymous_id"),
    ("group", {"user_id": "u1", "group_id": "g1", "traits": [1]}, TypeError, "traits"),
    ("alias", {"user_id": "u1"}, ValueError, "previous_id"),
    ("alias", {"previous_id": "p"}, ValueError, "user_id"),
    ("alias", {"previous_id": {}, "user_id": "u1"}, TypeError, "previous_id"),
    ("alias", {"previous_id": "p", "user_id": "u1", "integrations": []}, TypeError, "integrations"),
]


class TestBadInput:
    """Every public call refuses bad input with an error naming the field."""

    @pytest.mark.parametrize(
        ("call", "fields", "error", "field"),
        BAD_INPUT,
        ids=[f"{call}-{'-'.join(fields)}" for call, fields, _, _ in BAD_INPUT],
    )
    def test_call_refuses(
        self,
        segment_server: ScriptedServer,
        client: Client,
        call: str,
        fields: dict[str, Any],
        error: type[Exception],
        field: str,
    ) -> None:
        """The call raises, counts the message rejected, and the client keeps working."""
        with pytest.raises(error, match=field):
            getattr(client, call)(**fields)
        with pytest.raises(error, match=field):
            client.message(call, **fields)

        assert (2, 0) == (client.stats()["rejected"], client.stats()["enqueued"])
        assert client.track("u1", "After")[0]
        assert client.flush(timeout=5)
        assert ["After"] == [m["event"] for m in segment_server.messages]

    @pytest.mark.parametrize(("call", "fields", "error", "field"), BAD_INPUT[:12])
    def test_module_builder_refuses(
        self, call: str, fields: dict[str, Any], error: type[Exception], field: str
    ) -> None:
        """The pure builders raise the same errors."""
        with pytest.raises(error, match=field):
            getattr(messages, call)(BASE, **fields)

    def test_unknown_field(self, client: Client) -> None:
        """message() with a field the type does not have is a TypeError naming it."""
        with pytest.raises(TypeError, match="traits"):
            client.message("track", user_id="u1", event="Ev", traits={})
