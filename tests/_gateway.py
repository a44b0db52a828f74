"""
Helpers of the gateway tests: a gateway served in a thread, OTLP requests built by hand.

:func:`serving` runs a :class:`~otel_segment.gateway.Gateway` on 127.0.0.1 (ports picked
by the system) in a thread with its own event loop, and drains it afterwards.
:func:`logs_request` / :func:`spans_request` build OTLP export requests with the
protobuf classes of opentelemetry-proto.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import signal
import subprocess
import sys
import threading
from typing import IO, TYPE_CHECKING, Any, Final

from _helpers import FAST_RETRY, WRITE_KEY
from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from otel_segment import Client
from otel_segment.gateway import Gateway, GatewayConfig

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

LOOPBACK: Final = ("127.0.0.1", 0)
"""Listen on the loopback interface, on a port the system picks."""

BASE_TIME_NS: Final = 1_700_000_000_000_000_000
"""2023-11-14T22:13:20Z in nanoseconds: the first record's time."""


def any_value(value: Any) -> AnyValue:  # noqa: PLR0911 - one return per kind
    """*value* as an OTLP ``AnyValue`` (str, bool, int, float, bytes, list, dict, None)."""
    if value is None:
        return AnyValue()
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, bytes):
        return AnyValue(bytes_value=value)
    if isinstance(value, str):
        return AnyValue(string_value=value)
    found = AnyValue()
    if isinstance(value, dict):
        found.kvlist_value.values.extend(key_values(value))
    else:
        found.array_value.values.extend(any_value(item) for item in value)
    return found


def key_values(attributes: Mapping[str, Any]) -> list[KeyValue]:
    """*attributes* as OTLP key-value pairs."""
    return [KeyValue(key=key, value=any_value(value)) for key, value in attributes.items()]


def logs_request(
    records: list[Mapping[str, Any]], resource: Mapping[str, Any] | None = None
) -> ExportLogsServiceRequest:
    """
    A logs export request with one log record per entry of *records*.

    Each entry holds ``attributes`` and optionally ``event_name``, ``body``,
    ``time_unix_nano`` (default :data:`BASE_TIME_NS` plus its index), ``trace_id``, ``span_id``.
    """
    request = ExportLogsServiceRequest()
    resource_logs = request.resource_logs.add()
    resource_logs.resource.attributes.extend(key_values(resource or {"service.name": "shop"}))
    scope = resource_logs.scope_logs.add()
    for number, entry in enumerate(records):
        record = scope.log_records.add()
        record.time_unix_nano = entry.get("time_unix_nano", BASE_TIME_NS + number * 1000)
        record.event_name = entry.get("event_name", "")
        record.attributes.extend(key_values(entry.get("attributes", {})))
        if "body" in entry:
            record.body.CopyFrom(any_value(entry["body"]))
        record.trace_id = entry.get("trace_id", b"")
        record.span_id = entry.get("span_id", b"")
    return request


def tracks(count: int, *, start: int = 0, **attributes: Any) -> ExportLogsServiceRequest:
    """A logs request of *count* "Signed Up" tracks with ``seq`` properties from *start*."""
    return logs_request(
        [
            {
                "event_name": "Signed Up",
                "attributes": {
                    "enduser.id": f"u{start + number}",
                    "segment.properties.seq": start + number,
                    **attributes,
                },
            }
            for number in range(count)
        ]
    )


def spans_request(spans: list[Mapping[str, Any]]) -> ExportTraceServiceRequest:
    """A traces export request with one span per entry (``name`` and ``attributes``)."""
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    resource_spans.resource.attributes.extend(key_values({"service.name": "shop"}))
    scope = resource_spans.scope_spans.add()
    for number, entry in enumerate(spans):
        span = scope.spans.add()
        span.name = entry.get("name", "span")
        span.trace_id = bytes([1 + number % 200]) * 16
        span.span_id = bytes([2 + number % 200]) * 8
        span.start_time_unix_nano = BASE_TIME_NS
        span.end_time_unix_nano = BASE_TIME_NS + 2_500_000
        span.attributes.extend(key_values(entry.get("attributes", {})))
    return request


