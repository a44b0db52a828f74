"""The command line: send, sink, import and demo, run as a user runs them."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest
from _helpers import run_import
from pythonjsonlogger.json import JsonFormatter

import otel_segment
from otel_segment.cli import main

if TYPE_CHECKING:
    import pathlib

    from _server import ScriptedServer


def _closed_port() -> int:
    """Return a local port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


class TestSend:
    """``otel-segment send TYPE ...``."""

    def test_track_is_delivered(
        self, segment_server: ScriptedServer, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A track from the shell arrives with its fields; exit status 0."""
        status = main(
            [
                "send", "track", "--host", segment_server.url, "--write-key", "k",
                "--user-id", "u1", "--event", "Test", "--properties", '{"a": 1}',
            ]
        )  # fmt: skip

        assert 0 == status
        [message] = segment_server.messages
        assert ("track", "u1", "Test", {"a": 1}) == (
            message["type"],
            message["userId"],
            message["event"],
            message["properties"],
        )
        assert message["messageId"] in capsys.readouterr().out

    def test_every_type(self, segment_server: ScriptedServer) -> None:
        """Each of the six types can be sent with its own fields."""
        base = ["--host", segment_server.url, "--write-key", "k"]
        commands = [
            ["identify", "--user-id", "u1", "--traits", '{"plan": "pro"}'],
            ["page", "--user-id", "u1", "--name", "Home", "--category", "Docs"],
            ["screen", "--anonymous-id", "a1", "--name", "Settings"],
            ["group", "--user-id", "u1", "--group-id", "g1"],
            ["alias", "--previous-id", "a1", "--user-id", "u1"],
            ["track", "--user-id", "u1", "--event", "E", "--timestamp", "2020-01-02T03:04:05Z"],
        ]
        for command in commands:
            assert 0 == main(["send", command[0], *base, *command[1:]])

        received = segment_server.messages
        assert ["identify", "page", "screen", "group", "alias", "track"] == [
            m["type"] for m in received
        ]
        assert "2020-01-02T03:04:05.000+00:00" == received[-1]["timestamp"]

    def test_refused_by_the_server(
        self, segment_server: ScriptedServer, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A 401 is not retried; exit status 1 with the server's answer."""
        segment_server.respond(401, body=b'{"error": "bad write key"}')

        status = main(
            ["send", "track", "--host", segment_server.url, "--write-key", "bad",
             "--user-id", "u1", "--event", "E"]
        )  # fmt: skip

        assert 1 == status
        err = capsys.readouterr().err
        assert "HTTP 401" in err
        assert "bad write key" in err
        assert 1 == len(segment_server.requests)

    def test_unreachable_host(self, capsys: pytest.CaptureFixture[str]) -> None:
        """A host that refuses connections: exit status 1 and the reason."""
        status = main(
            ["send", "track", "--host", f"http://127.0.0.1:{_closed_port()}",
             "--write-key", "k", "--user-id", "u1", "--event", "E"]
        )  # fmt: skip

        assert 1 == status
        assert "Connection refused" in capsys.readouterr().err

    @pytest.mark.parametrize(
        ("args", "expected"),
        [
            (
                ["track", "--user-id", "u1", "--event", "E", "--properties", "{nope"],
                "not valid JSON",
            ),
            (["track", "--user-id", "u1", "--event", "E", "--properties", "[1]"], "JSON object"),
            (["track", "--user-id", "u1", "--event", "E", "--timestamp", "yesterday"], "ISO-8601"),
            (["bogus", "--user-id", "u1"], "invalid choice"),
        ],
    )
    def test_bad_arguments(
        self, args: list[str], expected: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Bad input exits 2 with a message saying what is wrong."""
        with pytest.raises(SystemExit) as exited:
            main(["send", *args, "--host", "http://127.0.0.1:1", "--write-key", "k"])

        assert 2 == exited.value.code
        assert expected in capsys.readouterr().err

    @pytest.mark.parametrize(
        ("args", "expected"),
        [
            (["track", "--event", "E"], "user_id or an anonymous_id"),
            (["alias", "--user-id", "u1", "--event", "E"], "alias takes no --event"),
            (["group", "--user-id", "u1"], "group_id is required"),
        ],
    )
    def test_invalid_message(
        self, args: list[str], expected: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A message the Spec refuses exits 2 and names the field; nothing is sent."""
        status = main(["send", *args, "--host", "http://127.0.0.1:1", "--write-key", "k"])

        assert 2 == status
        assert expected in capsys.readouterr().err

    def test_no_write_key(
        self, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Without --write-key or $SEGMENT_WRITE_KEY, the error says how to give one."""
        monkeypatch.delenv("SEGMENT_WRITE_KEY", raising=False)

        status = main(["send", "track", "--user-id", "u", "--event", "E", "--host", "http://x"])

        assert 2 == status
        assert "SEGMENT_WRITE_KEY" in capsys.readouterr().err


class TestSink:
    """``otel-segment sink`` in its own process."""

    def test_prints_what_arrives_as_json_lines(self) -> None:
        """A message sent to the sink is printed as one JSON line."""
        with subprocess.Popen(
            [sys.executable, "-m", "otel_segment", "sink", "--port", "0", "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        ) as process:
            assert process.stderr is not None
            assert process.stdout is not None
            banner = process.stderr.readline()
            url = banner.split()[2]
            with otel_segment.Client("k", host=url) as client:
                client.track("u1", "Seen By Sink", {"n": 1})
            line = process.stdout.readline()
            process.send_signal(signal.SIGINT)
            process.wait(timeout=10)
            process.stderr.close()
            process.stdout.close()

        assert "listening on http://127.0.0.1:" in banner
        message = json.loads(line)
        assert ("Seen By Sink", {"n": 1}) == (message["event"], message["properties"])
        assert 0 == process.returncode


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
