"""Hypothesis strategies for the values a caller may put in properties and traits."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import enum
import math
import uuid
from decimal import Decimal
from typing import Any

from hypothesis import strategies as st


class Color(enum.Enum):
    """An Enum with values of several kinds."""

    RED = "red"
    FIVE = 5
    PAIR = (1, "two")


class Level(enum.IntEnum):
    """An IntEnum: JSON sees its value."""

    LOW = 1
    HIGH = 2


@dataclasses.dataclass
class Point:
    """A dataclass: JSON sees its fields."""

    x: Any
    y: Any


_OFFSETS = st.integers(-23 * 60, 23 * 60).map(lambda m: dt.timezone(dt.timedelta(minutes=m)))

HASHABLE: st.SearchStrategy[Any] = st.one_of(
    st.text(max_size=10),
    st.integers(),
    st.booleans(),
    st.uuids(),
    st.dates(),
)
"""Values that can sit in a set."""

LEAVES: st.SearchStrategy[Any] = st.one_of(
    st.none(),
    st.booleans(),
    st.text(max_size=30),
    st.integers(),
    st.integers(min_value=2**64, max_value=2**200),
    st.integers(min_value=-(2**200), max_value=-(2**63) - 1),
    st.floats(),
    st.sampled_from([math.nan, math.inf, -math.inf]),
    st.decimals(),
    st.datetimes(timezones=st.none() | _OFFSETS),
    st.dates(),
    st.uuids(),
    st.binary(max_size=20),
    st.sampled_from(list(Color) + list(Level)),
)
"""Scalars, JSON-able or convertible."""


def _containers(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.lists(children, max_size=5),
        st.lists(children, max_size=5).map(tuple),
        st.dictionaries(st.text(max_size=10), children, max_size=5),
        st.sets(HASHABLE, max_size=5),
        st.frozensets(HASHABLE, max_size=5),
        st.builds(Point, children, children),
    )


def json_trees() -> st.SearchStrategy[dict[str, Any]]:
    """A properties mapping: any tree of JSON-able and convertible values."""
    values = st.recursive(LEAVES, _containers, max_leaves=25)
    return st.dictionaries(st.text(max_size=10), values, max_size=6)


def expected_json(value: Any) -> Any:  # noqa: C901, PLR0911 - a branch per kind, as DESIGN.md
    """What DESIGN.md says *value* becomes on the wire (a reference model of the encoder)."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, enum.Enum):
        return expected_json(value.value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Decimal):
        return str(value) if value.is_finite() else None
    if isinstance(value, dt.datetime):
        return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).isoformat()
    if isinstance(value, (dt.date, uuid.UUID)):
        return str(value) if isinstance(value, uuid.UUID) else value.isoformat()
    if isinstance(value, bytes):
        try:
            return value.decode()
        except UnicodeDecodeError:
            return base64.b64encode(value).decode()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = dataclasses.fields(value)
        return {f.name: expected_json(getattr(value, f.name)) for f in fields}
    if isinstance(value, dict):
        return {key: expected_json(item) for key, item in value.items()}
    return [expected_json(item) for item in value]
