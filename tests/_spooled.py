"""Fixtures of the spool tests: the test's spool path and clients that use it (a plugin)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from _spool_child import FAST_RETRY

from otel_segment import Client

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path


@pytest.fixture
def spool_path(tmp_path: Path) -> Path:
    """Where the test's spool lives."""
    return tmp_path / "spool.db"


@pytest.fixture
def spooled(spool_path: Path, client_defaults: dict[str, Any]) -> Iterator[Callable[..., Client]]:
    """
    Builds clients with the test's spool and fast retries; shuts them all down.

    A client of ``spooled(host, **options)`` gets ``flush_at=50``, the child's fast retries,
    then ``client_defaults``, then *options*.
    """
    made: list[Client] = []

    def make(host: str, **options: Any) -> Client:
        settings: dict[str, Any] = {
            "flush_at": 50,
            "retry": FAST_RETRY,
            **client_defaults,
            **options,
        }
        client = Client("test-key", host=host, spool=spool_path, **settings)
        made.append(client)
        return client

    yield make
    for client in made:
        client.shutdown(5)
