"""
A client's configuration: one frozen value, validated once, with the one table of defaults.

:meth:`ClientConfig.resolve` turns the constructor's arguments (with the environment and
segment-analytics-python's aliases) into a :class:`ClientConfig` or raises a
``TypeError`` / ``ValueError`` naming the option. The defaults here are the ones the
constructor's signature, the module-level settings and the README show.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from otel_segment.pipeline import options
from otel_segment.pipeline.retry import RetryPolicy
from otel_segment.pipeline.spool import DEFAULT_SPOOL_MAX_BYTES

if TYPE_CHECKING:
    from otel_segment.pipeline.reporting import ErrorCallback

__all__ = ["DEFAULTS", "MAX_SEGMENT_BATCH_BYTES", "MAX_SEGMENT_MESSAGE_BYTES", "ClientConfig"]

MAX_SEGMENT_BATCH_BYTES: Final = 500 * 1024
"""Segment's limit on one request body."""

MAX_SEGMENT_MESSAGE_BYTES: Final = 32 * 1024
"""Segment's limit on one message."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ClientConfig:
    """
    Every option of a :class:`~otel_segment.Client`, validated (see its docstring).

    The field defaults are the library's defaults; ``write_key`` and ``host`` are
    resolved from the environment when not given.
    """

    write_key: str = ""
    host: str = options.DEFAULT_HOST
    flush_at: int = 100
    flush_interval: float = 0.5
    max_queue_size: int = 10_000
    max_batch_bytes: int = MAX_SEGMENT_BATCH_BYTES
    max_message_bytes: int = MAX_SEGMENT_MESSAGE_BYTES
    retry: RetryPolicy = dataclasses.field(default_factory=RetryPolicy)
    default_context: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    gzip: bool = False
    timeout: float = 15.0
    send: bool = True
    sync_mode: bool = False
    on_error: ErrorCallback | None = None
    debug: bool = False
    proxies: dict[str, str] | None = None
    verify: bool | str = True
    cert: str | tuple[str, str] | None = None
    spool: str | None = None
    spool_max_bytes: int = DEFAULT_SPOOL_MAX_BYTES
    max_in_flight: int = 2
    exit_timeout: float = 5.0
    identity_from_baggage: bool = False

    @classmethod
    def resolve(
        cls,
        *,
        upload_size: int | None = None,
        upload_interval: float | None = None,
        max_retries: int | None = None,
        **given: Any,
    ) -> ClientConfig:
        """
        Validate the constructor's keyword arguments into a configuration.

        Raises:
            TypeError: An option has the wrong type.
            ValueError: An option is out of range, options conflict, or no write key is
                given or set.
        """
        flush_at = options.alias("flush_at", given["flush_at"], 100, "upload_size", upload_size)
        flush_interval = options.alias(
            "flush_interval", given["flush_interval"], 0.5, "upload_interval", upload_interval
        )
        send = options.flag("send", given["send"])
        sync_mode = options.flag("sync_mode", given["sync_mode"])
        spool = given["spool"]
        config = cls(
            write_key=options.write_key(given["write_key"], required=send),
            host=options.host(given["host"]),
            flush_at=options.positive_int("flush_at", flush_at),
            flush_interval=options.seconds("flush_interval", flush_interval),
            max_queue_size=options.positive_int("max_queue_size", given["max_queue_size"]),
            max_batch_bytes=options.positive_int("max_batch_bytes", given["max_batch_bytes"]),
            max_message_bytes=options.positive_int("max_message_bytes", given["max_message_bytes"]),
            retry=_retry(given["retry"], max_retries),
            default_context=_context(given["default_context"]),
            gzip=options.flag("gzip", given["gzip"]),
            timeout=options.seconds("timeout", given["timeout"]),
            send=send,
            sync_mode=sync_mode,
            on_error=options.callback(given["on_error"]),
            debug=options.flag("debug", given["debug"]),
            proxies=options.proxies(given["proxies"]),
            verify=options.verify(given["verify"]),
            cert=options.cert(given["cert"]),
            spool=_spool_path(spool),
            spool_max_bytes=options.positive_int("spool_max_bytes", given["spool_max_bytes"]),
            max_in_flight=options.positive_int("max_in_flight", given["max_in_flight"]),
            exit_timeout=options.seconds("exit_timeout", given["exit_timeout"], allow_zero=True),
            identity_from_baggage=options.flag(
                "identity_from_baggage", given.get("identity_from_baggage", False)
            ),
        )
        config.check()
        return config

    def check(self) -> None:
        """
        Raise if options conflict.

        Raises:
            ValueError: Naming the options that do not fit together.
        """
        if self.spool is not None and self.sync_mode:
            raise ValueError("spool= does not combine with sync_mode=True (nothing is queued)")
        if self.spool is not None and self.spool_max_bytes < self.max_message_bytes:
            raise ValueError(
                f"spool_max_bytes ({self.spool_max_bytes}) must be >= max_message_bytes "
                f"({self.max_message_bytes})"
            )


DEFAULTS: Final = ClientConfig()
"""The defaults, as one value (``write_key`` empty: it comes from the environment)."""


def _spool_path(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"spool must be a path, got {type(value).__name__}")
    return os.fsdecode(value)


def _context(value: object) -> dict[str, Any]:
    if value is not None and not isinstance(value, Mapping):
        raise TypeError(f"default_context must be a mapping, got {type(value).__name__}")
    return dict(value or {})


def _retry(policy: object, max_retries: object) -> RetryPolicy:
    if policy is not None and not isinstance(policy, RetryPolicy):
        raise TypeError(f"retry must be a RetryPolicy, got {type(policy).__name__}")
    if max_retries is None:
        return policy or RetryPolicy()
    if policy is not None:
        raise TypeError("pass retry= or max_retries=, not both")
    if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
        raise ValueError(f"max_retries must be an int >= 0, got {max_retries!r}")
    return RetryPolicy(max_attempts=max_retries + 1)
