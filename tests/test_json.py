"""Tests for otel_segment._json: reading messages back without losing integers."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from otel_segment._json import loads


class TestLoads:
    """Integers of any size come back as ints; everything else as orjson reads it."""

    @given(st.integers())
    def test_any_integer(self, number: int) -> None:
        """Every integer, 64-bit or not, keeps every digit."""
        data = json.dumps({"n": number, "s": "x"}).encode()

        assert {"n": number, "s": "x"} == loads(data)

    def test_long_digits_in_a_string(self) -> None:
        """A long digit run inside a string only takes the slower parser."""
        assert {"id": "12345678901234567890123", "f": 1.5} == loads(
            b'{"id":"12345678901234567890123","f":1.5}'
        )

    @pytest.mark.parametrize("data", [b"[NaN, 12345678901234567890123]", b"[Infinity]", b"{"])
    def test_strict(self, data: bytes) -> None:
        """NaN, Infinity and broken JSON are a ValueError, on both parsers."""
        with pytest.raises(ValueError, match=r"."):
            loads(data)
