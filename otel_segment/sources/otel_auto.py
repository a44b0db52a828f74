"""
Zero-code OpenTelemetry: what ``opentelemetry-instrument`` finds through entry points.

``OTEL_TRACES_EXPORTER=segment SEGMENT_WRITE_KEY=... opentelemetry-instrument python app.py``
needs only ``opentelemetry-instrumentation`` (which provides the command) besides this
package:

- :class:`SegmentConfigurator` (entry point group ``opentelemetry_configurator``) runs the
  SDK's own environment configuration, so no distro is needed. Without a distro, signals
  whose exporter is not named are simply not exported (``opentelemetry-distro`` would
  default them to OTLP, which fails when the OTLP exporter is not installed).
- ``OTEL_TRACES_EXPORTER=segment`` (:class:`AutoSpanExporter`) puts a
  :class:`~otel_segment.SegmentSpanProcessor` on the SDK's tracer provider: every marked
  span is mapped when it ends, sampled or only recorded, with no batch delay. The
  exporter handed back to the SDK's batch processor stays idle. Likewise
  ``OTEL_LOGS_EXPORTER=segment`` (:class:`AutoLogExporter`) maps each log record when it
  is emitted. Both feed the process-wide default client.
- ``OTEL_TRACES_SAMPLER=segment_parentbased_traceidratio`` (and the others of
  :data:`SAMPLERS`) with ``OTEL_TRACES_SAMPLER_ARG=0.01``: a
  :class:`~otel_segment.SegmentSampler` around the SDK's sampler of that name, so marked
  spans stay recorded whatever the trace backend keeps.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Final

from opentelemetry import _logs, trace
from opentelemetry.sdk._configuration import _OTelSDKConfigurator
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ParentBased,
    Sampler,
    TraceIdRatioBased,
)

from otel_segment.pipeline.signals import drain_on_signals
from otel_segment.sources.otel import (
    SegmentLogExporter,
    SegmentSampler,
    SegmentSpanExporter,
    SegmentSpanProcessor,
)

try:
    from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
except ImportError:  # pragma: no cover - SDK < 1.39 used the older names
    from opentelemetry.sdk._logs.export import LogExporter as LogRecordExporter
    from opentelemetry.sdk._logs.export import (  # type: ignore[assignment]
        LogExportResult as LogRecordExportResult,
    )

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from opentelemetry.sdk._logs import ReadableLogRecord
    from opentelemetry.sdk.trace import ReadableSpan

__all__ = [
    "DRAIN_ON_SIGNALS_ENV",
    "SAMPLERS",
    "AutoLogExporter",
    "AutoSpanExporter",
    "SegmentConfigurator",
    "segment_always_off",
    "segment_parentbased_always_off",
    "segment_parentbased_traceidratio",
    "segment_traceidratio",
]

_logger = logging.getLogger("otel_segment")

DRAIN_ON_SIGNALS_ENV: Final = "OTEL_SEGMENT_DRAIN_ON_SIGNALS"
"""``true``: the configurator installs :func:`~otel_segment.drain_on_signals`."""


class SegmentConfigurator(_OTelSDKConfigurator):
    """
    The SDK's configuration from ``OTEL_*`` variables, for ``opentelemetry-instrument``.

    With ``OTEL_SEGMENT_DRAIN_ON_SIGNALS=true`` it also calls
    :func:`~otel_segment.drain_on_signals`, so a SIGTERM (or Ctrl-C) drains what the
    client still holds before the process ends, with no code in the application.
    """

    def _configure(self, **kwargs: object) -> None:
        super()._configure(**kwargs)  # type: ignore[no-untyped-call]  # the SDK leaves it untyped
        if os.environ.get(DRAIN_ON_SIGNALS_ENV, "").strip().lower() in {"1", "true", "yes"}:
            try:
                drain_on_signals()
            except ValueError as error:  # not the main thread: say so, start anyway
                _logger.warning("%s is set but was not applied: %s", DRAIN_ON_SIGNALS_ENV, error)


class AutoSpanExporter(SpanExporter):
    """
    ``OTEL_TRACES_EXPORTER=segment``: map spans on the SDK's tracer provider as they end.

    The SDK sets its tracer provider before it builds exporters: this one adds a
    :class:`~otel_segment.SegmentSpanProcessor` to it (sampling-safe, no batch delay)
    and then exports nothing itself. If the global provider is not the SDK's, it
    exports as a :class:`~otel_segment.SegmentSpanExporter` does (sampled spans only).
    """

    def __init__(self) -> None:
        provider = trace.get_tracer_provider()
        self._exporter: SegmentSpanExporter | None = None
        if isinstance(provider, TracerProvider):
            provider.add_span_processor(SegmentSpanProcessor())
        else:
            self._exporter = SegmentSpanExporter()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Nothing to do: the processor mapped these spans when they ended."""
        if self._exporter is None:
            return SpanExportResult.SUCCESS
        return self._exporter.export(spans)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Flush the client, when exporting for a provider that is not the SDK's."""
        return True if self._exporter is None else self._exporter.force_flush(timeout_millis)

    def shutdown(self) -> None:
        """Shut the fallback exporter down (the processor is the provider's to shut down)."""
        if self._exporter is not None:
            self._exporter.shutdown()


