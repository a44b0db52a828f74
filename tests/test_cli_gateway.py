"""The ``otel-segment gateway`` command's options (running it: tests/test_gateway_process.py)."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest
import requests
from _gateway import GatewayProcess, tracks

from otel_segment.cli import main
from otel_segment.gateway import GatewayConfig
from otel_segment.sink import Sink

if TYPE_CHECKING:
    from collections.abc import Iterator

    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

_TESTS = pathlib.Path(__file__).parent
_EXTRA = ("grpc", "uvicorn", "httptools", "prometheus_client", "opentelemetry.proto")


class TestGatewayCommand:
    """Option parsing and usage errors."""

    def test_the_command_line_loads_no_gateway_package(self) -> None:
        """A fresh interpreter: the package and its command line import none of the extra."""
        code = (
            "import sys, otel_segment, otel_segment.cli\n"
            f"print(sorted(m for m in {_EXTRA!r} if m in sys.modules))\n"
        )
        result = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=True
        )
        assert "[]" == result.stdout.strip()

    @pytest.mark.parametrize(
        "option",
        [
            ["--http", "4318"],
            ["--http", "host:port"],
            ["--grpc", "127.0.0.1:70000"],
            ["--max-body-bytes", "0"],
            ["--drain-timeout", "-1"],
            ["--flush-at", "x"],
        ],
    )
    def test_bad_options_exit_2(
        self, option: list[str], capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A malformed address or number is a usage error naming the option."""
        with pytest.raises(SystemExit) as exited:
            main(["gateway", *option])
        assert 2 == exited.value.code
        assert option[0] in capsys.readouterr().err

    def test_no_write_key_exits_2(
        self, no_write_key: None, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Without a write key the gateway does not start, and says why."""
        del no_write_key
        assert 2 == main(["gateway", "--http", "127.0.0.1:0", "--grpc", "none"])
        assert "write_key" in capsys.readouterr().err

    def test_listening_nowhere_exits_2(self, capsys: pytest.CaptureFixture[str]) -> None:
        """--http none --grpc none is refused."""
        assert 2 == main(["gateway", "--http", "none", "--grpc", "none", "--write-key", "k"])
        assert "listen nowhere" in capsys.readouterr().err


class TestGatewayConfig:
    """GatewayConfig checks its values."""

    @pytest.mark.parametrize(
        ("options", "named"),
        [
            ({"tls_cert": "c.pem"}, "tls_key"),
            ({"max_body_bytes": 0}, "max_body_bytes"),
            ({"drain_timeout": 0}, "drain_timeout"),
            ({"token": ""}, "token"),
        ],
    )
    def test_invalid_values_name_the_field(self, options: dict[str, object], named: str) -> None:
        """ValueError naming the field."""
        with pytest.raises(ValueError, match=named):
            GatewayConfig(**options)  # type: ignore[arg-type]


class TestGatewayHooks:
    """--plan, --on-violation and --before-send reach the gateway's client."""

    def test_before_send(self, sink: Sink, processes: list[GatewayProcess]) -> None:
        """The function named MODULE:FUNCTION, from the working directory, sees every message."""
        gateway = GatewayProcess(sink.url, "--before-send", "_gateway_hooks:tag", cwd=str(_TESTS))
        processes.append(gateway)
        assert 200 == _post(gateway, tracks(4)).status_code
        assert sink.wait_for_messages(2, 10)
        assert 0 == gateway.terminate()
        assert [(0, True), (2, True)] == sorted(
            (m["properties"]["seq"], m["properties"]["hooked"]) for m in sink.messages
        )

    def test_plan_drops_violations(
        self, sink: Sink, processes: list[GatewayProcess], tmp_path: pathlib.Path
    ) -> None:
        """With --on-violation drop, a track breaking the --plan file is not sent."""
        plan = tmp_path / "plan.json"
        schema = {"type": "object", "properties": {"seq": {"type": "integer", "maximum": 1}}}
        plan.write_text(json.dumps({"events": {"Signed Up": schema}}))
        gateway = GatewayProcess(sink.url, "--plan", str(plan), "--on-violation", "drop")
        processes.append(gateway)
        assert 200 == _post(gateway, tracks(4)).status_code
        assert 0 == gateway.terminate()
        assert [0, 1] == sorted(m["properties"]["seq"] for m in sink.messages)

    @pytest.mark.parametrize(
        ("option", "value"),
        [
            ("--before-send", "no_colon"),
            ("--before-send", "no_such_module_here:f"),
            ("--before-send", "json:no_such_function"),
            ("--before-send", "json:__doc__"),
        ],
    )
    def test_bad_hooks_exit_2(
        self, option: str, value: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A function that cannot be loaded is a usage error naming the option."""
        with pytest.raises(SystemExit) as exited:
            main(["gateway", option, value])
        assert 2 == exited.value.code
        assert option in capsys.readouterr().err

    def test_an_unreadable_plan_exits_2(
        self, tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A --plan file that is not a plan: exit 2, the file named."""
        plan = tmp_path / "plan.json"
        plan.write_text("[1, 2")
        assert 2 == main(["gateway", "--write-key", "k", "--plan", str(plan)])
        assert "plan.json" in capsys.readouterr().err


def _post(gateway: GatewayProcess, request: ExportLogsServiceRequest) -> requests.Response:
    return requests.post(
        f"{gateway.url}/v1/logs",
        data=request.SerializeToString(),
        headers={"Content-Type": "application/x-protobuf"},
        timeout=10,
    )


@pytest.fixture
def sink() -> Iterator[Sink]:
    """The gateway's sink."""
    with Sink() as running:
        yield running


@pytest.fixture
def processes() -> Iterator[list[GatewayProcess]]:
    """Gateway processes a test starts; killed afterwards if still running."""
    started: list[GatewayProcess] = []
    yield started
    for process in started:
        process.close()
