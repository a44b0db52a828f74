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
from typing import TYPE_CHECKING, Any, Final

from otel_segment import _default
from otel_segment._version import __version__
from otel_segment.errors import (
    ClientClosedError,
    DeliveryError,
    EncodingError,
    FieldViolation,
    MessageTooLargeError,
    OtelSegmentError,
    PlanViolation,
    QueueFullError,
    ShutdownError,
    SpoolError,
    SpoolFullError,
    SpoolLockedError,
    TrackingPlanError,
)
from otel_segment.identity import Identity, current_identity, identity, set_identity
from otel_segment.pipeline.client import Client
from otel_segment.pipeline.oauth import DEFAULT_AUTH_SERVER, DEFAULT_SCOPE
from otel_segment.pipeline.retry import RetryPolicy
from otel_segment.pipeline.signals import drain_on_signals
from otel_segment.sources.decorators import snapshot, tracked
from otel_segment.sources.handler import SegmentHandler, annotate

if TYPE_CHECKING:
    import datetime as dt
    import logging

    from otel_segment.pipeline.batching import ErrorCallback
    from otel_segment.pipeline.client import Id, JSONMapping, Result
    from otel_segment.plans import TrackingPlan
    from otel_segment.sources.otel import (
        SegmentLogExporter,
        SegmentSampler,
        SegmentSpanExporter,
        SegmentSpanProcessor,
    )
    from otel_segment.sources.otel_metrics import PipelineMetrics, instrument_metrics

__all__ = [  # noqa: RUF022 - plainly sorted (test_module_api), VERSION among the V names
    "Client",
    "ClientClosedError",
    "DeliveryError",
    "EncodingError",
    "FieldViolation",
    "Identity",
    "MessageTooLargeError",
    "OtelSegmentError",
    "PipelineMetrics",
    "PlanViolation",
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
    "TrackingPlan",
    "TrackingPlanError",
    "VERSION",
    "__version__",
    "aflush",
    "alias",
    "annotate",
    "configure",
    "current_identity",
    "default_client",
    "drain_on_signals",
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

VERSION: Final = __version__
"""The library's version (segment-analytics-python's name for it)."""

# Settings of the default client, as in segment-analytics-python 2.4 (same names and
# defaults where the meaning is the same); read when it is built (_default.SETTINGS).
write_key: str | None = None
host: str | None = None
on_error: ErrorCallback | None = None
debug: bool = False
log_handler: logging.Handler | None = None
send: bool = True
sync_mode: bool = False
max_queue_size: int = 10_000
gzip: bool = False
timeout: float = 15.0
max_retries: int = 10
proxies: dict[str, str] | None = None
thread: int | None = None
upload_size: int | None = None
upload_interval: float | None = None
max_total_backoff_duration: float | None = None
max_rate_limit_duration: float | None = None
oauth_client_id: str | None = None
oauth_client_key: str | None = None
oauth_key_id: str | None = None
oauth_auth_server: str = DEFAULT_AUTH_SERVER
oauth_scope: str = DEFAULT_SCOPE

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
    # and jsonschema-rs only for code that loads a tracking plan
    "TrackingPlan": "otel_segment.plans",
}


if not TYPE_CHECKING:  # type checkers see the imports above, and no catch-all attribute

    def __getattr__(name: str) -> Any:
        """Import the OpenTelemetry bridge's names (and ``TrackingPlan``) on first use."""
        module = _LAZY.get(name)
        if module is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        globals()[name] = value
        return value


def __dir__() -> list[str]:
    """List the lazily imported names too."""
    return sorted({*globals(), *_LAZY})


# The six calls, with the Client methods' signatures (so IDEs and type checkers see them),
# each sent through the default client.


def track(
    user_id: Id = None,
    event: str | None = None,
    properties: JSONMapping = None,
    context: JSONMapping = None,
    timestamp: dt.datetime | float | None = None,
    anonymous_id: Id = None,
    integrations: JSONMapping = None,
    message_id: str | None = None,
) -> Result:
    """Send a ``track`` call through the default client (see :meth:`Client.track`)."""
    return _default.get_client().track(
        user_id, event, properties, context, timestamp, anonymous_id, integrations, message_id
    )


def identify(
    user_id: Id = None,
    traits: JSONMapping = None,
    context: JSONMapping = None,
    timestamp: dt.datetime | float | None = None,
    anonymous_id: Id = None,
    integrations: JSONMapping = None,
    message_id: str | None = None,
) -> Result:
    """Send an ``identify`` call through the default client (see :meth:`Client.identify`)."""
    return _default.get_client().identify(
        user_id, traits, context, timestamp, anonymous_id, integrations, message_id
    )


def page(
    user_id: Id = None,
    category: str | None = None,
    name: str | None = None,
    properties: JSONMapping = None,
    context: JSONMapping = None,
    timestamp: dt.datetime | float | None = None,
    anonymous_id: Id = None,
    integrations: JSONMapping = None,
    message_id: str | None = None,
) -> Result:
    """Send a ``page`` call through the default client (see :meth:`Client.page`)."""
    return _default.get_client().page(
        user_id, category, name, properties, context, timestamp, anonymous_id, integrations,
        message_id,
    )  # fmt: skip


def screen(
    user_id: Id = None,
    category: str | None = None,
    name: str | None = None,
    properties: JSONMapping = None,
    context: JSONMapping = None,
    timestamp: dt.datetime | float | None = None,
    anonymous_id: Id = None,
    integrations: JSONMapping = None,
    message_id: str | None = None,
) -> Result:
    """Send a ``screen`` call through the default client (see :meth:`Client.screen`)."""
    return _default.get_client().screen(
        user_id, category, name, properties, context, timestamp, anonymous_id, integrations,
        message_id,
    )  # fmt: skip


def group(
    user_id: Id = None,
    group_id: Id = None,
    traits: JSONMapping = None,
    context: JSONMapping = None,
    timestamp: dt.datetime | float | None = None,
    anonymous_id: Id = None,
    integrations: JSONMapping = None,
    message_id: str | None = None,
) -> Result:
    """Send a ``group`` call through the default client (see :meth:`Client.group`)."""
    return _default.get_client().group(
        user_id, group_id, traits, context, timestamp, anonymous_id, integrations, message_id
    )


def alias(
    previous_id: Id = None,
    user_id: Id = None,
    context: JSONMapping = None,
    timestamp: dt.datetime | float | None = None,
    integrations: JSONMapping = None,
    message_id: str | None = None,
) -> Result:
    """Send an ``alias`` call through the default client (see :meth:`Client.alias`)."""
    return _default.get_client().alias(
        previous_id, user_id, context, timestamp, integrations, message_id
    )


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
