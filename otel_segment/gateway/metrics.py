"""
The gateway's ``/metrics``: Prometheus text from the prometheus client library.

Two kinds of series. The gateway's own counters: requests by transport, signal and
answer (``code`` is the HTTP status, or the gRPC code's name), records by what became of
them (``received``, ``ignored``, ``rejected``, ``accepted``, ``refused``: sent back with
"retry later"), and bad input by reason. And the pipeline's, read from
:meth:`Client.stats <otel_segment.Client.stats>` at each scrape: messages enqueued,
delivered, failed, dropped and rejected, and the queue depth (and spool depth).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from collections.abc import Iterable

    from prometheus_client.metrics_core import Metric

    from otel_segment.pipeline.client import Client

__all__ = ["CONTENT_TYPE", "GatewayMetrics"]

CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"
"""The media type of the Prometheus text exposition."""

_PREFIX: Final = "otel_segment_gateway"
_PIPELINE_COUNTERS: Final = {
    "enqueued": "Messages queued for delivery.",
    "delivered": "Messages the Segment endpoint accepted.",
    "failed": "Messages given up after retries or refused by the endpoint.",
    "dropped": "Messages dropped: queue full or pipeline shut down.",
    "rejected": "Messages refused before queueing: invalid or oversize.",
}


class GatewayMetrics:
    """
    The gateway's counters, in a registry of their own, and the client's stats.

    Args:
        client: The client whose :meth:`~otel_segment.Client.stats` are exposed.
    """

    def __init__(self, client: Client) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.requests = Counter(
            f"{_PREFIX}_requests",
            "Export requests answered, by transport, signal and answer code.",
            ["transport", "signal", "code"],
            registry=self.registry,
        )
        self.records = Counter(
            f"{_PREFIX}_records",
            "Spans and log records by what became of them.",
            ["signal", "outcome"],
            registry=self.registry,
        )
        self.bad_input = Counter(
            f"{_PREFIX}_bad_input",
            "Requests refused for their input, by reason.",
            ["reason"],
            registry=self.registry,
        )
        self.registry.register(_PipelineCollector(client))

    def exposition(self) -> bytes:
        """Every series, in the Prometheus text format (see :data:`CONTENT_TYPE`)."""
        return generate_latest(self.registry)


class _PipelineCollector(Collector):
    """The client's counters and depths, read at each scrape."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def collect(self) -> Iterable[Metric]:
        stats = self._client.stats()
        for name, help_text in _PIPELINE_COUNTERS.items():
            yield CounterMetricFamily(f"{_PREFIX}_messages_{name}", help_text, stats[name])
        yield GaugeMetricFamily(
            f"{_PREFIX}_queue_depth", "Messages waiting to be sent now.", stats["queued"]
        )
        if "spooled" in stats:
            yield GaugeMetricFamily(
                f"{_PREFIX}_spool_depth", "Messages in the spool file now.", stats["spooled"]
            )
