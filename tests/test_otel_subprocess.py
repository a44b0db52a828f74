"""The OpenTelemetry bridge in fresh interpreters: auto-configuration, lazy import, examples."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

import otel_segment

if TYPE_CHECKING:
    from _server import ScriptedServer

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

AUTO_SCRIPT = """
from opentelemetry import _logs, trace
from opentelemetry.sdk._configuration import _OTelSDKConfigurator

_OTelSDKConfigurator().configure()
attributes = {"segment.event": "Signed Up", "enduser.id": "u1"}
with trace.get_tracer("auto").start_as_current_span("signup", attributes=attributes):
    _logs.get_logger("auto").emit(event_name="Logged In", attributes={"enduser.id": "u1"})
print("configured")
"""


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


class TestAutoConfiguration:
    """OTEL_TRACES_EXPORTER=segment / OTEL_LOGS_EXPORTER=segment through the entry points."""

    def test_env_configured_exporters(self, segment_server: ScriptedServer, tmp_path: Path) -> None:
        """The SDK builds our exporters with no arguments; spans and logs arrive at exit."""
        script = tmp_path / "auto.py"
        script.write_text(AUTO_SCRIPT)
        env = _clean_env(
            OTEL_TRACES_EXPORTER="segment",
            OTEL_LOGS_EXPORTER="segment",
            OTEL_METRICS_EXPORTER="none",
            OTEL_SERVICE_NAME="auto-service",
            SEGMENT_WRITE_KEY="auto-key",
            SEGMENT_HOST=segment_server.url,
        )
        result = _run([str(script)], env)

        assert 0 == result.returncode, result.stderr
        assert "configured" in result.stdout
        assert segment_server.wait_for_messages(2)
        messages = sorted(segment_server.messages, key=lambda m: m["event"])
        assert ["Logged In", "Signed Up"] == [m["event"] for m in messages]
        assert {"auto-service"} == {m["context"]["app"]["name"] for m in messages}
        assert messages[0]["context"]["trace"] == messages[1]["context"]["trace"]
        assert "Basic YXV0by1rZXk6" == segment_server.requests[0].header("Authorization")


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


class TestExamples:
    """Each examples/otel_*.py runs on its own and prints what Segment received."""

    @pytest.mark.parametrize(
        ("example", "expected"),
        [
            (
                "otel_traces.py",
                ['"Order Completed"', '"Coupon Applied"', "{plan=pro}", "error=true"],
            ),
            ("otel_sampling.py", ["requests: 200", "segment: 200 'Signed Up' events"]),
            ("otel_logs.py", ['"Invoice Paid"', "amount=99.0", "identify  user=u1", "trace_id="]),
            ("otel_flask_app.py", ["-> 201", '"Order Completed"', "order_id=o-17"]),
        ],
    )
    def test_example(self, example: str, expected: list[str]) -> None:
        """The example exits 0 and shows the messages."""
        if example == "otel_flask_app.py" and not all(
            importlib.util.find_spec(name)
            for name in ("flask", "opentelemetry.instrumentation.flask")
        ):
            pytest.skip("needs the examples extra (flask, opentelemetry-instrumentation-flask)")
        result = _run([str(EXAMPLES / example)], _clean_env())

        assert 0 == result.returncode, result.stderr
        for text in expected:
            assert text in result.stdout
