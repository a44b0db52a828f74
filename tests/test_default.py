"""Tests for otel_segment._default: the one home of process-wide state, and its reset()."""

from __future__ import annotations

import subprocess
import sys
from typing import TYPE_CHECKING

import otel_segment
from otel_segment import _default

if TYPE_CHECKING:
    from _server import ScriptedServer

    from otel_segment import Client


class TestReset:
    """reset() puts the default client, the settings and the listeners back as at import."""

    def test_shuts_down_and_forgets_the_default_client(
        self, segment_server: ScriptedServer
    ) -> None:
        """The default client delivers what it queued, is shut down, and is forgotten."""
        otel_segment.write_key = "k"
        otel_segment.host = segment_server.url
        otel_segment.track("u1", "Before Reset")
        client = _default.current()
        assert client is not None

        _default.reset()

        assert (True, None, None) == (
            client.closed,
            otel_segment.default_client,
            _default.current(),
        )
        assert ["Before Reset"] == [m["event"] for m in segment_server.messages]

    def test_restores_every_setting(self) -> None:
        """Every package setting is back at its default."""
        for name in _default.SETTINGS:
            setattr(otel_segment, name, object())
        _default.reset()
        assert _default.SETTING_DEFAULTS == {n: getattr(otel_segment, n) for n in _default.SETTINGS}

    def test_defaults_are_those_of_a_fresh_import(self) -> None:
        """The table reset() restores holds the values a fresh interpreter has."""
        script = (
            "import otel_segment, otel_segment._default as d;"
            "print(repr({n: getattr(otel_segment, n) for n in d.SETTINGS}))"
        )
        done = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=30
        )
        assert repr(_default.SETTING_DEFAULTS) == done.stdout.strip()

    def test_drops_the_listeners(self, segment_server: ScriptedServer) -> None:
        """A listener registered before reset() is not told about later default clients."""
        seen: list[Client] = []
        _default.on_client(seen.append)
        _default.reset()
        built = _default.configure(write_key="k", host=segment_server.url)
        assert [] == seen
        built.shutdown(5)
