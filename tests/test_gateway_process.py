"""The gateway as a process: real senders, SIGTERM drain, kill -9 with a spool, replicas."""

from __future__ import annotations

import collections
import json
import pathlib
import subprocess
import sys
import threading
from typing import TYPE_CHECKING, Any

import pytest
import requests
from _gateway import GatewayProcess, gateway_client, serving, tracks

from otel_segment.sink import Sink

if TYPE_CHECKING:
    from collections.abc import Iterator

    from _server import ScriptedServer

PROTOBUF = {"Content-Type": "application/x-protobuf"}
SENDER = pathlib.Path(__file__).with_name("_otlp_sender.py")


@pytest.fixture
def processes() -> Iterator[list[GatewayProcess]]:
    """Gateway processes a test starts; killed afterwards if still running."""
    started: list[GatewayProcess] = []
    yield started
    for process in started:
        process.close()


def seqs(messages: list[dict[str, Any]]) -> collections.Counter[int]:
    """How often each ``seq`` property arrived."""
    return collections.Counter(int(m["properties"]["seq"]) for m in messages)


def send(url: str, start: int, count: int) -> int:
    """POST one request of *count* tracks from *start*; the status."""
    body = tracks(count, start=start).SerializeToString()
    return requests.post(f"{url}/v1/logs", data=body, headers=PROTOBUF, timeout=30).status_code


class TestSdkExporters:
    """The SDK's OTLP exporters, from another process, ride out a gateway answering 429."""

    @pytest.mark.parametrize("protocol", ["http", "grpc"])
    def test_nothing_lost_through_429(self, segment_server: ScriptedServer, protocol: str) -> None:
        """While the endpoint hangs the gateway refuses; the exporters retry; all arrives once."""
        segment_server.hang(2.0)
        client = gateway_client(segment_server.url, max_queue_size=60, max_in_flight=1, flush_at=1)
        with serving(client) as gateway:
            endpoint = (
                f"http://127.0.0.1:{gateway.http_port}/v1/logs"
                if protocol == "http"
                else f"127.0.0.1:{gateway.grpc_port}"
            )
            sender = subprocess.run(
                [sys.executable, str(SENDER), protocol, endpoint, "0", "8", "25"],
                capture_output=True,
                text=True,
                timeout=50,
                check=True,
            )
            assert ["SUCCESS"] * 8 == json.loads(sender.stdout)
            assert client.flush(20)
            code = "429" if protocol == "http" else "RESOURCE_EXHAUSTED"
            refused = gateway.metrics.requests.labels(protocol, "logs", code)._value.get()
        assert refused >= 1, "the gateway never refused: the test proved nothing"
        assert collections.Counter(range(200)) == seqs(segment_server.messages)


class TestDrain:
    """SIGTERM: 503 while the pipeline drains, everything acknowledged delivered, exit 0."""

    def test_sigterm(self, segment_server: ScriptedServer, processes: list[GatewayProcess]) -> None:
        """Acknowledged records all arrive; meanwhile /readyz and exports answer 503."""
        segment_server.hang(1.5)
        gateway = GatewayProcess(segment_server.url, "--max-in-flight", "1")
        processes.append(gateway)
        assert [200] * 5 == [send(gateway.url, n * 100, 100) for n in range(5)]
        assert segment_server.wait_for_requests(1, 10)  # the endpoint now holds a batch
        gateway.process.send_signal(15)
        assert gateway.wait_for_log("gateway draining", 10)
        ready = requests.get(f"{gateway.url}/readyz", timeout=10)
        refused = requests.post(
            f"{gateway.url}/v1/logs",
            data=tracks(1).SerializeToString(),
            headers=PROTOBUF,
            timeout=10,
        )
        assert (503, 503, "1") == (
            ready.status_code,
            refused.status_code,
            refused.headers["retry-after"],
        )
        assert 0 == gateway.wait(30)
        assert collections.Counter(range(500)) == seqs(segment_server.messages)
        stopped = gateway.log[-1]
        assert ("gateway stopped", True, 500) == (
            stopped["message"],
            stopped["drained"],
            stopped["delivered"],
        )


class TestSpool:
    """With --spool, what was acknowledged survives kill -9."""

    def test_kill_9_under_load(
        self, tmp_path: pathlib.Path, processes: list[GatewayProcess]
    ) -> None:
        """Senders keep posting; kill -9; restart on the same spool; every ack arrives."""
        spool = str(tmp_path / "gateway.db")
        with Sink(latency_seconds=0.2) as sink:  # slow: acknowledged records wait in the spool
            first = GatewayProcess(sink.url, "--spool", spool, "--max-in-flight", "1")
            processes.append(first)
            acked: list[int] = []
            enough = threading.Event()

            def sender(offset: int) -> None:
                for n in range(1000):
                    start = offset + n * 50
                    try:
                        if send(first.url, start, 50) == 200:
                            acked.extend(range(start, start + 50))
                    except requests.ConnectionError:
                        return
                    if len(acked) >= 1500:
                        enough.set()

            threads = [threading.Thread(target=sender, args=(k * 1_000_000,)) for k in range(2)]
            for thread in threads:
                thread.start()
            assert enough.wait(30)
            assert -9 == first.kill()
            in_spool_only = len(acked) - sink.message_count
            assert in_spool_only > 0, (
                "nothing acknowledged was undelivered: the test proved nothing"
            )
            for thread in threads:
                thread.join(30)
            second = GatewayProcess(sink.url, "--spool", spool)
            processes.append(second)
            assert sink.wait_for_messages(len(acked), 30)
            assert 0 == second.terminate()
            arrived = seqs(sink.messages)
        missing = set(acked) - set(arrived)
        assert set() == missing


class TestReplicas:
    """Two replicas, each with its own spool, fed by several senders."""

    def test_nothing_lost_nothing_twice(
        self, tmp_path: pathlib.Path, processes: list[GatewayProcess]
    ) -> None:
        """Every record arrives exactly once."""
        with Sink() as sink:
            replicas = [
                GatewayProcess(sink.url, "--spool", str(tmp_path / f"replica-{n}.db"))
                for n in range(2)
            ]
            processes.extend(replicas)
            statuses: list[int] = []

            def sender(number: int) -> None:
                for n in range(10):
                    replica = replicas[(number + n) % 2]
                    start = number * 10_000 + n * 100
                    statuses.append(send(replica.url, start, 100))

            threads = [threading.Thread(target=sender, args=(k,)) for k in range(4)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(60)
            assert [200] * 40 == statuses
            assert [0, 0] == [replica.terminate() for replica in replicas]
            expected = collections.Counter(
                k * 10_000 + n * 100 + i for k in range(4) for n in range(10) for i in range(100)
            )
            assert expected == seqs(sink.messages)


class TestStartup:
    """A gateway that cannot listen says so and exits 1."""

    def test_address_in_use(self, processes: list[GatewayProcess]) -> None:
        """A second gateway on a port in use: a JSON log line, exit status 1."""
        with Sink() as sink:
            first = GatewayProcess(sink.url)
            processes.append(first)
            second = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "otel_segment",
                    "gateway",
                    "--write-key",
                    "k",
                    "--host",
                    sink.url,
                    "--http",
                    f"127.0.0.1:{first.http_port}",
                    "--grpc",
                    "none",
                ],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
            assert 0 == first.terminate()
        last = json.loads(second.stderr.splitlines()[-1])
        assert (1, "ERROR") == (second.returncode, last["levelname"])
        assert last["message"].startswith("cannot listen")
