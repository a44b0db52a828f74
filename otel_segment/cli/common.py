"""What the commands share: the retry policy, the local-sink write key, error wording."""

from __future__ import annotations

import ipaddress
import re
from typing import TYPE_CHECKING, Final
from urllib.parse import urlsplit

from otel_segment.pipeline.retry import RetryPolicy

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["CLI_RETRY", "LOCAL_WRITE_KEY", "as_flags", "write_key_for"]

CLI_RETRY: Final = RetryPolicy(max_attempts=4, max_elapsed=20.0)
"""Retries suited to a person waiting at a terminal: a few quick tries, then an answer."""

LOCAL_WRITE_KEY: Final = "local"
"""The write key sent to a loopback host when none is given: a local sink takes any key."""

_OPTION_NAMES: Final = ("write_key", "host", "timeout", "gzip")


def write_key_for(host: str | None, write_key: str | None) -> str | None:
    """
    *write_key*, or :data:`LOCAL_WRITE_KEY` when none is given and *host* is this machine.

    Segment's API needs a real key; a local sink (``otel-segment sink``) accepts any, so
    a command aimed at one does not ask for a key.
    """
    if write_key or not host:
        return write_key
    name = urlsplit(host).hostname or ""
    if name == "localhost":
        return LOCAL_WRITE_KEY
    try:
        loopback = ipaddress.ip_address(name).is_loopback
    except ValueError:
        return write_key
    return LOCAL_WRITE_KEY if loopback else write_key


def as_flags(text: str, names: Iterable[str] = ()) -> str:
    """
    *text* (an error of the Python API) naming command-line flags instead of arguments.

    ``write_key=`` becomes ``--write-key``, ``user_id`` becomes ``--user-id``, for the
    client's options and the given field *names*.
    """
    known = sorted({*_OPTION_NAMES, *names}, key=len, reverse=True)
    pattern = re.compile(rf"\b({'|'.join(map(re.escape, known))})\b=?")
    return pattern.sub(lambda match: "--" + match.group(1).replace("_", "-"), text)
