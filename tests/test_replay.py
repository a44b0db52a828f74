"""Tests of otel-segment import (otel_segment.cli.replay)."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import pty
import re
import signal
import subprocess
import sys
import termios
import time
import uuid
from typing import TYPE_CHECKING, Any, Final

import pytest
from _helpers import closed_port, run_import
from hypothesis import given
from hypothesis import strategies as st
from pythonjsonlogger.json import JsonFormatter

from otel_segment.cli import main
from otel_segment.cli.replay import INTERRUPTED
from otel_segment.cli.replay_lines import Parsed, Skipped, TimeZone, line_message_id, parse_line
from otel_segment.sink import Sink

if TYPE_CHECKING:
    import pathlib
    from collections.abc import Iterator

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
        """A message over 32 KB is one skipped line with its reason, counted nowhere else."""
        log = tmp_path / "app.jsonl"
        log.write_text("\n".join([_line("A"), _line("Big", blob="x" * 40_000)]) + "\n")

        status = run_import(segment_server, log, "--no-progress")

        err = capsys.readouterr().err
        assert 1 == status
        assert ["A"] == [m["event"] for m in segment_server.messages]
        assert "read 2 lines: 1 delivered, 0 failed, 1 skipped, 0 not sent;" in err
        assert f"(at {log}:2)" in err
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
        assert (
            "read 3 lines: 2 delivered, 0 failed, 0 skipped, 0 not sent; "
            "1 without a segment annotation\n"
        ) == capsys.readouterr().err

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


SUMMARY_RE: Final = re.compile(
    r"read (\d+) lines: (\d+) delivered, (\d+) failed, (\d+) skipped, (\d+) not sent; "
    r"(\d+) without a segment annotation"
)


def summary_counts(err: str) -> tuple[int, ...]:
    """(read, delivered, failed, skipped, not sent, unannotated) from an import's summary."""
    found = SUMMARY_RE.findall(err)
    assert 1 == len(found), err
    return tuple(int(n) for n in found[0])


def write_lines(path: pathlib.Path, count: int, start: int = 0) -> None:
    """Write *count* annotated lines, each distinct."""
    lines = (_line(f"Event {n}", n=n) for n in range(start, start + count))
    path.write_text("\n".join(lines) + "\n")


class TestRerun:
    """Running the same file twice sends the same messageIds, so Segment de-duplicates."""

    def test_same_ids_on_every_run(
        self, segment_server: ScriptedServer, tmp_path: pathlib.Path
    ) -> None:
        """Two runs give equal ids; equal lines at different places get different ids."""
        log = tmp_path / "app.jsonl"
        same = _line("Same")
        log.write_text("\n".join([same, same, _line("Other")]) + "\n")

        assert 0 == run_import(segment_server, log, "--no-progress")
        assert 0 == run_import(segment_server, log, "--no-progress")

        ids = [m["messageId"] for m in segment_server.messages]
        assert ids[:3] == ids[3:]
        assert 3 == len(set(ids[:3]))
        assert line_message_id(same.encode(), 1) == ids[0]

    def test_a_line_keeps_its_own_id(
        self, segment_server: ScriptedServer, tmp_path: pathlib.Path
    ) -> None:
        """An annotation's message_id, or a top-level messageId, is sent as it is."""
        log = tmp_path / "app.jsonl"
        log.write_text(
            "\n".join(
                [
                    _line("A", segment={"user_id": "u1", "message_id": "m-a"}),
                    _line("B", messageId="m-b"),
                ]
            )
            + "\n"
        )

        assert 0 == run_import(segment_server, log, "--no-progress")

        assert ["m-a", "m-b"] == [m["messageId"] for m in segment_server.messages]
        assert "messageId" not in segment_server.messages[1]["properties"]

    @given(st.binary(max_size=200), st.integers(min_value=1, max_value=10**9))
    def test_derived_id_is_a_stable_uuid(self, line: bytes, number: int) -> None:
        """Any line at any position gets a UUID, the same however its line ends."""
        derived = line_message_id(line, number)
        assert str(uuid.UUID(derived)) == derived
        assert derived == line_message_id(line.rstrip(b"\r\n") + b"\r\n", number)


