"""
The one home of process-wide state: the lazily built default client.

The module-level API (``otel_segment.track(...)``) works like segment-analytics-python's:
settings are attributes of the ``otel_segment`` package (``otel_segment.write_key = ...``),
read when the default client is first needed; ``otel_segment.default_client`` holds it,
and setting that to ``None`` makes the next call build a fresh one. :func:`reset` puts
all of it back as it was at import (for tests, like structlog's ``reset_defaults``).
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from typing import TYPE_CHECKING, Any, Final

from otel_segment.pipeline.client import Client
from otel_segment.pipeline.oauth import DEFAULT_AUTH_SERVER, DEFAULT_SCOPE

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "SETTINGS",
    "SETTING_DEFAULTS",
    "configure",
    "current",
    "get_client",
    "on_client",
    "reset",
    "shutdown",
]

_logger = logging.getLogger("otel_segment")

SETTINGS: Final = (
    "write_key",
    "host",
    "on_error",
    "debug",
    "log_handler",
    "send",
    "sync_mode",
    "max_queue_size",
    "gzip",
    "timeout",
    "max_retries",
    "proxies",
    "thread",
    "upload_size",
    "upload_interval",
    "max_total_backoff_duration",
    "max_rate_limit_duration",
    "oauth_client_id",
    "oauth_client_key",
    "oauth_key_id",
    "oauth_auth_server",
    "oauth_scope",
)
"""Package attributes the default client is built from (segment-analytics-python's)."""

SETTING_DEFAULTS: Final[dict[str, Any]] = {
    "write_key": None,
    "host": None,
    "on_error": None,
    "debug": False,
    "log_handler": None,
    "send": True,
    "sync_mode": False,
    "max_queue_size": 10_000,
    "gzip": False,
    "timeout": 15.0,
    "max_retries": 10,
    "proxies": None,
    "thread": None,
    "upload_size": None,
    "upload_interval": None,
    "max_total_backoff_duration": None,
    "max_rate_limit_duration": None,
    "oauth_client_id": None,
    "oauth_client_key": None,
    "oauth_key_id": None,
    "oauth_auth_server": DEFAULT_AUTH_SERVER,
    "oauth_scope": DEFAULT_SCOPE,
}
"""Their values at import, which :func:`reset` restores."""

_lock = threading.Lock()

# Called with each default client built (``@snapshot`` registers on it); see on_client().
_listeners: Final[list[Callable[[Client], object]]] = []


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
        if client is not None and not client.closed:
            return client
        options = {name: getattr(package, name) for name in SETTINGS}
        client = Client(**{k: v for k, v in options.items() if v is not None})
        package.default_client = client
    _announce(client)
    return client


def current() -> Client | None:
    """The default client if one is built and not shut down; never builds one."""
    client: Client | None = _package().default_client
    return None if client is None or client.closed else client


def configure(**client_kwargs: Any) -> Client:
    """Build the default client from *client_kwargs*, replacing (and shutting down) any other."""
    client = Client(**client_kwargs)
    with _lock:
        previous: Client | None = _package().default_client
        _package().default_client = client
    _announce(client)
    if previous is not None:
        previous.shutdown()
    return client


def on_client(callback: Callable[[Client], object]) -> None:
    """
    Call *callback* with the default client if one is live, and with each one built later.

    For sources that must set something up on the client itself, not per call (a
    ``@snapshot`` registers on its timer): decorating at import time, before
    ``configure()``, must not build a default client from settings not yet made.
    *callback* may be called twice with the same client; exceptions are logged.
    """
    with _lock:
        _listeners.append(callback)
        client: Client | None = _package().default_client
    if client is not None and not client.closed:
        _call(callback, client)


def _announce(client: Client) -> None:
    for callback in _listeners:
        _call(callback, client)


def _call(callback: Callable[[Client], object], client: Client) -> None:
    try:
        callback(client)
    except Exception:
        _logger.exception("setting up the default client failed (%r)", callback)


def shutdown(timeout: float | None = None) -> bool:
    """Shut the default client down; the next module-level call builds a fresh one."""
    with _lock:
        client: Client | None = _package().default_client
        _package().default_client = None
    return True if client is None else client.shutdown(timeout)


def reset() -> None:
    """
    Put the process-wide state back as it was at import; for tests.

    Shuts the default client down (within its ``exit_timeout``) and forgets it, restores
    every package setting to its default, and drops the :func:`on_client` listeners.
    """
    package = _package()
    with _lock:
        client: Client | None = package.default_client
        package.default_client = None
        for name, value in SETTING_DEFAULTS.items():
            setattr(package, name, value)
        _listeners.clear()
    if client is not None:
        client.shutdown(client.config.exit_timeout)


def _after_fork_in_child() -> None:
    """A lock a parent's thread held at the fork would never be released in the child."""
    global _lock  # noqa: PLW0603 - replaced, not shared: the child's own
    _lock = threading.Lock()


os.register_at_fork(after_in_child=_after_fork_in_child)
