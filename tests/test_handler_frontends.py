"""SegmentHandler behind dictConfig, structlog and loguru, and the logging examples."""

from __future__ import annotations

import logging
import logging.config
import subprocess
import sys
import uuid
import weakref
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import structlog
from _helpers import delivered
from loguru import logger as loguru_logger

from otel_segment import Client, SegmentHandler, annotate

if TYPE_CHECKING:
    from collections.abc import Iterator

    from _server import ScriptedServer

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
EXAMPLE_TIMEOUT_SECONDS = 30
EXAMPLE_OUTPUT: dict[str, list[str]] = {
    "logging_dictconfig.py": [
        'track     user=u1 anon=-  "Signed Up" {plan=pro}',
        "identify  user=u1 anon=-  {email=ada@example.com}",
        'page      user=u1 anon=-  Shop "Pricing"',
        'track     user=u1 anon=-  "Order Completed" {currency=EUR, total=42.5}',
    ],
    "logging_structlog.py": [
        'track     user=u1 anon=-  "Signed Up" {plan=pro}',
        'track     user=u1 anon=-  "Order Completed" {plan=pro, total=42.5, request_id=r-7}',
        "identify  user=u1 anon=-  {plan=pro, request_id=r-7, seats=5}",
    ],
    "logging_loguru.py": [
        'track     user=u1 anon=-  "Signed Up" {plan=pro}',
        'track     user=u1 anon=-  "Order Completed" {total=42.5}',
        "group     user=u1 anon=-  group=acme {employees=42}",
    ],
}
"""The lines each example prints first: the messages its sink received."""


class TestDictConfig:
    """The class form of dictConfig builds a handler that owns its client."""

    def test_class_form_with_client_arguments(self, segment_server: ScriptedServer) -> None:
        """Client keys configure the owned client; logging.shutdown closes both."""
        name = f"tests.dictconfig.{uuid.uuid4().hex}"
        logging.config.dictConfig(
            {
                "version": 1,
                "disable_existing_loggers": False,
                "handlers": {
                    "segment": {
                        "class": "otel_segment.SegmentHandler",
                        "level": "INFO",
                        "write_key": "test-key",
                        "host": segment_server.url,
                        "flush_at": 10,
                    }
                },
                "loggers": {name: {"level": "INFO", "handlers": ["segment"], "propagate": False}},
            }
        )
        logger = logging.getLogger(name)
        [handler] = [h for h in logger.handlers if isinstance(h, SegmentHandler)]
        try:
            logger.debug("below the level", extra=annotate(user_id="u1"))
            for step in range(10):
                logger.info("Step Done", extra=annotate(user_id="u1", step=step))
            assert segment_server.wait_for_messages(10, 5)  # flush_at=10: no flush() needed
        finally:
            logger.removeHandler(handler)
            logging.shutdown([weakref.ref(handler)])

        client = handler.client
        assert client is not None
        assert (True, 10, logging.INFO) == (client.closed, client.config.flush_at, handler.level)
        assert list(range(10)) == [m["properties"]["step"] for m in segment_server.messages]


class TestStructlog:
    """structlog through stdlib: its key-value pairs arrive as flat extras."""

    def test_render_to_log_kwargs(
        self, app_logger: logging.Logger, client: Client, segment_server: ScriptedServer
    ) -> None:
        """segment= marks the event; bound and call values become properties or traits."""
        app_logger.addHandler(SegmentHandler(client=client))
        log = structlog.wrap_logger(
            app_logger,
            processors=[structlog.stdlib.render_to_log_kwargs],
            wrapper_class=structlog.stdlib.BoundLogger,
        ).bind(plan="pro")

        log.info("cache warmed", entries=3)
        log.info("Signed Up", total=3, **annotate(user_id="u1"))
        log.info("u1 upgraded", **annotate("identify", user_id="u1", seats=5))

        track, identify = delivered(client, segment_server, 2)
        assert ("Signed Up", {"plan": "pro", "total": 3}) == (track["event"], track["properties"])
        assert {"plan": "pro", "seats": 5} == identify["traits"]
        assert 2 == client.stats()["enqueued"]


class TestLoguru:
    """loguru with the handler as a sink: extras nested in record.extra."""

    @pytest.fixture
    def loguru_handler(self, client: Client) -> Iterator[SegmentHandler]:
        """A SegmentHandler added to loguru with format="{message}", removed afterwards."""
        handler = SegmentHandler(client=client)
        sink_id = loguru_logger.add(handler, format="{message}", level="DEBUG")
        yield handler
        loguru_logger.remove(sink_id)

    @pytest.mark.usefixtures("loguru_handler")
    def test_extras_in_record_extra(self, client: Client, segment_server: ScriptedServer) -> None:
        """Segment in record.extra marks the record; the other extras become properties."""
        loguru_logger.info("cache warmed")
        loguru_logger.bind(**annotate(user_id="u1"), plan="pro", _hidden=1).info("Signed Up")
        loguru_logger.info("Order {n}", n=2, **annotate(user_id="u1"))

        signed_up, order = delivered(client, segment_server, 2)
        assert ("Signed Up", {"plan": "pro"}) == (signed_up["event"], signed_up["properties"])
        assert ("Order 2", {"n": 2}) == (order["event"], order["properties"])
        assert 2 == client.stats()["enqueued"]

    def test_remove_closes_but_keeps_the_client(self, client: Client) -> None:
        """Removing the sink closes the handler; a client it was given stays open."""
        handler = SegmentHandler(client=client)
        loguru_logger.remove(loguru_logger.add(handler, format="{message}"))
        late = logging.makeLogRecord(
            {"name": "app", "msg": "late", "extra": annotate(user_id="u1")}
        )

        assert (False, False) == (handler.handle(late), client.closed)


class TestExamples:
    """The logging examples run against their own local sink."""

    def test_every_logging_example_is_run(self) -> None:
        """Each examples/logging_*.py has its expected output below."""
        assert sorted(EXAMPLE_OUTPUT) == sorted(p.name for p in EXAMPLES.glob("logging_*.py"))

    @pytest.mark.parametrize("script", sorted(EXAMPLE_OUTPUT))
    def test_runs(self, script: str) -> None:
        """The script exits 0 and prints the messages the sink received."""
        result = subprocess.run(
            [sys.executable, str(EXAMPLES / script)],
            capture_output=True,
            text=True,
            timeout=EXAMPLE_TIMEOUT_SECONDS,
            check=False,
        )

        assert 0 == result.returncode, result.stderr
        expected = EXAMPLE_OUTPUT[script]
        lines = result.stdout.splitlines()
        assert expected == lines[: len(expected)]
        assert f"'delivered': {len(expected)}," in lines[-1]
