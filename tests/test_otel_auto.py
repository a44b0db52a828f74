"""
Zero-code OpenTelemetry (otel_segment.sources.otel_auto), run as the README says.

Each test starts ``opentelemetry-instrument python app.py`` with only the variables the
README names, against a local test server.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased, TraceIdRatioBased

from otel_segment import SegmentSampler
from otel_segment.sources.otel_auto import SAMPLERS

if TYPE_CHECKING:
    from _server import ScriptedServer

INSTRUMENT = Path(sys.executable).parent / "opentelemetry-instrument"

APP = """
import sys
from opentelemetry import _logs, trace

tracer = trace.get_tracer("app")
for n in range(100):
    with tracer.start_as_current_span("signup", attributes={
            "segment.event": "Signed Up", "enduser.id": f"u{n}"}):
        pass
    with tracer.start_as_current_span("unmarked"):
        pass
_logs.get_logger("app").emit(event_name="Logged In", attributes={"enduser.id": "u1"})
print("ready", flush=True)
if "--wait" in sys.argv:
    sys.stdin.read()  # until the test ends us
"""


def instrumented(
    tmp_path: Path, server: ScriptedServer, *args: str, **variables: str
) -> subprocess.Popen[str]:
    """Start ``opentelemetry-instrument python app.py ARGS`` with only *variables* set."""
    app = tmp_path / "app.py"
    app.write_text(textwrap.dedent(APP))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "SEGMENT_"))}
    env.update(variables, SEGMENT_HOST=server.url)
    return subprocess.Popen(
        [str(INSTRUMENT), sys.executable, str(app), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def finish(child: subprocess.Popen[str]) -> tuple[str, str]:
    """Let *child* run to its end; its output."""
    out, err = child.communicate(timeout=30)
    assert 0 == child.returncode, err
    return out, err


class TestReadmeLines:
    """The README's zero-code lines work exactly as written."""

    def test_traces_exporter_alone(self, segment_server: ScriptedServer, tmp_path: Path) -> None:
        """OTEL_TRACES_EXPORTER=segment and a write key: no other variable, no distro."""
        child = instrumented(
            tmp_path, segment_server, OTEL_TRACES_EXPORTER="segment", SEGMENT_WRITE_KEY="k"
        )
        _, err = finish(child)

        assert segment_server.wait_for_messages(100)
        assert 100 == len(segment_server.messages)
        assert {"Signed Up"} == {m["event"] for m in segment_server.messages}
        assert "not found" not in err
        assert "Traceback" not in err

    def test_sampled_at_one_percent_keeps_every_marked_span(
        self, segment_server: ScriptedServer, tmp_path: Path
    ) -> None:
        """segment_parentbased_traceidratio at 0: no trace is sampled, all 100 events arrive."""
        child = instrumented(
            tmp_path,
            segment_server,
            OTEL_TRACES_EXPORTER="segment,console",
            OTEL_TRACES_SAMPLER="segment_parentbased_traceidratio",
            OTEL_TRACES_SAMPLER_ARG="0",
            SEGMENT_WRITE_KEY="k",
        )
        out, _ = finish(child)

        assert segment_server.wait_for_messages(100)
        assert 100 == len({m["userId"] for m in segment_server.messages})
        assert '"name": "unmarked"' not in out  # the console exporter saw no sampled span
        assert '"name": "signup"' not in out

    def test_no_batch_delay(self, segment_server: ScriptedServer, tmp_path: Path) -> None:
        """With the SDK's batch processors set to wait 10 min, spans and logs still arrive."""
        child = instrumented(
            tmp_path,
            segment_server,
            "--wait",
            OTEL_TRACES_EXPORTER="segment",
            OTEL_LOGS_EXPORTER="segment",
            OTEL_BSP_SCHEDULE_DELAY="600000",
            OTEL_BLRP_SCHEDULE_DELAY="600000",
            SEGMENT_WRITE_KEY="k",
        )
        try:
            assert child.stdout is not None
            assert "ready\n" == child.stdout.readline()
            arrived = segment_server.wait_for_messages(101, timeout=10)
        finally:
            child.terminate()  # SIGTERM: the process dies at once, without atexit
            child.communicate(timeout=30)

        assert arrived
        assert ["Logged In"] == [
            m["event"] for m in segment_server.messages if m["event"] != "Signed Up"
        ]

    def test_sigterm_drains_with_the_variable(
        self, segment_server: ScriptedServer, tmp_path: Path
    ) -> None:
        """OTEL_SEGMENT_DRAIN_ON_SIGNALS=true: a SIGTERM delivers what is queued, then ends."""
        segment_server.respond_many(429, 3, headers={"Retry-After": "0"})  # keep it queued
        child = instrumented(
            tmp_path,
            segment_server,
            "--wait",
            OTEL_TRACES_EXPORTER="segment",
            OTEL_LOGS_EXPORTER="segment",
            OTEL_SEGMENT_DRAIN_ON_SIGNALS="true",
            SEGMENT_WRITE_KEY="k",
        )
        try:
            assert child.stdout is not None
            assert "ready\n" == child.stdout.readline()
        finally:
            child.terminate()
            child.communicate(timeout=30)

        assert -signal.SIGTERM == child.returncode  # the default action, handed on
        assert 101 == len(segment_server.messages)


