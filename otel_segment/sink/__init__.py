"""
A local, Segment-compatible HTTP endpoint that records what it receives.

:class:`Sink` answers ``POST /v1/batch`` and the single-call paths (``/v1/track`` ...)
as the Segment Tracking API does, with its size limits, and keeps every request. It backs
``otel-segment sink``, the demo, the benchmark and the tests. Standard library and orjson
only: it imports nothing else of the package but its version.
"""

from __future__ import annotations

from otel_segment.sink.display import format_message
from otel_segment.sink.endpoint import Sink
from otel_segment.sink.received import NO_RESPONSE, ReceivedRequest

__all__ = ["NO_RESPONSE", "ReceivedRequest", "Sink", "format_message"]
