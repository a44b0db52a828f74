"""
otel_segment: Segment Spec analytics from the telemetry a Python service already emits.

Use a :class:`Client` directly, or the module-level API backed by a lazily built default
client, as in segment-analytics-python::

    import otel_segment
    otel_segment.write_key = "..."
    otel_segment.track("user-1", "Signed Up", {"plan": "pro"})
"""

from __future__ import annotations

import asyncio
import importlib
from typing import TYPE_CHECKING, Any

from otel_segment import _default
from otel_segment._version import __version__
from otel_segment.errors import (
    ClientClosedError,
    DeliveryError,
    EncodingError,
    MessageTooLargeError,
    OtelSegmentError,
    QueueFullError,
    ShutdownError,
    SpoolError,
    SpoolFullError,
    SpoolLockedError,
)
from otel_segment.identity import Identity, current_identity, identity, set_identity
from otel_segment.pipeline.client import Client
from otel_segment.pipeline.retry import RetryPolicy
from otel_segment.sources.decorators import snapshot, tracked
from otel_segment.sources.handler import SegmentHandler, annotate

if TYPE_CHECKING:
    from collections.abc import Callable

    from otel_segment.pipeline.batching import ErrorCallback
    from otel_segment.pipeline.client import Result
    from otel_segment.sources.otel import (
        SegmentLogExporter,
        SegmentSampler,
        SegmentSpanExporter,
        SegmentSpanProcessor,
    )
    from otel_segment.sources.otel_metrics import PipelineMetrics, instrument_metrics

__all__ = [
    "Client",
    "ClientClosedError",
    "DeliveryError",
    "EncodingError",
    "Identity",
    "MessageTooLargeError",
    "OtelSegmentError",
    "PipelineMetrics",
    "QueueFullError",
    "RetryPolicy",
    "SegmentHandler",
    "SegmentLogExporter",
    "SegmentSampler",
    "SegmentSpanExporter",
    "SegmentSpanProcessor",
    "ShutdownError",
    "SpoolError",
    "SpoolFullError",
    "SpoolLockedError",
    "__version__",
    "aflush",
    "alias",
    "annotate",
    "configure",
    "current_identity",
    "default_client",
    "flush",
    "group",
    "identify",
    "identity",
    "instrument_metrics",
    "join",
    "page",
    "screen",
    "set_identity",
    "shutdown",
    "snapshot",
    "track",
    "tracked",
]

# Settings of the default client, as in segment-analytics-python; read when it is built.
write_key: str | None = None
host: str | None = None
on_error: ErrorCallback | None = None
debug: bool = False
send: bool = True
sync_mode: bool = False
max_queue_size: int = 10_000
gzip: bool = False
timeout: float = 15.0
max_retries: int = 10
proxies: dict[str, str] | None = None
upload_size: int | None = None
upload_interval: float | None = None

default_client: Client | None = None
"""The client behind the module-level calls; ``None`` until first needed."""

# Imported on first access (PEP 562), so that ``import otel_segment`` does not load the
# OpenTelemetry SDK for code that only uses the client.
_LAZY: dict[str, str] = {
    "PipelineMetrics": "otel_segment.sources.otel_metrics",
    "instrument_metrics": "otel_segment.sources.otel_metrics",
    "SegmentLogExporter": "otel_segment.sources.otel",
    "SegmentSampler": "otel_segment.sources.otel",
    "SegmentSpanExporter": "otel_segment.sources.otel",
    "SegmentSpanProcessor": "otel_segment.sources.otel",
}


if not TYPE_CHECKING:  # type checkers see the imports above, and no catch-all attribute

    def __getattr__(name: str) -> Any:
        """Import the OpenTelemetry bridge's names on first use."""
        module = _LAZY.get(name)
        if module is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        globals()[name] = value
        return value


def __dir__() -> list[str]:
    """List the lazily imported names too."""
    return sorted({*globals(), *_LAZY})


def _call(method: str) -> Callable[..., Result]:
    def call(*args: Any, **kwargs: Any) -> Result:
        result: Result = getattr(_default.get_client(), method)(*args, **kwargs)
        return result

    call.__name__ = call.__qualname__ = method
    call.__doc__ = (
        f"Send a ``{method}`` call through the default client (see :meth:`Client.{method}`)."
    )
    return call


track = _call("track")
identify = _call("identify")
page = _call("page")
screen = _call("screen")
group = _call("group")
alias = _call("alias")


def configure(**client_kwargs: Any) -> Client:
    """Build the default client from :class:`Client` keyword arguments and return it."""
    return _default.configure(**client_kwargs)


def flush(timeout: float | None = None) -> bool:
    """Block until the default client delivered everything queued so far."""
    return _default.get_client().flush(timeout)


async def aflush(timeout: float | None = None) -> bool:  # noqa: ASYNC109 - the promised name
    """
    :func:`flush`, awaited without blocking the event loop (see ``Client.aflush``).

    .. versionadded:: 0.2.0
    """
    return await asyncio.get_running_loop().run_in_executor(None, flush, timeout)


def shutdown(timeout: float | None = None) -> bool:
    """Flush and stop the default client; a later call builds a fresh one."""
    return _default.shutdown(timeout)


def join(timeout: float | None = None) -> bool:
    """segment-analytics-python's name for :func:`shutdown`."""
    return shutdown(timeout)