class TestSamplers:
    """The OTEL_TRACES_SAMPLER names this package registers."""

    @pytest.mark.parametrize(
        ("name", "argument", "root"),
        [
            ("segment_traceidratio", "0.25", TraceIdRatioBased(0.25)),
            ("segment_parentbased_traceidratio", "0.01", ParentBased(TraceIdRatioBased(0.01))),
            ("segment_always_off", None, ALWAYS_OFF),
            ("segment_parentbased_always_off", None, ParentBased(ALWAYS_OFF)),
        ],
    )
    def test_wraps_the_named_sampler(self, name: str, argument: str | None, root: object) -> None:
        """Each name makes a SegmentSampler around the SDK sampler of the same meaning."""
        sampler = SAMPLERS[name](argument)

        assert isinstance(sampler, SegmentSampler)
        assert f"SegmentSampler{{{root.get_description()}}}" == sampler.get_description()  # type: ignore[attr-defined]

    @pytest.mark.parametrize("argument", [None, "", "half", "1.5", "-1"])
    def test_unreadable_ratio_means_one(
        self, argument: str | None, caplog: pytest.LogCaptureFixture
    ) -> None:
        """An argument that is not a ratio in 0..1 samples everything, with a warning."""
        with caplog.at_level(logging.WARNING, logger="otel_segment"):
            sampler = SAMPLERS["segment_traceidratio"](argument)

        assert "SegmentSampler{TraceIdRatioBased{1.0}}" == sampler.get_description()
        assert "OTEL_TRACES_SAMPLER_ARG" in caplog.text


AUTO_SCRIPT = """
from opentelemetry import _logs, trace
from opentelemetry.sdk._configuration import _OTelSDKConfigurator

_OTelSDKConfigurator().configure()
attributes = {"segment.event": "Signed Up", "enduser.id": "u1"}
with trace.get_tracer("auto").start_as_current_span("signup", attributes=attributes):
    _logs.get_logger("auto").emit(event_name="Logged In", attributes={"enduser.id": "u1"})
print("configured")
"""


class TestAutoConfiguration:
    """OTEL_TRACES_EXPORTER=segment / OTEL_LOGS_EXPORTER=segment through the entry points."""

    def test_env_configured_exporters(self, segment_server: ScriptedServer, tmp_path: Path) -> None:
        """The SDK builds our exporters with no arguments; spans and logs arrive at exit."""
        script = tmp_path / "auto.py"
        script.write_text(AUTO_SCRIPT)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "SEGMENT_"))}
        env.update(
            OTEL_TRACES_EXPORTER="segment",
            OTEL_LOGS_EXPORTER="segment",
            OTEL_METRICS_EXPORTER="none",
            OTEL_SERVICE_NAME="auto-service",
            SEGMENT_WRITE_KEY="auto-key",
            SEGMENT_HOST=segment_server.url,
        )
        result = subprocess.run(
            [sys.executable, str(script)],
            capture_output=True,
            text=True,
            timeout=30,
            env=env,
            check=False,
        )

        assert 0 == result.returncode, result.stderr
        assert "configured" in result.stdout
        assert segment_server.wait_for_messages(2)
        messages = sorted(segment_server.messages, key=lambda m: m["event"])
        assert ["Logged In", "Signed Up"] == [m["event"] for m in messages]
        assert {"auto-service"} == {m["context"]["app"]["name"] for m in messages}
        assert messages[0]["context"]["trace"] == messages[1]["context"]["trace"]
        assert "Basic YXV0by1rZXk6" == segment_server.requests[0].header("Authorization")


FALLBACK_SCRIPT = """
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from otel_segment.sources.otel_auto import AutoLogExporter, AutoSpanExporter

# No global SDK provider is set: each exporter exports as the plain one does.
spans, logs = AutoSpanExporter(), AutoLogExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(spans))
with provider.get_tracer("t").start_as_current_span("s", attributes={
        "segment.event": "Span Event", "enduser.id": "u1"}):
    pass
logger_provider = LoggerProvider()
logger_provider.add_log_record_processor(SimpleLogRecordProcessor(logs))
logger_provider.get_logger("l").emit(event_name="Log Event", attributes={"enduser.id": "u1"})
assert spans.force_flush(5000) and logs.force_flush(5000)
spans.shutdown()
logs.shutdown()
"""


class TestFallback:
    """Without the SDK's global providers, the auto exporters export like the plain ones."""

    def test_exports_itself(self, segment_server: ScriptedServer, tmp_path: Path) -> None:
        """A span and a log record reach Segment through the exporters' own export()."""
        script = tmp_path / "fallback.py"
        script.write_text(FALLBACK_SCRIPT)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "SEGMENT_"))}
        env.update(SEGMENT_WRITE_KEY="k", SEGMENT_HOST=segment_server.url)

        done = subprocess.run(
            [sys.executable, str(script)],
            capture_output=True,
            text=True,
            timeout=30,
            env=env,
            check=False,
        )

        assert 0 == done.returncode, done.stderr
        assert segment_server.wait_for_messages(2)
        assert {"Span Event", "Log Event"} == {m["event"] for m in segment_server.messages}
