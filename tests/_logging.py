"""
What the logging-handler tests share (a plugin that tests/conftest.py loads).

``app_logger`` is a logger of the test's own; :class:`ListHandler` keeps what it is given;
``CREATED``/``CREATED_ISO`` are a record time and its wire form.
"""

from __future__ import annotations

import logging
import uuid
from typing import TYPE_CHECKING, Final

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator

CREATED: Final = 1_700_000_000.123  # 2023-11-14T22:13:20.123 UTC
"""A ``record.created`` value."""
CREATED_ISO: Final = "2023-11-14T22:13:20.123+00:00"
"""The message timestamp of a record created at ``CREATED``."""


@pytest.fixture
def app_logger(request: pytest.FixtureRequest) -> Iterator[logging.Logger]:
    """A logger of its own at DEBUG, not propagating; its handlers are closed afterwards."""
    logger = logging.getLogger(f"tests.{request.module.__name__}.{uuid.uuid4().hex}")
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield logger
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()


class ListHandler(logging.Handler):
    """Keeps every record it is given; with *formats*, formats it first."""

    def __init__(self, *, formats: bool = False) -> None:
        super().__init__()
        self.formats = formats
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        """Keep *record* (formatted first as an ordinary handler would: message, asctime)."""
        if self.formats:
            self.format(record)
        self.records.append(record)
