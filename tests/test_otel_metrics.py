"""Tests for the pipeline's health metrics (instrument_metrics) read by an InMemoryMetricReader."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import Gauge, InMemoryMetricReader, Sum

import otel_segment
from otel_segment import Client, instrument_metrics

if TYPE_CHECKING:
    from collections.abc import Iterator

    from _server import ScriptedServer

COUNTERS = ("enqueued", "delivered", "dropped", "rejected", "failed", "retried", "batches", "bytes")


@pytest.fixture
def client(segment_server: ScriptedServer) -> Iterator[Client]:
    """A client on the test server, shut down afterwards."""
    with Client("test-key", host=segment_server.url, max_queue_size=3, flush_interval=60) as client:
        yield client


class Meters(NamedTuple):
    """A meter provider and the in-memory reader it reports to."""

    provider: MeterProvider
    reader: InMemoryMetricReader


@pytest.fixture
def meters() -> Iterator[Meters]:
    """An in-memory reader on a meter provider of its own, shut down afterwards."""
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader], shutdown_on_exit=False)
    yield Meters(provider, reader)
    provider.shutdown()


def _read(reader: InMemoryMetricReader) -> dict[str, tuple[Any, list[int]]]:
    """Each otel_segment instrument's data type and point values."""
    data = reader.get_metrics_data()
    found: dict[str, tuple[Any, list[int]]] = {}
    if data is None:  # no instrument reported a value
        return found
    for resource_metrics in data.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            assert "otel_segment" == scope_metrics.scope.name
            for metric in scope_metrics.metrics:
                points = [int(point.value) for point in metric.data.data_points]  # type: ignore[union-attr]
                found[metric.name] = (metric.data, points)
    return found


class TestInstrumentMetrics:
    """stats() counters as observable counters, the queue depth as a gauge."""

    def test_counters_and_gauge(self, client: Client, meters: Meters) -> None:
        """Every counter reads stats(); queued is a gauge; units are set."""
        instrument_metrics(client, meter_provider=meters.provider)
        for n in range(4):  # the queue holds 3 until flushed
            client.track("u1", f"E{n}")
        with pytest.raises(ValueError, match="event"):
            client.track("u1", "")
        stats = client.stats()

        metrics = _read(meters.reader)
        assert {f"otel_segment.{key}" for key in (*COUNTERS, "queued")} == set(metrics)
        for key in COUNTERS:
            data, points = metrics[f"otel_segment.{key}"]
            assert isinstance(data, Sum)
            assert data.is_monotonic
            assert [stats[key]] == points
        gauge, queued = metrics["otel_segment.queued"]
        assert isinstance(gauge, Gauge)
        assert [stats["queued"]] == queued
        assert (1, 1) == (stats["rejected"], stats["dropped"])

    def test_after_delivery(
        self, client: Client, segment_server: ScriptedServer, meters: Meters
    ) -> None:
        """Delivered messages, batches and bytes show on the next collection."""
        instrument_metrics(client, meter_provider=meters.provider)
        client.track("u1", "E")
        assert client.flush(5)

        metrics = _read(meters.reader)
        assert [1] == metrics["otel_segment.delivered"][1]
        assert [1] == metrics["otel_segment.batches"][1]
        assert [client.stats()["bytes"]] == metrics["otel_segment.bytes"][1]
        assert [0] == metrics["otel_segment.queued"][1]
        assert 1 == len(segment_server.messages)

    def test_close(self, client: Client, meters: Meters) -> None:
        """After close(), the instruments report nothing."""
        handle = instrument_metrics(client, meter_provider=meters.provider)
        handle.close()

        assert {} == _read(meters.reader)
        assert handle.client is client

    def test_default_client(
        self, client: Client, meters: Meters, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Without a client, the default client is read at each collection, once it exists."""
        instrument_metrics(meter_provider=meters.provider)
        assert {} == _read(meters.reader)

        monkeypatch.setattr(otel_segment, "default_client", client)
        client.track("u1", "E")

        assert [1] == _read(meters.reader)["otel_segment.enqueued"][1]

    def test_bad_client(self) -> None:
        """A client that is not a Client is refused."""
        with pytest.raises(TypeError, match=r"client must be an otel_segment\.Client"):
            instrument_metrics("client")  # type: ignore[arg-type]
