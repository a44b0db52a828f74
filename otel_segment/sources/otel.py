"""
The OpenTelemetry bridge: spans and OTel log records become Segment messages.

- :class:`SegmentSpanProcessor` maps every ended span, sampled or only recorded: the
  sampling-safe choice. Pair it with :class:`SegmentSampler` so that marked spans are
  recorded even when the trace sampler drops them.
- :class:`SegmentSpanExporter` is the same mapping as a ``SpanExporter``, for
  ``SimpleSpanProcessor`` / ``BatchSpanProcessor`` (which only pass sampled spans).
- :class:`SegmentLogExporter` maps log records that carry an event name.
- :func:`instrument_metrics` reports the pipeline's own health as OTel metrics. It is
  opt-in, one call per client: sources do not register instruments themselves, since
  several may share a client and the SDK keeps only the first instruments of a name.

Which client a source uses: ``client=`` if given; else, with client keyword arguments
(``write_key=``, ``host=`` ...), a :class:`~otel_segment.Client` of its own, shut down
with the source; else the process-wide default client, which reads
``$SEGMENT_WRITE_KEY`` / ``$SEGMENT_HOST`` unless the code configured it. That is what
the SDK's auto-configuration builds (``OTEL_TRACES_EXPORTER=segment``,
``OTEL_LOGS_EXPORTER=segment``: exporters made with no arguments), so traces, logs and
the application's own ``otel_segment.track(...)`` calls share one pipeline. A source's
``shutdown()`` shuts down only a client it owns; a shared one is flushed (within the
client's ``exit_timeout``) and left running.

The SDK's ``SimpleSpanProcessor`` / ``BatchSpanProcessor`` (and their log twins) do
not pass ``force_flush()`` on to their exporter: to wait for delivery, call the
exporter's own ``force_flush()`` (or ``client.flush()``). ``provider.shutdown()`` does
reach it. :class:`SegmentSpanProcessor` is a processor, so ``provider.force_flush()``
flushes its client.

Mapping, sending and counting happen on the calling thread; delivery never does.
Nothing here raises into the SDK: a message that cannot be built is counted in the
client's ``stats()["rejected"]`` and logged (logger ``otel_segment``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from opentelemetry import trace as otel_trace
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.trace import SpanKind

from otel_segment.pipeline import identify
from otel_segment.pipeline.batching import in_pipeline
from otel_segment.sources.otel_bridge import Bridge, MapperResult
from otel_segment.sources.otel_mapping import (
    is_marked,
    log_record_messages,
    span_is_marked,
    span_messages,
    trace_context,
)
from otel_segment.sources.otel_metrics import PipelineMetrics, instrument_metrics

try:
    from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
except ImportError:  # pragma: no cover - SDK < 1.39 used the older names
    from opentelemetry.sdk._logs.export import LogExporter as LogRecordExporter
    from opentelemetry.sdk._logs.export import (  # type: ignore[assignment]
        LogExportResult as LogRecordExportResult,
    )

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.sdk._logs import ReadableLogRecord
    from opentelemetry.trace import Link
    from opentelemetry.trace.span import TraceState
    from opentelemetry.util.types import Attributes

    from otel_segment.pipeline.client import Client

__all__ = [
    "LogMapper",
    "PipelineMetrics",
    "SegmentLogExporter",
    "SegmentSampler",
    "SegmentSpanExporter",
    "SegmentSpanProcessor",
    "SpanMapper",
    "instrument_metrics",
]

_logger = logging.getLogger("otel_segment")

SpanMapper = Callable[[ReadableSpan], MapperResult]
"""A callable replacing the default mapping of a span: ``mapper(span) -> dict | list[dict] |
None``, each dict the fields of :meth:`otel_segment.Client.message` plus its ``"type"``."""

LogMapper = Callable[["ReadableLogRecord"], MapperResult]
"""A callable replacing the default mapping of a log record (as :data:`SpanMapper`)."""


def _span_trace(span: ReadableSpan) -> dict[str, str] | None:
    context = span.context
    return None if context is None else trace_context(context.trace_id, context.span_id)


def _log_trace(item: ReadableLogRecord) -> dict[str, str] | None:
    record: Any = getattr(item, "log_record", item)
    return trace_context(record.trace_id or 0, record.span_id or 0)


class SegmentSpanProcessor(SpanProcessor):
    """
    Map every ended span to Segment messages, sampled or only recorded.

    The SDK's ``SimpleSpanProcessor`` and ``BatchSpanProcessor`` skip spans that are
    recorded but not sampled; this processor does not, so with :class:`SegmentSampler`
    analytics survive trace sampling. Mapping and queueing run in ``on_end``, on the
    thread that ends the span (no I/O); an unmarked span costs a dictionary lookup.

    Args:
        client: The client to send through; default: see the module docs.
        mapper: ``mapper(span) -> dict | list[dict] | None`` replacing the default
            mapping; each dict holds :meth:`~otel_segment.Client.message` fields and a
            ``"type"``, and gets ``context.trace`` unless it sets one.
        client_kwargs: Options of a :class:`~otel_segment.Client` this processor owns.

    Raises:
        TypeError: *client* is not a Client, both *client* and client options are
            given, *mapper* is not callable, or a client option has the wrong type.
        ValueError: A client option is out of range (as for :class:`~otel_segment.Client`).

    .. versionadded:: 0.1.0
    """

    def __init__(
        self,
        client: Client | None = None,
        *,
        mapper: SpanMapper | None = None,
        **client_kwargs: Any,
    ) -> None:
        self._bridge = Bridge(client, mapper, client_kwargs, span_messages, _span_trace)
        self._custom = mapper is not None

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        """Let *span* inherit its parent span's identity (see :mod:`~otel_segment.identity`)."""
        try:
            identify.inherit(span, otel_trace.get_current_span(parent_context))
        except Exception:  # a bug of ours must not reach the code that started the span
            _logger.exception("reading a parent span's identity failed")

    def on_end(self, span: ReadableSpan) -> None:
        """Map *span* (and its marked events) and queue the messages."""
        identify.forget(span)  # its message takes the identity where it ends, not its own
        if not self._custom and not span_is_marked(span):
            return
        if self._bridge.closed or in_pipeline():
            return
        try:
            self._bridge.emit((span,))
        except Exception:  # a bug of ours must not reach the code that ended the span
            _logger.exception("mapping a span failed")

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Block until the client delivered what is queued; ``False`` after shutdown."""
        return self._bridge.flush(timeout_millis)

    def shutdown(self) -> None:
        """Stop mapping; shut down the client if this processor owns it, else flush it."""
        self._bridge.shutdown()


class SegmentSpanExporter(SpanExporter):
    """
    A ``SpanExporter`` that maps spans to Segment messages and queues them.

    ``export()`` does no I/O (the client's workers deliver), so ``SimpleSpanProcessor``
    is the natural processor; ``BatchSpanProcessor`` works too. Both pass only sampled
    spans: use :class:`SegmentSpanProcessor` where trace sampling must not drop analytics.
    Registered as the ``segment`` traces exporter for the SDK's auto-configuration.

    Args:
        client: The client to send through; default: see the module docs.
        mapper: Replaces the default mapping, as for :class:`SegmentSpanProcessor`.
        client_kwargs: Options of a :class:`~otel_segment.Client` this exporter owns.

    Raises:
        TypeError: As for :class:`SegmentSpanProcessor`.
        ValueError: As for :class:`SegmentSpanProcessor`.

    .. versionadded:: 0.1.0
    """

    def __init__(
        self,
        client: Client | None = None,
        *,
        mapper: SpanMapper | None = None,
        **client_kwargs: Any,
    ) -> None:
        self._bridge = Bridge(client, mapper, client_kwargs, span_messages, _span_trace)
        self._custom = mapper is not None

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """
        Map and queue *spans*; never raises.

        Returns:
            ``FAILURE`` only when nothing could be sent: after shutdown, or with no usable
            client. Invalid messages are counted as rejected and do not fail the export.
        """
        marked = spans if self._custom else filter(span_is_marked, spans)
        sent = self._bridge.export(marked, "spans")
        return SpanExportResult.SUCCESS if sent else SpanExportResult.FAILURE

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Block until the client delivered what is queued; ``False`` after shutdown."""
        return self._bridge.flush(timeout_millis)

    def shutdown(self) -> None:
        """Stop exporting; shut down the client if this exporter owns it, else flush it."""
        self._bridge.shutdown()


class SegmentLogExporter(LogRecordExporter):
    """
    An OTel logs-SDK exporter: log records with an event name become tracks.

    The event name is the record's ``event_name`` field (or an ``otel.event.name``
    attribute); attributes map as for spans (``segment.type`` may make it another call).
    Registered as the ``segment`` logs exporter for the SDK's auto-configuration.

    Args:
        client: The client to send through; default: see the module docs.
        mapper: ``mapper(record) -> dict | list[dict] | None`` replacing the default.
        client_kwargs: Options of a :class:`~otel_segment.Client` this exporter owns.

    Raises:
        TypeError: As for :class:`SegmentSpanProcessor`.
        ValueError: As for :class:`SegmentSpanProcessor`.

    .. versionadded:: 0.1.0
    """

    def __init__(
        self, client: Client | None = None, *, mapper: LogMapper | None = None, **client_kwargs: Any
    ) -> None:
        self._bridge: Bridge[ReadableLogRecord] = Bridge(
            client, mapper, client_kwargs, log_record_messages, _log_trace
        )

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        """Map and queue *batch*; never raises (``FAILURE`` as for spans)."""
        sent = self._bridge.export(batch, "log records")
        return LogRecordExportResult.SUCCESS if sent else LogRecordExportResult.FAILURE

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Block until the client delivered what is queued; ``False`` after shutdown."""
        return self._bridge.flush(timeout_millis)

    def shutdown(self) -> None:
        """Stop exporting; shut down the client if this exporter owns it, else flush it."""
        self._bridge.shutdown()


class SegmentSampler(Sampler):
    """
    Wrap a sampler so that spans marked for Segment are at least recorded.

    A span that *root* drops gets ``RECORD_ONLY`` (with *root*'s trace state) when its
    start attributes carry ``segment.type`` or ``segment.event``, or when its kind is
    one of *record_kinds*: it is not sampled, so trace exporters never see it, but
    :class:`SegmentSpanProcessor` does. Every other decision is *root*'s, unchanged.

    A marker set after the span started (``span.set_attribute("segment.event", ...)`` in
    a request handler, on the server span a framework instrumentation started) cannot
    be seen here; *record_kinds* keeps the request (``SERVER``) and message
    (``CONSUMER``) spans recording, so such late markers reach Segment whatever *root*
    chose. An unmarked span kept recording costs its recording: about 12 us more than a
    dropped one (6 us), 22 us with ten attributes (``bench/identity.py``, on a loaded
    2-core machine); a request spends far longer than that.

    Args:
        root: The sampler that decides for the trace backend, e.g.
            ``ParentBased(TraceIdRatioBased(0.01))``.
        record_kinds: Span kinds kept recording when *root* drops them. ``()``: only
            spans marked at start (0.1's behaviour); ``SpanKind`` (every kind): a late
            marker works on any span, at that cost on every dropped span.

    Raises:
        TypeError: *root* is not a ``Sampler``, or *record_kinds* holds something else
            than ``SpanKind`` members.

    .. versionadded:: 0.1.0
    .. versionchanged:: 0.2.0
       *record_kinds*: server and consumer spans stay recording by default.
    """

    def __init__(
        self,
        root: Sampler,
        *,
        record_kinds: Iterable[SpanKind] = (SpanKind.SERVER, SpanKind.CONSUMER),
    ) -> None:
        if not isinstance(root, Sampler):
            raise TypeError(f"root must be an OpenTelemetry Sampler, got {type(root).__name__}")
        kinds = frozenset(record_kinds)
        if not all(isinstance(kind, SpanKind) for kind in kinds):
            raise TypeError(f"record_kinds must hold SpanKind members, got {record_kinds!r}")
        self.root = root
        self.record_kinds: frozenset[SpanKind] = kinds

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        """*root*'s decision, raised from ``DROP`` to ``RECORD_ONLY`` for a span kept."""
        result = self.root.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )
        if result.decision is not Decision.DROP:
            return result
        if (kind or SpanKind.INTERNAL) not in self.record_kinds and not is_marked(attributes):
            return result
        return SamplingResult(
            Decision.RECORD_ONLY, {**(attributes or {}), **result.attributes}, result.trace_state
        )

    def get_description(self) -> str:
        """``SegmentSampler{<root's description>}``."""
        return f"SegmentSampler{{{self.root.get_description()}}}"
