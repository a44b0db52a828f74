"""
Testing your analytics: assert that code sent the right events, without a network.

Run: ``python examples/testing_analytics.py`` (it runs pytest on itself), or
``pytest examples/testing_analytics.py``. ``segment_events`` is the fixture otel_segment
registers with pytest; ``capture()`` does the same in any test runner.
"""

from __future__ import annotations

import subprocess
import sys
from typing import TYPE_CHECKING

import otel_segment
from otel_segment.testing import capture

if TYPE_CHECKING:
    from collections.abc import Callable

    from otel_segment.testing import Events

analytics = otel_segment.Client("test-key", flush_interval=60)


@otel_segment.tracked("Report Generated", user_id="user_id", properties=["kind"], client=analytics)
def generate_report(user_id: str, kind: str) -> str:
    """The code under test: a decorated function..."""
    return f"{kind} report for {user_id}"


def checkout(user_id: str, total: float) -> None:
    """...and a direct call."""
    analytics.track(user_id, "Order Completed", {"total": total, "currency": "EUR"})


def test_checkout_with_the_fixture(segment_events: Events) -> None:
    """The fixture captures every client's messages for the test."""
    checkout("u1", 42.5)

    segment_events.assert_tracked("Order Completed", user_id="u1", properties={"total": 42.5})


def test_decorated_function_with_capture() -> None:
    """capture() works in any test, with any runner."""
    with capture() as events:
        generate_report("u2", "quarterly")

    message = events.assert_tracked("Report Generated", properties={"kind": "quarterly"})
    assert message["userId"] == "u2"  # noqa: S101 - a test
    assert [m["event"] for m in events.tracks] == ["Report Generated"]  # noqa: S101


def test_a_failing_assertion_says_what_was_sent() -> None:
    """When nothing matches, the failure lists what was tracked instead."""
    with capture() as events:
        checkout("u1", 10.0)

    failure = failure_of(
        lambda: events.assert_tracked("Order Completed", properties={"total": 99.0})
    )
    assert "tracked instead" in failure  # noqa: S101


def failure_of(check: Callable[[], object]) -> str:
    """The message of the AssertionError *check* raises."""
    try:
        check()
    except AssertionError as failure:
        return str(failure)
    raise AssertionError("the check passed")


if __name__ == "__main__":
    # In a fresh process: pytest loads its plugins (segment_events) before otel_segment.
    command = [sys.executable, "-m", "pytest", __file__, "-q", "-p", "no:randomly"]
    sys.exit(subprocess.run(command, check=False).returncode)  # noqa: S603 - our own file
