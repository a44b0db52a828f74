"""The OpenTelemetry bridge (otel_segment.sources.otel) in fresh interpreters: lazy import."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

import otel_segment


def _run(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
        check=False,
    )


def _clean_env(**overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "SEGMENT_"))}
    env.update(overrides)
    return env


class TestLazyImport:
    """import otel_segment does not load the OpenTelemetry SDK; the bridge's names do."""

    def test_sdk_loaded_on_first_use(self) -> None:
        """The SDK comes in with the first bridge name, not with the package."""
        code = textwrap.dedent(
            """
            import sys
            import otel_segment
            print(any(m.startswith("opentelemetry.sdk") for m in sys.modules))
            otel_segment.instrument_metrics
            print(any(m.startswith("opentelemetry.sdk") for m in sys.modules))
            otel_segment.SegmentSpanProcessor
            print("opentelemetry.sdk.trace" in sys.modules)
            """
        )
        result = _run(["-c", code], _clean_env())

        assert 0 == result.returncode, result.stderr
        assert ["False", "False", "True"] == result.stdout.split()

    def test_names(self) -> None:
        """The lazy names resolve, are listed, and unknown names still fail."""
        from otel_segment.sources import otel  # noqa: PLC0415 - the module under test

        assert otel.SegmentSampler is otel_segment.SegmentSampler
        assert {"SegmentLogExporter", "instrument_metrics"} <= set(dir(otel_segment))
        with pytest.raises(AttributeError, match="no_such_name"):
            _ = otel_segment.no_such_name  # type: ignore[attr-defined]
