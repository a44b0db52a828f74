"""What the sink received: one request, and the Segment messages its body carries."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["BATCH_PATH", "NO_RESPONSE", "ROUTES", "ReceivedRequest", "messages_in"]

NO_RESPONSE: Final = 0
"""The :attr:`ReceivedRequest.status` of a request whose connection was reset unanswered."""

BATCH_PATH: Final = "/v1/batch"
"""The batch endpoint."""

ROUTES: Final = frozenset(
    {BATCH_PATH, *(f"/v1/{t}" for t in ("track", "identify", "page", "screen", "group", "alias"))}
)
"""Every path the sink answers: the batch endpoint and the single-call ones."""


@dataclass(frozen=True, slots=True)
class ReceivedRequest:
    """
    One HTTP request as the sink received and answered it.

    Attributes:
        method: HTTP method, e.g. ``"POST"``.
        path: Request target as sent, e.g. ``"/v1/batch"``.
        headers: Header values by lower-cased name; prefer :meth:`header`.
        raw_body: Body bytes as sent on the wire.
        body: Body with ``Content-Encoding: gzip`` undone (cut after the batch limit).
        json: Parsed body, or ``None`` if it was not valid JSON.
        status: HTTP status the sink answered, or :data:`NO_RESPONSE`.
        received_at: ``time.monotonic()`` once the body had been read.
    """

    method: str
    path: str
    headers: Mapping[str, str]
    raw_body: bytes
    body: bytes
    json: Any
    status: int
    received_at: float

    def header(self, name: str) -> str | None:
        """
        Look a header up by name, ignoring case.

        Args:
            name: Header name, e.g. ``"Content-Encoding"``.

        Returns:
            The header's value, or ``None`` if the request did not carry it.
        """
        return self.headers.get(name.lower())

    @property
    def messages(self) -> list[dict[str, Any]]:
        """The Segment messages the body carries (a single call counts as one), else ``[]``."""
        return messages_in(urlsplit(self.path).path, self.json) or []


def messages_in(route: str, parsed: Any) -> list[dict[str, Any]] | None:
    """The messages a parsed body carries on *route*, or ``None`` if it has the wrong shape."""
    if not isinstance(parsed, dict) or route not in ROUTES:
        return None
    if route == BATCH_PATH:
        batch = parsed.get("batch")
        ok = isinstance(batch, list) and all(isinstance(m, dict) for m in batch)
        return batch if ok else None
    return [parsed if "type" in parsed else {"type": route.rsplit("/", 1)[1], **parsed}]
