"""Tests of otel-segment import (otel_segment.cli.replay)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from typing import TYPE_CHECKING, Any

import pytest
from _helpers import run_import
from pythonjsonlogger.json import JsonFormatter

from otel_segment.cli import main

if TYPE_CHECKING:
    import pathlib

    from _server import ScriptedServer


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


def _write_log(path: pathlib.Path, records: list[tuple[str, dict[str, object]]]) -> None:
    """Log *records* through python-json-logger into *path*, as an application would."""
    logger = logging.getLogger(f"test_cli.import.{path.name}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(JsonFormatter("%(message)s %(levelname)s", timestamp=True))
    logger.addHandler(handler)
    try:
        for message, extra in records:
            logger.info(message, extra=extra)
    finally:
        logger.removeHandler(handler)
        handler.close()


class TestImport:
    """``otel-segment import FILE...``."""

    @pytest.fixture
    def log(self, tmp_path: pathlib.Path) -> pathlib.Path:
        """Where the test writes the log file it imports."""
        return tmp_path / "app.jsonl"

    def test_replays_annotated_lines_with_their_times(
        self, segment_server: ScriptedServer, log: pathlib.Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Annotated lines become messages with their original timestamps; others are counted."""
        _write_log(
            log,
            [
                ("Signed Up", {"segment": {"user_id": "u1"}, "plan": "pro"}),
                ("just a log line", {"request_id": "r1"}),
                ("who", {"segment": {"type": "identify", "user_id": "u1", "traits": {"a": 1}}}),
            ],
        )
        times = [json.loads(line)["timestamp"] for line in log.read_text().splitlines()]

        status = run_import(segment_server, log)

        assert 0 == status
        track, identify = segment_server.messages
        assert ("Signed Up", {"plan": "pro"}) == (track["event"], track["properties"])
        assert {"a": 1} == identify["traits"]
        assert times[0][:23] == track["timestamp"][:23]
        assert "read 3 lines: 2 sent, 1 without a segment annotation" in capsys.readouterr().err

    def test_malformed_lines_are_reported_and_skipped(
        self, segment_server: ScriptedServer, log: pathlib.Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Bad JSON and invalid annotations are named by line number; the rest is sent."""
        good = {
            "message": "Ok",
            "timestamp": "2024-05-01T10:00:00+00:00",
            "segment": {"user_id": "u"},
        }
        lines = [
            json.dumps(good),
            "{not json",
            json.dumps({**good, "segment": {"event": "No Actor"}}),
            json.dumps({"message": "m", "segment": {"user_id": "u"}}),
            json.dumps(good),
        ]
        log.write_text("\n".join(lines) + "\n")

        status = run_import(segment_server, log)

        err = capsys.readouterr().err
        assert 1 == status
        assert 2 == len(segment_server.messages)
        assert f"not JSON (Expecting property name enclosed in double quotes) (at {log}:2)" in err
        assert f"(at {log}:3)" in err
        assert f"(at {log}:4)" in err
        assert "2024-05-01T10:00:00.000+00:00" == segment_server.messages[0]["timestamp"]

    def test_dry_run_sends_nothing(
        self, segment_server: ScriptedServer, log: pathlib.Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """--dry-run validates every line and makes no request."""
        _write_log(log, [("Signed Up", {"segment": {"user_id": "u1"}})] * 3)

        status = run_import(segment_server, log, "--dry-run")

        assert 0 == status
        assert [] == segment_server.requests
        assert "3 valid" in capsys.readouterr().err

    def test_reads_stdin(self, segment_server: ScriptedServer, log: pathlib.Path) -> None:
        """``-`` reads the lines from standard input."""
        _write_log(log, [("From Stdin", {"segment": {"anonymous_id": "a1"}})])
        env = {**os.environ, "SEGMENT_WRITE_KEY": "k", "SEGMENT_HOST": segment_server.url}

        done = subprocess.run(
            [sys.executable, "-m", "otel_segment", "import", "-"],
            input=log.read_text(),
            capture_output=True,
            text=True,
            env=env,
            timeout=30,
            check=False,
        )

        assert 0 == done.returncode, done.stderr
        assert ["From Stdin"] == [m["event"] for m in segment_server.messages]

    def test_missing_file(self, capsys: pytest.CaptureFixture[str], tmp_path: pathlib.Path) -> None:
        """A file that cannot be read: exit 1 naming it."""
        status = main(["import", str(tmp_path / "nope.jsonl"), "--write-key", "k", "--dry-run"])

        assert 1 == status
        assert "nope.jsonl" in capsys.readouterr().err
