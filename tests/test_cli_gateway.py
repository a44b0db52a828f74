"""The ``otel-segment gateway`` command's options (running it: tests/test_gateway_process.py)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from otel_segment.cli import main
from otel_segment.gateway import GatewayConfig

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
