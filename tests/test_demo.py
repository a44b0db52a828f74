"""Tests of otel-segment demo (otel_segment.cli.demo)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from _helpers import closed_port

from otel_segment.cli import main

if TYPE_CHECKING:
    import pytest


class TestDemo:
    """``otel-segment demo``."""

    def test_runs_the_scenario_against_its_own_sink(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """The demo needs no write key, shows every message type and exits 0."""
        status = main(["demo"])

        out = capsys.readouterr().out
        assert 0 == status
        for kind in ("track", "identify", "group", "page"):
            assert f"   {kind}" in out
        assert "Order Completed" in out
        assert "'failed': 0" in out


class TestDemoUnreachable:
    """``demo --host`` of an endpoint that cannot be reached."""

    def test_fails_soon_with_the_reason(self, capsys: pytest.CaptureFixture[str]) -> None:
        """Exit 1 within seconds, naming the host and why, instead of minutes of retries."""
        host = f"http://127.0.0.1:{closed_port()}"
        started = time.monotonic()

        status = main(["demo", "--host", host, "--write-key", "k"])

        elapsed = time.monotonic() - started
        err = capsys.readouterr().err
        assert 1 == status
        assert elapsed < 15
        assert f"not delivered to {host}: connection failed" in err
