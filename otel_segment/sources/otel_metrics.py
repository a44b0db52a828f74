"""
The pipeline's own health as OpenTelemetry metrics (API only; no SDK import).

:func:`instrument_metrics` registers, under the meter ``otel_segment``, one observable
counter per ``Client.stats()`` counter and an observable gauge for the queue depth.
Their callbacks read ``stats()`` when the MeterProvider collects; nothing runs between
collections.

=========================  ========  ==================================================
instrument                 unit      ``stats()`` key
=========================  ========  ==================================================
``otel_segment.enqueued``  {message} ``enqueued``: accepted into the queue
``otel_segment.delivered`` {message} ``delivered``: accepted by the endpoint
``otel_segment.dropped``   {message} ``dropped``: queue full, or sent after shutdown
``otel_segment.rejected``  {message} ``rejected``: invalid or too large
``otel_segment.failed``    {message} ``failed``: given up (the endpoint refused them)
``otel_segment.retried``   {request} ``retried``: requests sent again
``otel_segment.batches``   {batch}   ``batches``: requests delivered
``otel_segment.bytes``     By        ``bytes``: request bodies delivered
``otel_segment.queued``    {message} ``queued`` (a gauge): waiting now
=========================  ========  ==================================================
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from opentelemetry import metrics

from otel_segment._version import __version__
from otel_segment.sources.clients import ClientRef

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from otel_segment.pipeline.client import Client

__all__ = ["METER_NAME", "PipelineMetrics", "instrument_metrics"]

METER_NAME: Final = "otel_segment"
"""The meter (instrumentation scope) the instruments are registered under."""

_COUNTERS: Final = (
    ("enqueued", "{message}", "Messages accepted into the queue"),
    ("delivered", "{message}", "Messages accepted by the endpoint"),
    ("dropped", "{message}", "Messages dropped: queue full, or sent after shutdown"),
    ("rejected", "{message}", "Messages rejected before queueing: invalid or too large"),
    ("failed", "{message}", "Messages given up: refused by the endpoint or undeliverable"),
    ("retried", "{request}", "Requests sent again after a failure"),
    ("batches", "{batch}", "Requests delivered"),
    ("bytes", "By", "Request body bytes delivered (before gzip)"),
)


class PipelineMetrics:
    """
    The instruments :func:`instrument_metrics` registered; :meth:`close` stops them.

    OpenTelemetry cannot unregister an instrument: after :meth:`close` the callbacks
    report nothing.

    .. versionadded:: 0.1.0
    """

    def __init__(self, client: Client | None, meter_provider: metrics.MeterProvider) -> None:
        self._ref = ClientRef(client)
        self._closed = False
        meter = meter_provider.get_meter(METER_NAME, __version__)
        for key, unit, description in _COUNTERS:
            meter.create_observable_counter(
                f"{METER_NAME}.{key}", [self._observer(key)], unit, description
            )
        meter.create_observable_gauge(
            f"{METER_NAME}.queued", [self._observer("queued")], "{message}", "Messages queued now"
        )

    @property
    def client(self) -> Client | None:
        """The client observed; ``None`` means the default client, whichever it is then."""
        return self._ref.fixed

    def close(self) -> None:
        """Stop reporting (the instruments stay registered, with no values)."""
        self._closed = True

    def _observer(
        self, key: str
    ) -> Callable[[metrics.CallbackOptions], Iterable[metrics.Observation]]:
        def observe(_options: metrics.CallbackOptions) -> Iterable[metrics.Observation]:
            client = self._ref.current()
            if self._closed or client is None:
                return ()
            return (metrics.Observation(client.stats()[key]),)

        return observe


def instrument_metrics(
    client: Client | None = None, meter_provider: metrics.MeterProvider | None = None
) -> PipelineMetrics:
    """
    Report *client*'s ``stats()`` as observable instruments under the meter ``otel_segment``.

    Call it once per client and meter provider: a second call on the same provider
    registers nothing new (OpenTelemetry keeps the first instruments of a name).

    Args:
        client: The client to observe; default: the process-wide default client,
            looked up at each collection (nothing is reported until it exists).
        meter_provider: Default: the global one. Set before or after this call, it
            picks the instruments up (the API's proxy forwards them).

    Returns:
        A handle whose ``close()`` stops the reports.

    Raises:
        TypeError: *client* is not a Client.

    .. versionadded:: 0.1.0
    """
    ref = ClientRef(client)  # checks the type before anything is registered
    provider = meter_provider if meter_provider is not None else metrics.get_meter_provider()
    return PipelineMetrics(ref.fixed, provider)
