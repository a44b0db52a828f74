"""Tests for otel_segment.pipeline.encoding: strict JSON, every conversion, exact body sizes."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import enum
import json
import uuid
from decimal import Decimal
from typing import TYPE_CHECKING, Any, NoReturn

import pytest
from _helpers import Clients, ErrorLog
from _strategies import Color, Level, Point, expected_json, json_trees
from hypothesis import given, settings

from otel_segment import EncodingError
from otel_segment.pipeline.encoding import BatchEnvelope, dumps

if TYPE_CHECKING:
    from _server import ScriptedServer

    from otel_segment import Client


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not strict JSON")


def strict_loads(data: bytes) -> Any:
    """Parse *data* as strict JSON: UTF-8, no NaN or Infinity."""
    return json.loads(data.decode("utf-8"), parse_constant=_reject_constant)


@pytest.fixture
def client(clients: Clients) -> Client:
    """A client of the test server that sends only on flush, shut down afterwards."""
    return clients(flush_interval=30)


class Opaque:
    """An object JSON knows nothing about."""

    def __str__(self) -> str:
        """Its text form."""
        return "opaque!"


@dataclasses.dataclass
class Node:
    """A dataclass that can point at itself."""

    child: Any = None


NOW_NAIVE = dt.datetime(2024, 5, 1, 12, 30, 45, 123456)  # noqa: DTZ001 - naive on purpose
PLUS_TWO = dt.timezone(dt.timedelta(hours=2))

CONVERSIONS: list[tuple[str, Any, Any]] = [
    ("str unicode", "héllo ✓ 🎉", "héllo ✓ 🎉"),
    ("int beyond 64 bits", 2**70, 2**70),
    ("negative beyond 64 bits", -(2**70), -(2**70)),
    ("float", 0.1, 0.1),
    ("nan", float("nan"), None),
    ("infinity", float("inf"), None),
    ("minus infinity", float("-inf"), None),
    (
        "decimal keeps precision",
        Decimal("0.1000000000000000055511151231"),
        "0.1000000000000000055511151231",
    ),
    ("decimal nan", Decimal("NaN"), None),
    ("decimal infinity", Decimal("Infinity"), None),
    ("naive datetime is utc", NOW_NAIVE, "2024-05-01T12:30:45.123456+00:00"),
    (
        "aware datetime keeps zone",
        dt.datetime(2024, 5, 1, tzinfo=PLUS_TWO),
        "2024-05-01T00:00:00+02:00",
    ),
    ("date", dt.date(2024, 5, 1), "2024-05-01"),
    ("uuid", uuid.UUID(int=1), "00000000-0000-0000-0000-000000000001"),
    ("utf-8 bytes", "é".encode(), "é"),
    ("other bytes", b"\xff\x00\xfe", base64.b64encode(b"\xff\x00\xfe").decode()),
    ("bytearray", bytearray(b"ab"), "ab"),
    ("set", {3}, [3]),
    ("frozenset", frozenset({"a"}), ["a"]),
    ("tuple", (1, "a", None), [1, "a", None]),
    ("enum", Color.RED, "red"),
    ("enum with tuple value", Color.PAIR, [1, "two"]),
    ("int enum", Level.HIGH, 2),
    ("dataclass", Point(1, Decimal("2.5")), {"x": 1, "y": "2.5"}),
    ("other object", Opaque(), "opaque!"),
    ("nested", {"a": [{"b": (Decimal(1), {2})}]}, {"a": [{"b": ["1", [2]]}]}),
]


class TestConversions:
    """Values JSON cannot hold are converted as DESIGN.md lists."""

    @pytest.mark.parametrize(
        ("value", "expected"),
        [(value, expected) for _, value, expected in CONVERSIONS],
        ids=[name for name, _, _ in CONVERSIONS],
    )
    def test_converts(self, value: Any, expected: Any) -> None:
        """Each value converts, alone and next to a big int (the fallback encoder)."""
        assert {"v": expected} == strict_loads(dumps({"v": value}))
        assert {"v": expected, "big": 2**70} == strict_loads(dumps({"v": value, "big": 2**70}))

    def test_non_string_keys(self) -> None:
        """Keys that are not strings become strings."""
        data = {1: "a", None: "b", Color.RED: "c", (1, 2): "d"}
        assert {"1": "a", "null": "b", "red": "c", "[1, 2]": "d"} == strict_loads(dumps(data))

    def test_lone_surrogate(self) -> None:
        """Text that UTF-8 cannot hold still encodes to valid UTF-8 JSON."""
        decoded = strict_loads(dumps({"name": "a\udcffb"}))
        assert "a?b" == decoded["name"]

    def test_compact(self) -> None:
        """The encoding has no spaces (sizes are what is sent)."""
        assert b'{"a":[1,2],"b":{"c":"d"}}' == dumps({"a": [1, 2], "b": {"c": "d"}})

    @settings(max_examples=150, deadline=None)
    @given(tree=json_trees())
    def test_property_strict_json(self, tree: dict[str, Any]) -> None:
        """Any tree of JSON-able and convertible values encodes to strict JSON, as modelled."""
        assert expected_json(tree) == strict_loads(dumps(tree))


class TestCircular:
    """A structure that contains itself is refused with a clear error."""

    @pytest.mark.parametrize("kind", ["dict", "list", "dataclass", "deep"])
    def test_encoding_error(self, kind: str) -> None:
        """Dumps raises EncodingError, a ValueError."""
        value: Any
        if kind == "dict":
            value = {}
            value["self"] = value
        elif kind == "list":
            value = []
            value.append({"up": value})
        elif kind == "dataclass":
            value = Node()
            value.child = [value]
        else:
            value = []
            for _ in range(100_000):
                value = [value]
        with pytest.raises(EncodingError, match=r"circular|deeply") as caught:
            dumps({"v": value, "big": 2**70})
        assert isinstance(caught.value, ValueError)
        with pytest.raises(EncodingError):
            dumps({"v": value})

    def test_at_the_call(self, segment_server: ScriptedServer, client: Client) -> None:
        """The call raises EncodingError and counts the message rejected; nothing is sent."""
        properties: dict[str, Any] = {}
        properties["self"] = properties
        with pytest.raises(EncodingError, match="circular"):
            client.track("u1", "Ev", properties)
        client.track("u1", "Fine")
        assert client.flush(timeout=5)

        assert 1 == client.stats()["rejected"]
        assert ["Fine"] == [m["event"] for m in segment_server.messages]


class RaisingOffset(dt.tzinfo):
    """A time zone whose utcoffset() raises."""

    def utcoffset(self, when: dt.datetime | None) -> dt.timedelta:
        """Raise."""
        del when
        raise RuntimeError("no offset")

    def tzname(self, when: dt.datetime | None) -> str:
        """A name."""
        del when
        return "broken"

    def dst(self, when: dt.datetime | None) -> dt.timedelta:
        """No daylight saving."""
        del when
        return dt.timedelta(0)


class ImpossibleOffset(dt.tzinfo):
    """A time zone whose offset is three days: datetime itself refuses it."""

    def utcoffset(self, when: dt.datetime | None) -> dt.timedelta:
        """Three days."""
        del when
        return dt.timedelta(days=3)

    def tzname(self, when: dt.datetime | None) -> str:
        """A name."""
        del when
        return "broken"

    def dst(self, when: dt.datetime | None) -> dt.timedelta:
        """No daylight saving."""
        del when
        return dt.timedelta(0)


class RaisingText:
    """A value whose __str__ raises."""

    def __str__(self) -> str:
        """Raise."""
        raise RuntimeError("no text")


class TestUnconvertible:
    """A value that cannot be converted is an EncodingError naming where it sits."""

    @pytest.mark.parametrize("zone", [RaisingOffset(), ImpossibleOffset()])
    def test_datetime_with_a_broken_zone(self, zone: dt.tzinfo) -> None:
        """A broken tzinfo is refused with the path (orjson alone crashed or wrote garbage)."""
        value = {"when": [dt.datetime(2024, 1, 1, tzinfo=zone)]}
        with pytest.raises(EncodingError, match=r"^when\[0\]: a datetime cannot be written"):
            dumps(value)

    def test_raising_str(self) -> None:
        """A value whose __str__ raises is named by its path, with the cause chained."""
        with pytest.raises(EncodingError, match=r"^a\.b\[1\]: a RaisingText") as caught:
            dumps({"a": {"b": [1, RaisingText()]}})
        assert isinstance(caught.value.__cause__, RuntimeError)

    def test_datetimes_as_before(self) -> None:
        """Naive datetimes are UTC, aware ones keep their offset, dates and times as ISO."""
        minus_five = dt.timezone(dt.timedelta(hours=-5))
        value = [
            dt.datetime(2024, 1, 2, 3, 4, 5, 6),  # noqa: DTZ001 - naive on purpose
            dt.datetime(2024, 1, 2, 3, tzinfo=minus_five),
            dt.date(2024, 1, 2),
            dt.time(3, 4),
        ]
        expected = ["2024-01-02T03:04:05.000006+00:00", "2024-01-02T03:00:00-05:00"]
        assert [*expected, "2024-01-02", "03:04:00"] == strict_loads(dumps(value))

    def test_big_integers_digit_for_digit(self) -> None:
        """Integers beyond 64 bits are written in full."""
        assert b'{"n":1180591620717411303424,"m":-1208925819614629174706176}' == dumps(
            {"n": 2**70, "m": -(2**80)}
        )


class TestOnTheWire:
    """Converted values arrive at the server as converted."""

    def test_received(self, segment_server: ScriptedServer, client: Client) -> None:
        """The server receives converted values, and the call returned them unconverted."""
        properties = {"price": Decimal("19.99"), "when": NOW_NAIVE, "tags": ("a",), "n": 2**70}
        ok, message = client.track("u1", "Ev", properties)
        assert client.flush(timeout=5)

        [arrived] = segment_server.messages
        assert (True, Decimal("19.99")) == (ok, message["properties"]["price"])
        assert {
            "price": "19.99",
            "when": "2024-05-01T12:30:45.123456+00:00",
            "tags": ["a"],
            "n": 2**70,
        } == arrived["properties"]


class TestBatchEnvelope:
    """The body around encoded messages, with exact sizes."""

    def test_body(self) -> None:
        """The body is {"batch": [...], "sentAt": ..., "writeKey": ...}."""
        envelope = BatchEnvelope('k"ey')
        body = envelope.body([b'{"a":1}', b'{"b":2}'], "2026-01-01T00:00:00.000+00:00")
        assert {
            "batch": [{"a": 1}, {"b": 2}],
            "sentAt": "2026-01-01T00:00:00.000+00:00",
            "writeKey": 'k"ey',
        } == strict_loads(body)

    @pytest.mark.parametrize("count", [0, 1, 2, 3])
    def test_body_leaves_the_batch_as_it_was(self, count: int) -> None:
        """Every message in order, and the list kept intact for the next attempt."""
        envelope = BatchEnvelope("some-key")
        items = [dumps({"n": n}) for n in range(count)]
        kept = list(items)
        for sent_at in ("2026-01-01T00:00:00.000+00:00", "2026-01-01T00:00:01.000+00:00"):
            body = strict_loads(envelope.body(items, sent_at))
            assert [{"n": n} for n in range(count)] == body["batch"]
            assert sent_at == body["sentAt"]
        assert kept == items

    @pytest.mark.parametrize("count", [1, 2, 10])
    def test_overhead_is_exact(self, count: int) -> None:
        """Body size = overhead + messages + one comma between each."""
        envelope = BatchEnvelope("some-key")
        items = [dumps({"n": n, "pad": "x" * n}) for n in range(count)]
        body = envelope.body(items, "2026-01-01T00:00:00.000+00:00")
        assert envelope.overhead + sum(map(len, items)) + count - 1 == len(body)

    def test_repr_hides_key(self) -> None:
        """repr() never shows the write key."""
        assert "some-key" not in repr(BatchEnvelope("some-key"))


class TestOnErrorGetsDecoded:
    """on_error receives messages as dicts, decoded from what was queued."""

    def test_messages_decoded(self, segment_server: ScriptedServer) -> None:
        """A failed batch is reported as the dicts that were on the wire."""
        segment_server.respond(400)
        errors = ErrorLog()
        factory = Clients(segment_server)
        try:
            client = factory(on_error=errors)
            _, message = client.track("u1", "Ev", {"d": Decimal("1.5"), "e": Color.FIVE})
            assert errors.wait_for_messages(1)
        finally:
            factory.close()
        [reported] = errors.messages
        assert {"d": "1.5", "e": 5} == reported["properties"]
        assert message["messageId"] == reported["messageId"]


class TestEnumKeys:
    """Enum members as keys use their value."""

    def test_enum_key(self) -> None:
        """An Enum key becomes its value's text."""

        class Key(enum.Enum):
            A = "alpha"

        assert {"alpha": 1} == strict_loads(dumps({Key.A: 1}))
