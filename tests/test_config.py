"""Tests for otel_segment.pipeline.config: one table of defaults, agreed everywhere."""

from __future__ import annotations

import dataclasses
import inspect
import pathlib
import re
from typing import Any, Final

import pytest

import otel_segment
from otel_segment import Client, RetryPolicy, _default
from otel_segment.pipeline.config import DEFAULTS, MAX_SEGMENT_MESSAGE_BYTES

README: Final = pathlib.Path(__file__).parent.parent / "README.md"

# Constructor parameters whose default is None on purpose, and what None resolves to.
RESOLVED_FROM_NONE: Final[dict[str, object]] = {
    "write_key": "",  # $SEGMENT_WRITE_KEY, else required unless send=False
    "host": DEFAULTS.host,  # $SEGMENT_HOST, else Segment's API
    "max_message_bytes": MAX_SEGMENT_MESSAGE_BYTES,  # or what max_batch_bytes leaves room for
    "retry": RetryPolicy(),
    "default_context": {},
    "super_properties": {},
}


def constructor_defaults() -> dict[str, Any]:
    """The defaults ``Client(...)``'s signature shows."""
    return {
        name: parameter.default
        for name, parameter in inspect.signature(Client).parameters.items()
        if parameter.default is not inspect.Parameter.empty
    }


def readme_defaults() -> dict[str, str]:
    """The README's Configuration table: option name -> the default column, as written."""
    text = README.read_text(encoding="utf-8")
    table = text.split("## Configuration", 1)[1].split("\n\n", 2)[1]
    shown: dict[str, str] = {}
    for line in table.splitlines()[2:]:
        option, default = line.split("|")[1:3]
        if (match := re.match(r"\s*`(\w+)`", option)) is not None:
            shown[match.group(1)] = default.strip()
    return shown


def written(value: object) -> str:
    """*value* as the README writes a default."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value >= 1024 * 1024 and value % (1024 * 1024) == 0:
            return f"{value // (1024 * 1024)} MiB"
        return f"{value:,}".replace(",", " ")
    if isinstance(value, str):
        return f'`"{value}"`'
    return f"`{value}`" if value is None or isinstance(value, bool) else str(value)


class TestDefaultsTable:
    """The constructor, ClientConfig, the module settings and the README agree."""

    def test_constructor_matches_the_config(self) -> None:
        """Every option's signature default is ClientConfig's (or resolves to it)."""
        fields = {field.name for field in dataclasses.fields(DEFAULTS)}
        mismatched = {
            name: (default, getattr(DEFAULTS, name))
            for name, default in constructor_defaults().items()
            if name in fields
            and (RESOLVED_FROM_NONE.get(name) if default is None else default)
            != getattr(DEFAULTS, name)
            and not (default is None and getattr(DEFAULTS, name) is None)
        }
        assert {} == mismatched

    def test_module_settings_match_the_constructor(self) -> None:
        """A package setting left alone builds the client the constructor's default would."""
        _default.reset()
        defaults = constructor_defaults()
        # segment-analytics-python writes max_retries=10; the constructor's None means the
        # RetryPolicy default, 11 attempts: the same thing.
        assert RetryPolicy().max_attempts == otel_segment.max_retries + 1
        mismatched = {
            name: (getattr(otel_segment, name), defaults[name])
            for name in _default.SETTINGS
            if name != "max_retries" and getattr(otel_segment, name) != defaults[name]
        }
        assert {} == mismatched

    @pytest.mark.parametrize(
        "name",
        [
            "flush_at",
            "flush_interval",
            "max_queue_size",
            "max_batch_bytes",
            "max_message_bytes",
            "gzip",
            "timeout",
            "send",
            "sync_mode",
            "on_error",
            "debug",
            "max_in_flight",
            "exit_timeout",
            "identity_from_baggage",
            "spool",
            "spool_max_bytes",
            "before_send",
            "super_properties",
        ],
    )
    def test_readme_shows_the_default(self, name: str) -> None:
        """The README's Configuration table writes each default as the constructor has it."""
        value = constructor_defaults()[name]
        # None may be written as itself or as what it resolves to.
        accepted = {written(value), written(RESOLVED_FROM_NONE.get(name, value))}
        assert readme_defaults()[name].split(" (")[0] in accepted
