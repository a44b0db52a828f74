"""The command line: send, sink, import and demo, run as a user runs them."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest
from _helpers import closed_port

import otel_segment
from otel_segment.cli import main
from otel_segment.cli.common import LOCAL_WRITE_KEY, write_key_for

if TYPE_CHECKING:
    import pathlib

    from _server import ScriptedServer


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
            ["send", "track", "--host", f"http://127.0.0.1:{closed_port()}",
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
            (["track", "--event", "E"], "--user-id or an --anonymous-id"),
            (["alias", "--user-id", "u1", "--event", "E"], "alias takes no --event"),
            (["group", "--user-id", "u1"], "--group-id is required"),
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
        """Without --write-key or $SEGMENT_WRITE_KEY, the error names the flag, not the argument."""
        monkeypatch.delenv("SEGMENT_WRITE_KEY", raising=False)

        status = main(["send", "track", "--user-id", "u", "--event", "E", "--host", "http://x"])

        err = capsys.readouterr().err
        assert 2 == status
        assert "--write-key" in err
        assert "SEGMENT_WRITE_KEY" in err
        assert "write_key" not in err

    def test_a_local_sink_needs_no_write_key(
        self, segment_server: ScriptedServer, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A loopback host takes any key: without one, "local" is sent."""
        monkeypatch.delenv("SEGMENT_WRITE_KEY", raising=False)

        status = main(
            ["send", "track", "--user-id", "u", "--event", "E", "--host", segment_server.url]
        )

        assert 0 == status
        assert 1 == len(segment_server.messages)
        assert "local" == segment_server.requests[0].json["writeKey"]

    def test_option_errors_name_flags(self, capsys: pytest.CaptureFixture[str]) -> None:
        """A bad option value is reported under its flag."""
        status = main(
            ["send", "track", "--user-id", "u", "--event", "E", "--host", "http://127.0.0.1:1",
             "--write-key", "k", "--timeout", "-1"]
        )  # fmt: skip

        assert 2 == status
        assert "--timeout must be > 0" in capsys.readouterr().err


class TestWriteKeyFor:
    """Which write key a command sends when none is given."""

    @pytest.mark.parametrize(
        ("host", "given", "expected"),
        [
            ("http://127.0.0.1:8080", None, LOCAL_WRITE_KEY),
            ("http://localhost:8080", None, LOCAL_WRITE_KEY),
            ("http://[::1]:8080", None, LOCAL_WRITE_KEY),
            ("http://127.0.0.1:8080", "k", "k"),
            ("https://api.segment.io", None, None),
            ("http://10.0.0.1", None, None),
            (None, None, None),
        ],
    )
    def test_loopback_hosts_only(
        self, host: str | None, given: str | None, expected: str | None
    ) -> None:
        """Only a host on this machine gets the placeholder; a given key always wins."""
        assert expected == write_key_for(host, given)


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
