"""Review findings on the bridges and the command line, each shown with real parts."""

from __future__ import annotations

import json
import logging
import socket
import time
from typing import TYPE_CHECKING, Any

import pytest
from _helpers import run_import

from otel_segment import Client, SegmentSpanProcessor
from otel_segment.cli import main

if TYPE_CHECKING:
    import pathlib

    from _server import ScriptedServer
    from opentelemetry.sdk.trace import TracerProvider


def _closed_port() -> int:
    """Return a local port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def _line(message: str, **fields: Any) -> str:
    """One python-json-logger line annotated for user ``u1``, with *fields* over it."""
    record: dict[str, Any] = {
        "message": message,
        "timestamp": "2024-05-01T10:00:00+00:00",
        "segment": {"user_id": "u1"},
    }
    record.update(fields)
    return json.dumps(record)


class TestImportKeepsGoing:
    """``import``: a bad line is reported by number and skipped; the other lines arrive."""

    def test_a_line_that_is_not_utf8(
        self,
        segment_server: ScriptedServer,
        tmp_path: pathlib.Path,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """Bytes that are not UTF-8 on line 2 skip that line, not the rest of the file."""
        log = tmp_path / "app.jsonl"
        bad = _line("Bad \udcff").encode("utf-8", "surrogateescape").replace(b"\\udcff", b"\xff")
        log.write_bytes(b"\n".join([_line("A").encode(), bad, _line("C").encode(), b""]))

        status = run_import(segment_server, log, "--no-progress")

        err = capsys.readouterr().err
        assert 1 == status
        assert ["A", "C"] == [m["event"] for m in segment_server.messages]
        assert f"(at {log}:2)" in err
        assert "Traceback" not in err

    def test_a_numeric_time_out_of_range(
        self,
        segment_server: ScriptedServer,
        tmp_path: pathlib.Path,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """NaN or a year past 9999 as an epoch time is a malformed line, not a crash."""
        log = tmp_path / "app.jsonl"
        lines = [_line("A"), _line("B", timestamp=float("nan")), _line("C", timestamp=1e20)]
        log.write_text("\n".join([*lines, _line("D")]) + "\n")

        status = run_import(segment_server, log, "--no-progress")

        err = capsys.readouterr().err
        assert 1 == status
        assert ["A", "D"] == [m["event"] for m in segment_server.messages]
        assert f"(at {log}:2, {log}:3)" in err

    def test_an_oversize_message_is_counted_once(
        self,
        segment_server: ScriptedServer,
        tmp_path: pathlib.Path,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """A message over 32 KB is one failure with its reason, not also a "queue full" skip."""
        log = tmp_path / "app.jsonl"
        log.write_text("\n".join([_line("A"), _line("Big", blob="x" * 40_000)]) + "\n")

        status = run_import(segment_server, log, "--no-progress")

        err = capsys.readouterr().err
        assert 1 == status
        assert ["A"] == [m["event"] for m in segment_server.messages]
        assert "read 2 lines: 1 sent, 0 without a segment annotation, 0 skipped, 1 failed" in err
        assert "queue full" not in err
        assert "max_message_bytes" in err


class TestSinkBadInput:
    """``sink`` with an unusable option: a one-line message and exit 1, no traceback."""

    @pytest.mark.parametrize(
        ("options", "expected"),
        [
            (["--port", "99999"], "cannot listen on 127.0.0.1:99999"),
            (["--port", "0", "--output", "{tmp}/no/such/dir/out.jsonl"], "cannot write"),
        ],
    )
    def test_is_refused_clearly(
        self,
        options: list[str],
        expected: str,
        tmp_path: pathlib.Path,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """The option is named in the message; the exit status is non-zero."""
        status = main(["sink", *(option.format(tmp=tmp_path) for option in options)])

        err = capsys.readouterr().err
        assert 1 == status
        assert expected in err
        assert err.startswith("otel-segment sink: ")

    def test_a_negative_latency_is_a_usage_error(self, capsys: pytest.CaptureFixture[str]) -> None:
        """The parser refuses it (exit 2) before anything is opened."""
        with pytest.raises(SystemExit) as exited:
            main(["sink", "--port", "0", "--latency-ms", "-5"])

        assert 2 == exited.value.code
        assert "argument --latency-ms: must be a number >= 0, got '-5'" in capsys.readouterr().err


class TestDemoUnreachable:
    """``demo --host`` of an endpoint that cannot be reached."""

    def test_fails_soon_with_the_reason(self, capsys: pytest.CaptureFixture[str]) -> None:
        """Exit 1 within seconds, naming the host and why, instead of minutes of retries."""
        host = f"http://127.0.0.1:{_closed_port()}"
        started = time.monotonic()

        status = main(["demo", "--host", host, "--write-key", "k"])

        elapsed = time.monotonic() - started
        err = capsys.readouterr().err
        assert 1 == status
        assert elapsed < 15
        assert f"not delivered to {host}: connection failed" in err


class TestTrackingNeverRaises:
    """``@tracked``: nothing about tracking reaches the decorated call."""

    def test_an_id_callable_raising_an_unprintable_error(self, client: Client) -> None:
        """The call returns its result; the event is counted as rejected."""

        class UnprintableError(Exception):
            def __str__(self) -> str:
                raise RuntimeError("no text")

        def user_id(_arguments: dict[str, Any]) -> str:
            raise UnprintableError

        @client.tracked("Computed", user_id=user_id)
        def compute(x: int) -> int:
            return x * 2

        assert 4 == compute(2)
        assert 1 == client.stats()["rejected"]


class TestSpanProcessorOnAClosedClient:
    """A marked span ended after its shared client was shut down is not lost in silence."""

    def test_is_reported(
        self,
        provider: TracerProvider,
        segment_server: ScriptedServer,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        """One warning under otel_segment names the reason, however many spans follow."""
        client = Client("k", host=segment_server.url)
        provider.add_span_processor(SegmentSpanProcessor(client=client))
        tracer = provider.get_tracer("test")
        client.shutdown()

        with caplog.at_level(logging.WARNING, "otel_segment"):
            for _ in range(3):
                with tracer.start_as_current_span("s", attributes={"segment.event": "E"}):
                    pass

        reports = [r.getMessage() for r in caplog.records if r.name == "otel_segment"]
        assert ["OpenTelemetry data not sent: the client was shut down"] == reports