class AutoLogExporter(LogRecordExporter):
    """
    ``OTEL_LOGS_EXPORTER=segment``: map log records on the SDK's provider as they are emitted.

    Adds ``SimpleLogRecordProcessor(SegmentLogExporter())`` to the SDK's logger provider
    (the exporter does no I/O, so nothing waits) and exports nothing itself; or, for a
    provider that is not the SDK's, exports as :class:`~otel_segment.SegmentLogExporter`.
    """

    def __init__(self) -> None:
        provider = _logs.get_logger_provider()
        self._exporter: SegmentLogExporter | None = None
        if isinstance(provider, LoggerProvider):
            provider.add_log_record_processor(SimpleLogRecordProcessor(SegmentLogExporter()))
        else:
            self._exporter = SegmentLogExporter()

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        """Nothing to do: the simple processor mapped these records when they were emitted."""
        if self._exporter is None:
            return LogRecordExportResult.SUCCESS
        return self._exporter.export(batch)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Flush the client, when exporting for a provider that is not the SDK's."""
        return True if self._exporter is None else self._exporter.force_flush(timeout_millis)

    def shutdown(self) -> None:
        """Shut the fallback exporter down."""
        if self._exporter is not None:
            self._exporter.shutdown()


def _ratio(argument: object) -> float:
    """``OTEL_TRACES_SAMPLER_ARG`` as a ratio in 0..1 (1.0, with a warning, if unreadable)."""
    try:
        ratio = float(str(argument))
    except ValueError:
        ratio = -1.0
    if not 0.0 <= ratio <= 1.0:
        _logger.warning("OTEL_TRACES_SAMPLER_ARG=%r is not a ratio in 0..1; using 1.0", argument)
        return 1.0
    return ratio


def segment_traceidratio(argument: object) -> Sampler:
    """``segment_traceidratio``: ``TraceIdRatioBased(ARG)``, marked spans kept recording."""
    return SegmentSampler(TraceIdRatioBased(_ratio(argument)))


def segment_parentbased_traceidratio(argument: object) -> Sampler:
    """``segment_parentbased_traceidratio``: ``ParentBased(TraceIdRatioBased(ARG))``, wrapped."""
    return SegmentSampler(ParentBased(TraceIdRatioBased(_ratio(argument))))


def segment_always_off(argument: object) -> Sampler:
    """``segment_always_off``: no trace is sampled; marked spans are still recorded."""
    del argument
    return SegmentSampler(ALWAYS_OFF)


def segment_parentbased_always_off(argument: object) -> Sampler:
    """``segment_parentbased_always_off``: ``ParentBased(ALWAYS_OFF)``, wrapped."""
    del argument
    return SegmentSampler(ParentBased(ALWAYS_OFF))


SAMPLERS: Final[dict[str, Callable[[object], Sampler]]] = {
    "segment_traceidratio": segment_traceidratio,
    "segment_parentbased_traceidratio": segment_parentbased_traceidratio,
    "segment_always_off": segment_always_off,
    "segment_parentbased_always_off": segment_parentbased_always_off,
}
"""The ``OTEL_TRACES_SAMPLER`` names registered (group ``opentelemetry_traces_sampler``)."""
