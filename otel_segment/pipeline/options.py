"""
Validation of the client's options.

Each function returns the value to use or raises a ``TypeError`` / ``ValueError`` naming
the option. Standard library only.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Mapping
from typing import Any, Final

__all__ = [
    "DEFAULT_HOST",
    "ENV_HOST",
    "ENV_WRITE_KEY",
    "alias",
    "callback",
    "cert",
    "flag",
    "host",
    "log_handler",
    "path",
    "positive_int",
    "proxies",
    "seconds",
    "verify",
    "write_key",
]

ENV_WRITE_KEY: Final = "SEGMENT_WRITE_KEY"
"""Environment variable read when no ``write_key`` is passed."""

ENV_HOST: Final = "SEGMENT_HOST"
"""Environment variable read when no ``host`` is passed."""

DEFAULT_HOST: Final = "https://api.segment.io"
"""Segment's HTTP Tracking API."""


def alias(name: str, value: Any, default: Any, alias: str, alias_value: Any) -> Any:
    """The value of option *name*, or of its segment-analytics-python *alias* (not both)."""
    if alias_value is None:
        return value
    if value != default:
        raise TypeError(f"pass {name}= or its alias {alias}=, not both")
    return alias_value


def write_key(value: object, *, required: bool) -> str:
    """The write key given, else ``$SEGMENT_WRITE_KEY``; required when sending."""
    if value is None:
        value = os.environ.get(ENV_WRITE_KEY)
    if value is None or value == "":
        if required:
            raise ValueError(f"write_key is required: pass write_key= or set ${ENV_WRITE_KEY}")
        return ""
    if not isinstance(value, str):
        raise TypeError(f"write_key must be a string, got {type(value).__name__}")
    return value


def host(value: object) -> str:
    """The API base URL given, else ``$SEGMENT_HOST``, else Segment's."""
    if value is None:
        value = os.environ.get(ENV_HOST) or DEFAULT_HOST
    if not isinstance(value, str):
        raise TypeError(f"host must be a string, got {type(value).__name__}")
    if not value.startswith(("http://", "https://")):
        raise ValueError(f"host must start with http:// or https://, got {value!r}")
    return value.rstrip("/")


def positive_int(name: str, value: object) -> int:
    """An int >= 1 (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return value


def seconds(name: str, value: object, *, allow_zero: bool = False) -> float:
    """A finite, non-negative number of seconds (zero only if *allow_zero*)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number of seconds, got {type(value).__name__}")
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        raise ValueError(f"{name} must be {'>= 0' if allow_zero else '> 0'}, got {value}")
    return float(value)


def flag(name: str, value: object) -> bool:
    """A ``bool`` option."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return value


def proxies(value: object) -> dict[str, str] | None:
    """A ``requests`` proxies mapping, or ``None``."""
    if value is not None and not isinstance(value, Mapping):
        raise TypeError(f"proxies must be a mapping of scheme to URL, got {type(value).__name__}")
    return None if value is None else dict(value)


def path(name: str, value: object) -> str:
    """A file path option, as a string."""
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"{name} must be a path, got {type(value).__name__}")
    path = os.fspath(value)
    if not isinstance(path, str) or not os.path.exists(path):  # noqa: PTH110 - str in, str out
        raise ValueError(f"{name}: no such file or directory: {path!r}")
    return path


def verify(value: object) -> bool | str:
    """TLS verification: ``True``, ``False`` or a CA bundle path."""
    if isinstance(value, bool):
        return value
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"verify must be True, False or a CA bundle path, got {value!r}")
    return path("verify", value)


def cert(value: object) -> str | tuple[str, str] | None:
    """A client certificate path or a ``(cert, key)`` pair, or ``None``."""
    if value is None:
        return None
    if isinstance(value, tuple) and len(value) == 2:  # noqa: PLR2004 - (cert, key)
        return path("cert", value[0]), path("cert", value[1])
    return path("cert", value)


def callback(value: object) -> Callable[..., object] | None:
    """A callable, or ``None`` for any falsy value (as segment-analytics-python)."""
    if not value:
        return None
    if not callable(value):
        raise TypeError(f"on_error must be callable, got {type(value).__name__}")
    return value


def log_handler(value: object) -> logging.Handler | None:
    """A ``logging.Handler`` for the ``otel_segment`` logger, or ``None``."""
    if value is not None and not isinstance(value, logging.Handler):
        raise TypeError(f"log_handler must be a logging.Handler, got {type(value).__name__}")
    return value
