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
from typing import TYPE_CHECKING, Any, Final, Literal

from otel_segment.pipeline import options
from otel_segment.pipeline.encoding import BatchEnvelope
from otel_segment.pipeline.oauth import OAuthSettings, oauth_settings
from otel_segment.pipeline.retry import RetryPolicy
from otel_segment.pipeline.spool import DEFAULT_SPOOL_MAX_BYTES

if TYPE_CHECKING:
    import logging
    from collections.abc import Callable

    from otel_segment.pipeline.reporting import ErrorCallback
    from otel_segment.plans import TrackingPlan

__all__ = ["DEFAULTS", "MAX_SEGMENT_BATCH_BYTES", "MAX_SEGMENT_MESSAGE_BYTES", "ClientConfig"]

MAX_SEGMENT_BATCH_BYTES: Final = 500 * 1024
"""Segment's limit on one request body."""

MAX_SEGMENT_MESSAGE_BYTES: Final = 32 * 1024
"""Segment's limit on one message."""

OnViolation = Literal["report", "drop", "raise"]
"""What a client does with a message that breaks its tracking plan."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ClientConfig:
    """
    Every option of a :class:`~otel_segment.Client`, validated (see its docstring).

    The field defaults are the library's defaults; ``write_key`` and ``host`` are
    resolved from the environment when not given.
    """

    write_key: str = dataclasses.field(default="", repr=False)
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
    log_handler: logging.Handler | None = None
    oauth: OAuthSettings | None = None
    # -- hooks on every message (pipeline/hooks.py) --
    before_send: Callable[[dict[str, Any]], dict[str, Any] | None] | None = None
    super_properties: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    plan: TrackingPlan | None = None
    on_violation: OnViolation = "report"
    identity_from_baggage: bool = False

    @classmethod
    def resolve(cls, **given: Any) -> ClientConfig:
        """
        Validate the constructor's keyword arguments into a configuration.

        segment-analytics-python's names are mapped here: ``upload_size`` and
        ``upload_interval`` to ``flush_at`` and ``flush_interval``, ``thread`` to
        ``max_in_flight``, ``max_retries``, ``max_total_backoff_duration`` and
        ``max_rate_limit_duration`` to the retry policy, ``oauth_*`` to :attr:`oauth`.

        Raises:
            TypeError: An option has the wrong type.
            ValueError: An option is out of range, options conflict, or no write key is
                given or set.
        """
        flush_at = options.alias(
            "flush_at", given["flush_at"], 100, "upload_size", given["upload_size"]
        )
        flush_interval = options.alias(
            "flush_interval",
            given["flush_interval"],
            0.5,
            "upload_interval",
            given["upload_interval"],
        )
        max_in_flight = options.alias(
            "max_in_flight", given["max_in_flight"], 2, "thread", given["thread"]
        )
        send = options.flag("send", given["send"])
        write_key = options.write_key(given["write_key"], required=send)
        max_batch_bytes = options.positive_int("max_batch_bytes", given["max_batch_bytes"])
        config = cls(
            write_key=write_key,
            host=options.host(given["host"]),
            flush_at=options.positive_int("flush_at", flush_at),
            flush_interval=options.seconds("flush_interval", flush_interval),
            max_queue_size=options.positive_int("max_queue_size", given["max_queue_size"]),
            max_batch_bytes=max_batch_bytes,
            max_message_bytes=_max_message_bytes(
                given["max_message_bytes"], max_batch_bytes, write_key
            ),
            retry=_retry(given),
            default_context=_context(given["default_context"]),
            gzip=options.flag("gzip", given["gzip"]),
            timeout=options.seconds("timeout", given["timeout"]),
            send=send,
            sync_mode=options.flag("sync_mode", given["sync_mode"]),
            on_error=options.callback(given["on_error"]),
            debug=options.flag("debug", given["debug"]),
            proxies=options.proxies(given["proxies"]),
            verify=options.verify(given["verify"]),
            cert=options.cert(given["cert"]),
            spool=_spool_path(given["spool"]),
            spool_max_bytes=options.positive_int("spool_max_bytes", given["spool_max_bytes"]),
            max_in_flight=options.positive_int(
                "thread" if given["thread"] is not None else "max_in_flight", max_in_flight
            ),
            exit_timeout=options.seconds("exit_timeout", given["exit_timeout"], allow_zero=True),
            identity_from_baggage=options.flag(
                "identity_from_baggage", given["identity_from_baggage"]
            ),
            log_handler=options.log_handler(given["log_handler"]),
            oauth=oauth_settings(
                given["oauth_client_id"],
                given["oauth_client_key"],
                given["oauth_key_id"],
                given["oauth_auth_server"],
                given["oauth_scope"],
            ),
            **_hooks(given),
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


def _hooks(given: Mapping[str, Any]) -> dict[str, Any]:
    """``before_send``, ``super_properties``, ``plan`` and ``on_violation``, checked."""
    before_send = given.get("before_send")
    if before_send is not None and not callable(before_send):
        raise TypeError(f"before_send must be callable, got {type(before_send).__name__}")
    properties = given.get("super_properties")
    if properties is not None and not isinstance(properties, Mapping):
        raise TypeError(f"super_properties must be a mapping, got {type(properties).__name__}")
    plan = given.get("plan")
    if plan is not None:
        from otel_segment.plans import TrackingPlan  # noqa: PLC0415 - only when a plan is given

        if not isinstance(plan, TrackingPlan):
            raise TypeError(f"plan must be a TrackingPlan, got {type(plan).__name__}")
    on_violation = given.get("on_violation", "report")
    if on_violation not in {"report", "drop", "raise"}:
        raise ValueError(f"on_violation must be 'report', 'drop' or 'raise', got {on_violation!r}")
    return {
        "before_send": before_send,
        "super_properties": dict(properties or {}),
        "plan": plan,
        "on_violation": on_violation,
    }


def _max_message_bytes(value: object, max_batch_bytes: int, write_key: str) -> int:
    """The option given, else Segment's 32 KiB, or less where *max_batch_bytes* is smaller."""
    if value is not None:
        return options.positive_int("max_message_bytes", value)
    room = max_batch_bytes - BatchEnvelope(write_key).overhead
    if room < 1:
        raise ValueError(f"max_batch_bytes ({max_batch_bytes}) leaves no room for a message")
    return min(MAX_SEGMENT_MESSAGE_BYTES, room)


# segment-analytics-python's retry options: name -> the RetryPolicy field it sets
_RETRY_ALIASES: Final = {
    "max_retries": "max_attempts",  # plus one: the first attempt is no retry
    "max_total_backoff_duration": "max_elapsed",
    "max_rate_limit_duration": "max_retry_after",
}


def _retry(given: Mapping[str, Any]) -> RetryPolicy:
    policy, max_retries = given["retry"], given["max_retries"]
    if policy is not None and not isinstance(policy, RetryPolicy):
        raise TypeError(f"retry must be a RetryPolicy, got {type(policy).__name__}")
    changes: dict[str, Any] = {}
    if max_retries is not None:
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise ValueError(f"max_retries must be an int >= 0, got {max_retries!r}")
        changes["max_retries"] = max_retries + 1
    for name in ("max_total_backoff_duration", "max_rate_limit_duration"):
        if given[name] is not None:
            changes[name] = options.seconds(name, given[name])
    if not changes:
        return policy or RetryPolicy()
    if policy is not None:
        raise TypeError(f"pass retry= or {'=, '.join(changes)}=, not both")
    return RetryPolicy(**{_RETRY_ALIASES[name]: value for name, value in changes.items()})