class TestNaiveTimes:
    """A time written without an offset is the log's local time unless told otherwise."""

    NAIVE: Final = "2024-05-01T10:00:00"

    def import_naive(self, server: ScriptedServer, tmp_path: pathlib.Path, *options: str) -> str:
        """Import one line stamped :attr:`NAIVE`; the timestamp that arrived."""
        log = tmp_path / "app.jsonl"
        log.write_text(_line("A", timestamp=self.NAIVE) + "\n")
        assert 0 == run_import(server, log, "--no-progress", *options)
        timestamp: str = server.messages[-1]["timestamp"]
        return timestamp

    def test_local_time_by_default(
        self, segment_server: ScriptedServer, tmp_path: pathlib.Path
    ) -> None:
        """Under TZ=Europe/Berlin, 10:00 in May (CEST, +02:00) is 08:00 UTC."""
        before = os.environ.get("TZ")
        os.environ["TZ"] = "Europe/Berlin"
        time.tzset()
        try:
            sent = self.import_naive(segment_server, tmp_path)
        finally:
            if before is None:
                del os.environ["TZ"]
            else:
                os.environ["TZ"] = before
            time.tzset()

        assert dt.datetime(2024, 5, 1, 8, tzinfo=dt.UTC) == dt.datetime.fromisoformat(sent)

    @pytest.mark.parametrize(
        ("options", "hour"),
        [(("--utc",), 10), (("--timezone", "Europe/Berlin"), 8), (("--timezone", "UTC"), 10)],
    )
    def test_told_zone(
        self,
        segment_server: ScriptedServer,
        tmp_path: pathlib.Path,
        options: tuple[str, ...],
        hour: int,
    ) -> None:
        """--utc and --timezone NAME say which zone the log was written in."""
        sent = self.import_naive(segment_server, tmp_path, *options)

        assert dt.datetime(2024, 5, 1, hour, tzinfo=dt.UTC) == dt.datetime.fromisoformat(sent)

    def test_unknown_zone_is_a_usage_error(
        self, tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A zone name the database does not know exits 2, naming the flag."""
        with pytest.raises(SystemExit) as exited:
            main(["import", "--timezone", "Mars/Olympus", str(tmp_path / "x"), "--dry-run"])

        assert 2 == exited.value.code
        assert "--timezone: unknown time zone: 'Mars/Olympus'" in capsys.readouterr().err


class TestHostileLines:
    """Lines that used to crash the import are counted, reported, and the rest goes on."""

    @pytest.mark.parametrize(
        ("bad", "reason"),
        [
            (
                '{"segment": {"user_id": "u1"}, "x": ' + "[" * 100_000 + "]" * 100_000 + "}",
                "JSON nested too deeply",
            ),
            ('{"segment": {"user_id": "u1"}, "n": ' + "9" * 5000 + "}", "unreadable JSON"),
            (_line("T", timestamp=1e12), "out of range for epoch seconds"),
            (_line("T", timestamp=1e17), "out of range for epoch seconds"),
            (_line("T", timestamp=1e19), "out of range for epoch seconds"),
            (_line("T", timestamp=-1e19), "out of range for epoch seconds"),
            (_line("T", timestamp=10**19), "out of range for epoch seconds"),
            (
                '{"message": "T", "segment": {"user_id": "u1"}, "timestamp": Infinity}',
                "out of range for epoch seconds",
            ),
        ],
    )
    def test_is_skipped_with_its_reason(
        self,
        segment_server: ScriptedServer,
        tmp_path: pathlib.Path,
        capsys: pytest.CaptureFixture[str],
        bad: str,
        reason: str,
    ) -> None:
        """The bad line 2 is skipped with its reason; lines 1 and 3 arrive; no traceback."""
        log = tmp_path / "app.jsonl"
        log.write_text("\n".join([_line("A"), bad, _line("C")]) + "\n")

        status = run_import(segment_server, log, "--no-progress")

        err = capsys.readouterr().err
        assert (1, ["A", "C"]) == (status, [m["event"] for m in segment_server.messages])
        assert (3, 2, 0, 1, 0, 0) == summary_counts(err)
        assert reason in err
        assert f"{log}:2)" in err
        assert "Traceback" not in err


class TestParseLine:
    """parse_line() maps any bytes to a message or a reason; it never raises."""

    @given(st.binary(max_size=300))
    def test_any_bytes(self, line: bytes) -> None:
        """Random bytes are skipped (or, rarely, parsed), never an exception."""
        result = parse_line(line, 1, time_field="timestamp", zone=TimeZone())
        assert isinstance(result, (Parsed, Skipped))

    @given(
        st.dictionaries(
            st.sampled_from(["message", "timestamp", "created", "segment", "messageId", "x"]),
            st.recursive(
                st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                lambda inner: (
                    st.lists(inner, max_size=3)
                    | st.dictionaries(st.text(max_size=8), inner, max_size=3)
                ),
                max_leaves=10,
            ),
        )
    )
    def test_any_record(self, record: dict[str, Any]) -> None:
        """Any JSON object, annotated or not, with any time value: a result, no exception."""
        line = json.dumps(record).encode()
        result = parse_line(line, 3, time_field="timestamp", zone=TimeZone(dt.UTC, "UTC"))
        assert isinstance(result, (Parsed, Skipped))
        if isinstance(result, Parsed):
            assert result.fields["message_id"]


class TestEndpointDown:
    """An unusable endpoint ends the import soon, with every message counted once."""

    def test_unreachable_host(
        self, tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Connection refused: the first batch fails after the short retries; the rest waits."""
        log = tmp_path / "app.jsonl"
        write_lines(log, 3000)

        status = main(
            [
                "import",
                str(log),
                "--no-progress",
                "--write-key",
                "k",
                "--host",
                f"http://127.0.0.1:{closed_port()}",
            ]
        )

        err = capsys.readouterr().err
        read, delivered, failed, skipped, not_sent, _ = summary_counts(err)
        assert 1 == status
        assert (0, 0) == (delivered, skipped)
        assert failed >= 1
        assert read == failed + not_sent
        assert "stopped early: the endpoint is unusable" in err
        assert "Traceback" not in err

    def test_a_refused_batch_does_not_stop_the_import(
        self,
        segment_server: ScriptedServer,
        tmp_path: pathlib.Path,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """A 400 is about one batch's content: counted failed, and the import goes on."""
        segment_server.respond(400, body=b'{"error": "bad batch"}')
        log = tmp_path / "app.jsonl"
        write_lines(log, 250)

        status = run_import(segment_server, log, "--no-progress")

        err = capsys.readouterr().err
        read, delivered, failed, skipped, not_sent, _ = summary_counts(err)
        assert 1 == status
        assert (250, 0, 0) == (read, skipped, not_sent)
        assert 250 == delivered + failed
        assert 0 < failed < 250
        assert "failed" in err
        assert "bad batch" in err or "400" in err
        assert "stopped early" not in err


class TestInterrupt:
    """Ctrl-C (a real SIGINT) stops the import within seconds, with its summary."""

    @pytest.fixture
    def slow_sink(self) -> Iterator[Sink]:
        """A sink answering each request after 0.5 s (so an import of many lines is slow)."""
        with Sink(latency_seconds=0.5) as sink:
            yield sink

    def start_import(self, sink: Sink, tmp_path: pathlib.Path) -> subprocess.Popen[str]:
        """Start importing 20,000 lines into *sink* in a child; return once one batch arrived."""
        log = tmp_path / "app.jsonl"
        write_lines(log, 20_000)
        child = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "otel_segment",
                "import",
                str(log),
                "--no-progress",
                "--write-key",
                "k",
                "--host",
                sink.url,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert sink.wait_for_requests(1, timeout=20)
        return child

    @pytest.mark.parametrize("presses", [1, 2])
    def test_stops_with_the_summary(
        self, slow_sink: Sink, tmp_path: pathlib.Path, presses: int
    ) -> None:
        """One or two Ctrl-C: exit 130, one summary, no traceback, every line counted once."""
        child = self.start_import(slow_sink, tmp_path)
        for _ in range(presses):
            child.send_signal(signal.SIGINT)
        _, err = child.communicate(timeout=15)

        assert INTERRUPTED == child.returncode, err
        assert "Traceback" not in err
        read, delivered, failed, skipped, not_sent, _ = summary_counts(err)
        assert (0, 0) == (failed, skipped)
        assert read == delivered + not_sent
        assert read < 20_000
        assert "interrupted (Ctrl-C)" in err


class TestProgress:
    """On a terminal, the bar of a regular file has a total and an ETA (by bytes read)."""

    def test_regular_file_shows_total_and_eta(
        self, segment_server: ScriptedServer, tmp_path: pathlib.Path
    ) -> None:
        """Run on a pseudo-terminal: the bar counts bytes against the file's size."""
        log = tmp_path / "app.jsonl"
        write_lines(log, 2000)
        size_kb = f"{log.stat().st_size / 1024:.0f}k"
        controller, terminal = pty.openpty()
        termios.tcsetwinsize(terminal, (24, 120))  # a new pty is 0 columns wide: no bar fits
        try:
            child = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "otel_segment",
                    "import",
                    str(log),
                    "--write-key",
                    "k",
                    "--host",
                    segment_server.url,
                ],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=terminal,
            )
            os.close(terminal)
            shown = _read_all(controller)
            assert 0 == child.wait(timeout=30)
        finally:
            os.close(controller)

        assert f"/{size_kb}" in shown  # e.g. "12.0k/245k"
        assert re.search(r"<\d\d:\d\d", shown)  # the ETA
        assert "read 2000 lines: 2000 delivered" in shown


def _read_all(fd: int) -> str:
    """Everything written to the pseudo-terminal whose controller end is *fd*, until closed."""
    chunks: list[bytes] = []
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks).decode(errors="replace")