def gateway_client(sink_url: str, **options: Any) -> Client:
    """A client of *sink_url* with fast test defaults (the gateway shuts it down)."""
    settings: dict[str, Any] = {"flush_interval": 0.05, "retry": FAST_RETRY, "timeout": 5.0}
    settings.update(options)
    return Client(WRITE_KEY, sink_url, **settings)


@contextlib.contextmanager
def serving(client: Client, **config: Any) -> Iterator[Gateway]:
    """Serve a gateway of *client* on loopback in a thread; drain and join it afterwards."""
    settings: dict[str, Any] = {"http": LOOPBACK, "grpc": LOOPBACK, "drain_timeout": 10.0}
    settings.update(config)
    gateway = Gateway(GatewayConfig(**settings), client)
    failure: list[BaseException] = []

    def serve() -> None:
        try:
            asyncio.run(gateway.serve())
        except BaseException as error:  # noqa: BLE001 - surfaced by the test thread
            failure.append(error)
            gateway.started.set()

    thread = threading.Thread(target=serve, name="gateway", daemon=True)
    thread.start()
    gateway.started.wait(10)
    if failure:
        raise failure[0]
    try:
        yield gateway
    finally:
        gateway.stop()
        thread.join(20)
        client.shutdown(5)
    if failure:
        raise failure[0]


def otlp_json(request: ExportLogsServiceRequest | ExportTraceServiceRequest) -> dict[str, Any]:
    """*request* as OTLP JSON: the protobuf JSON mapping, with hex ids instead of base64."""
    document = json_format.MessageToDict(request)
    stack: list[Any] = [document]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for key, value in node.items():
                if key in {"traceId", "spanId", "parentSpanId"}:
                    node[key] = base64.b64decode(value).hex()
                else:
                    stack.append(value)
        elif isinstance(node, list):
            stack.extend(node)
    return document


class GatewayProcess:
    """
    ``otel-segment gateway`` in a subprocess on 127.0.0.1, its OTLP/HTTP port read from its log.

    Args:
        sink_url: Where the gateway delivers.
        options: More command-line options (e.g. ``["--spool", path]``).
        cwd: Its working directory (default: the tests').
    """

    def __init__(self, sink_url: str, *options: str, cwd: str | None = None) -> None:
        command = [
            sys.executable,
            "-m",
            "otel_segment",
            "gateway",
            "--http",
            "127.0.0.1:0",
            "--grpc",
            "127.0.0.1:0",
            "--write-key",
            WRITE_KEY,
            "--host",
            sink_url,
            "--flush-interval",
            "0.05",
            *options,
        ]
        self.process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, cwd=cwd)
        self.log: list[dict[str, Any]] = []
        self._logged = threading.Condition()
        self.http_port = self.grpc_port = 0
        assert self.process.stderr is not None
        for line in self.process.stderr:  # until it listens (or dies)
            self.log.append(json.loads(line))
            if self.log[-1]["message"] == "gateway listening":
                self.http_port, self.grpc_port = (
                    self.log[-1]["http_port"],
                    self.log[-1]["grpc_port"],
                )
                break
        assert self.http_port, f"the gateway did not start: {self.log}"
        self._reader = threading.Thread(target=self._read, args=(self.process.stderr,), daemon=True)
        self._reader.start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            with self._logged:
                self.log.append(json.loads(line))
                self._logged.notify_all()

    def wait_for_log(self, message: str, timeout: float) -> bool:
        """Block until a log line with *message* was written."""
        with self._logged:
            return self._logged.wait_for(
                lambda: any(line["message"] == message for line in self.log), timeout
            )

    @property
    def url(self) -> str:
        """The OTLP/HTTP base URL."""
        return f"http://127.0.0.1:{self.http_port}"

    def terminate(self, timeout: float = 30.0) -> int:
        """SIGTERM, then wait; the exit status."""
        self.process.send_signal(signal.SIGTERM)
        return self.wait(timeout)

    def kill(self) -> int:
        """SIGKILL (kill -9), then wait; the exit status."""
        self.process.kill()
        return self.wait(10)

    def wait(self, timeout: float) -> int:
        """Wait for the exit and the last log lines; the exit status."""
        status = self.process.wait(timeout)
        self._reader.join(10)
        if self.process.stderr is not None:
            self.process.stderr.close()
        return status

    def close(self) -> None:
        """Kill it if it still runs."""
        if self.process.poll() is None:
            self.kill()
