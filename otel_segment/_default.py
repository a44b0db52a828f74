"""
The one home of process-wide state: the lazily built default client.

The module-level API (``otel_segment.track(...)``) works like segment-analytics-python's:
settings are attributes of the ``otel_segment`` package (``otel_segment.write_key = ...``),
read when the default client is first needed; ``otel_segment.default_client`` holds it,
and setting that to ``None`` makes the next call build a fresh one.
"""

from __future__ import annotations

import sys
import threading
from typing import Any, Final

from otel_segment.client import Client

__all__ = ["SETTINGS", "configure", "get_client", "shutdown"]

SETTINGS: Final = (
    "write_key",
    "host",
    "on_error",
    "debug",
    "send",
    "sync_mode",
    "max_queue_size",
    "gzip",
    "timeout",
    "max_retries",
    "proxies",
    "upload_size",
    "upload_interval",
)
"""Package attributes the default client is built from (segment-analytics-python's)."""

_lock: Final = threading.Lock()


def _package() -> Any:
    return sys.modules["otel_segment"]


def get_client() -> Client:
    """Return the default client, building it from the package settings if needed."""
    package = _package()
    client: Client | None = package.default_client
    if client is not None and not client.closed:
        return client
    with _lock:
        client = package.default_client
        if client is None or client.closed:
            options = {name: getattr(package, name) for name in SETTINGS}
            client = Client(**{k: v for k, v in options.items() if v is not None})
            package.default_client = client
        return client


def configure(**client_kwargs: Any) -> Client:
    """Build the default client from *client_kwargs*, replacing (and shutting down) any other."""
    client = Client(**client_kwargs)
    with _lock:
        previous: Client | None = _package().default_client
        _package().default_client = client
    if previous is not None:
        previous.shutdown()
    return client


def shutdown(timeout: float | None = None) -> bool:
    """Shut the default client down; the next module-level call builds a fresh one."""
    with _lock:
        client: Client | None = _package().default_client
        _package().default_client = None
    return True if client is None else client.shutdown(timeout)
