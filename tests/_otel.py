"""
OpenTelemetry fixtures and helpers of the otel tests (a plugin that tests/conftest.py loads).

Fixtures: ``provider`` (a tracer provider with a service resource), ``finished`` (its
sampled spans, kept in memory), ``tracer`` (its spans go through a SegmentSpanProcessor on
the ``client`` fixture of tests/conftest.py) and ``send_span`` (ends a span through
``tracer`` and returns what was delivered). Helpers: :func:`end_span`,
:func:`owned_client` and :func:`shut_down_after`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final, TypeAlias, TypeVar

import pytest
from _helpers import delivered
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_segment import Client, SegmentLogExporter, SegmentSpanExporter, SegmentSpanProcessor

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping

    from _server import ScriptedServer
    from opentelemetry.trace import Tracer

AnyProvider = TypeVar("AnyProvider", TracerProvider, LoggerProvider)
SendSpan: TypeAlias = "Callable[[str, Mapping[str, Any]], list[dict[str, Any]]]"
"""``send_span(name, attributes)``: end a span through ``tracer``; the messages delivered."""

RESOURCE: Final = Resource.create({"service.name": "shop", "service.version": "1.2.3"})
"""The resource of ``provider``: becomes ``context.app`` {"name": "shop", "version": "1.2.3"}."""


def shut_down_after(provider: AnyProvider) -> Iterator[AnyProvider]:
    """Yield *provider*, then shut it down: the body of a provider fixture."""
    yield provider
    provider.shutdown()


@pytest.fixture
def provider() -> Iterator[TracerProvider]:
    """A tracer provider with a service resource, shut down afterwards."""
    yield from shut_down_after(TracerProvider(resource=RESOURCE, shutdown_on_exit=False))


@pytest.fixture
def finished(provider: TracerProvider) -> InMemorySpanExporter:
    """Every sampled span of *provider*, kept by the SDK's in-memory exporter."""
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return exporter


@pytest.fixture
def tracer(provider: TracerProvider, client: Client) -> Tracer:
    """A tracer whose spans go through a SegmentSpanProcessor on *client*."""
    provider.add_span_processor(SegmentSpanProcessor(client=client))
    return provider.get_tracer("test")


@pytest.fixture
def send_span(tracer: Tracer, client: Client, segment_server: ScriptedServer) -> SendSpan:
    """Ends a span through ``tracer``; returns the messages the server then holds."""

    def send(name: str, attributes: Mapping[str, Any]) -> list[dict[str, Any]]:
        end_span(tracer, name, attributes)
        return delivered(client, segment_server)

    return send


def end_span(tracer: Tracer, name: str, attributes: Mapping[str, Any]) -> None:
    """Start and end one span named *name* with *attributes*."""
    with tracer.start_as_current_span(name, attributes=dict(attributes)):
        pass


def owned_client(source: SegmentLogExporter | SegmentSpanExporter | SegmentSpanProcessor) -> Client:
    """The client *source* built from its client options (it owns it)."""
    owned = source._bridge.ref.owned
    assert owned is not None
    return owned
