"""Tests for otel_segment.integrations.celery: a real worker, on the in-memory broker."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import pytest
from _helpers import delivered
from celery import Celery
from celery.contrib.testing.worker import start_worker

import otel_segment
from otel_segment.integrations.celery import HEADER, propagate_identity

if TYPE_CHECKING:
    from collections.abc import Iterator

    from _helpers import Clients
    from _server import ScriptedServer

TIMEOUT = 10


@pytest.fixture(scope="module")
def worker_app() -> Iterator[Celery]:
    """An app whose ``checkout`` task tracks an event with the ids it runs under; its worker."""
    app = Celery("shop", broker="memory://", backend="cache+memory://")
    app.conf.update(
        broker_connection_retry_on_startup=True,
        broker_transport_options={"polling_interval": 0.01},
        worker_hijack_root_logger=False,
    )
    propagate_identity(app)

    @app.task(name="checkout", shared=False)  # type: ignore[untyped-decorator]
    def checkout(total: float) -> dict[str, Any] | None:
        current = otel_segment.current_identity()
        if current is None:
            return None
        app.segment_client.track(
            user_id=current.user_id,
            event="Order Completed",
            properties={"total": total},
            context=dict(current.context),
            anonymous_id=current.anonymous_id,
        )
        return {
            "user_id": current.user_id,
            "anonymous_id": current.anonymous_id,
            "context": dict(current.context),
        }

    with start_worker(app, pool="solo", perform_ping_check=False, loglevel="WARNING"):
        yield app


@pytest.fixture
def celery_app(worker_app: Celery, clients: Clients) -> Celery:
    """The app, its task sending through a client of this test's server."""
    worker_app.segment_client = clients()
    return worker_app


class TestPropagateIdentity:
    """A task runs in the identity scope of the code that sent it."""

    def test_task_runs_in_the_senders_scope(
        self, celery_app: Celery, segment_server: ScriptedServer
    ) -> None:
        """Ids and context travel in a header; the task's event is about the same user."""
        context = {"ip": "203.0.113.9", "page": {"path": "/cart"}}
        with otel_segment.identity(user_id="u1", anonymous_id="anon-7", context=context):
            result = celery_app.tasks["checkout"].delay(42.5)
        expected = {"user_id": "u1", "anonymous_id": "anon-7", "context": context}
        assert expected == result.get(timeout=TIMEOUT, interval=0.01)

        [event] = delivered(celery_app.segment_client, segment_server, 1)
        assert ("u1", "anon-7", "203.0.113.9", {"total": 42.5}) == (
            event["userId"],
            event["anonymousId"],
            event["context"]["ip"],
            event["properties"],
        )

    def test_outside_a_scope(self, celery_app: Celery) -> None:
        """A task sent outside every scope runs outside every scope, as before."""
        assert celery_app.tasks["checkout"].delay(1.0).get(timeout=TIMEOUT, interval=0.01) is None
        assert otel_segment.current_identity() is None

    def test_scope_ends_with_the_task(self, celery_app: Celery) -> None:
        """The next task on the same worker thread does not inherit the last one's scope."""
        with otel_segment.identity(user_id="u1"):
            celery_app.tasks["checkout"].delay(1.0).get(timeout=TIMEOUT, interval=0.01)
        assert celery_app.tasks["checkout"].delay(2.0).get(timeout=TIMEOUT, interval=0.01) is None

    def test_malformed_header(self, celery_app: Celery, caplog: pytest.LogCaptureFixture) -> None:
        """A header that is not ours: the task runs without a scope, and a warning."""
        task = celery_app.tasks["checkout"]
        with caplog.at_level(logging.WARNING, logger="otel_segment"):
            result = task.apply_async((3.0,), headers={HEADER: ["not", "a", "dict"]})
            assert result.get(timeout=TIMEOUT, interval=0.01) is None
        assert f"malformed {HEADER} header" in caplog.text

    def test_wrong_app(self) -> None:
        """Anything but a Celery app: a TypeError."""
        with pytest.raises(TypeError, match=r"celery_app must be a celery\.Celery"):
            propagate_identity("shop")
