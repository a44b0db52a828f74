"""
Assert in unit tests that code sent the right analytics: :func:`capture` and a pytest plugin.

::

    from otel_segment.testing import capture

    with capture() as events:          # every client of the process; nothing is sent
        checkout(user)
    events.assert_tracked("Order Completed", user_id="u1", properties={"total": 42.5})

With pytest, the ``segment_events`` fixture (registered through the ``pytest11`` entry
point) is such a capture, open for the test::

    def test_checkout(segment_events):
        checkout(user)
        segment_events.assert_tracked("Order Completed")

Captured messages are exactly what would go on the wire: after identity, super
properties, ``before_send`` and the tracking plan, with values converted to JSON. Every
source is captured (direct calls, logging, spans, decorators, snapshots), no socket is
opened, and nothing is sent unless ``capture(deliver=True)``.
"""

from __future__ import annotations

import contextlib
import json
from typing import TYPE_CHECKING, Any, Final

from otel_segment.pipeline import capture as _capture

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

__all__ = ["Events", "capture", "segment_events"]

_MISSING: Final = object()


class Events:
    """
    The messages a :func:`capture` has seen so far, in order, as on the wire.

    Each accessor returns a fresh list of the messages (dicts with camelCase keys:
    ``userId``, ``properties`` ...).

    .. versionadded:: 0.2.0
    """

    def __init__(self, recorder: _capture.Recorder) -> None:
        self._recorder = recorder

    def __repr__(self) -> str:
        """How many messages, of which types."""
        return f"<Events: {_summary(self.messages)}>"

    def __len__(self) -> int:
        """The number of messages captured."""
        return len(self._recorder.messages())

    @property
    def messages(self) -> list[dict[str, Any]]:
        """Every message captured."""
        return self._recorder.messages()

    @property
    def tracks(self) -> list[dict[str, Any]]:
        """The track messages."""
        return self.of_type("track")

    @property
    def identifies(self) -> list[dict[str, Any]]:
        """The identify messages."""
        return self.of_type("identify")

    def of_type(self, message_type: str) -> list[dict[str, Any]]:
        """The messages whose ``type`` is *message_type* (``"group"``, ``"page"`` ...)."""
        return [message for message in self.messages if message.get("type") == message_type]

    def clear(self) -> None:
        """Forget what was captured so far (the capture goes on)."""
        self._recorder.clear()

    def assert_tracked(
        self,
        event: str,
        *,
        user_id: object = _MISSING,
        anonymous_id: object = _MISSING,
        properties: Mapping[str, Any] | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """
        Assert that *event* was tracked with these fields; return the first such message.

        *properties* and *context* match a subset: the message may hold more keys
        (nested mappings are matched the same way). *user_id* / *anonymous_id* are
        compared as sent (ids are strings on the wire; ``None`` means absent).

        Raises:
            AssertionError: No message matches; the message lists what was tracked.
        """
        wanted: dict[str, Any] = {"event": event}
        if user_id is not _MISSING:
            wanted["userId"] = None if user_id is None else str(user_id)
        if anonymous_id is not _MISSING:
            wanted["anonymousId"] = None if anonymous_id is None else str(anonymous_id)
        if properties is not None:
            wanted["properties"] = dict(properties)
        if context is not None:
            wanted["context"] = dict(context)
        tracks = self.tracks
        for message in tracks:
            if _matches(message, wanted):
                return message
        raise AssertionError(_failure(wanted, tracks))


def _matches(actual: object, wanted: object) -> bool:
    """Whether *actual* holds *wanted*: mappings by subset, everything else by equality."""
    if isinstance(wanted, dict):
        return isinstance(actual, dict) and all(
            key in actual and _matches(actual[key], value) for key, value in wanted.items()
        )
    return bool(actual == wanted)


def _failure(wanted: dict[str, Any], tracks: list[dict[str, Any]]) -> str:
    expected = json.dumps(wanted, sort_keys=True, default=str)
    if not tracks:
        return f"no track was sent; expected {expected}"
    lines = [f"no track matches {expected}; tracked instead:"]
    keys = ("event", "userId", "anonymousId", "properties")
    lines.extend(
        "  " + json.dumps({key: message.get(key) for key in keys}, sort_keys=True, default=str)
        for message in tracks
    )
    return "\n".join(lines)


def _summary(messages: list[dict[str, Any]]) -> str:
    counts: dict[str, int] = {}
    for message in messages:
        kind = str(message.get("type"))
        counts[kind] = counts.get(kind, 0) + 1
    return ", ".join(f"{count} {kind}" for kind, count in counts.items()) or "none"


@contextlib.contextmanager
def capture(*, deliver: bool = False) -> Iterator[Events]:
    """
    Capture every message every client of the process sends, while the block runs.

    Args:
        deliver: Also send the messages as usual (default: they are not queued, so
            nothing reaches the network and ``stats()["enqueued"]`` does not move).

    Yields:
        The :class:`Events` seen; it keeps them after the block ends.

    .. versionadded:: 0.2.0
    """
    recorder = _capture.start(deliver=deliver)
    try:
        yield Events(recorder)
    finally:
        _capture.stop(recorder)


try:
    import pytest
except ImportError:  # pragma: no cover - the plugin only matters under pytest
    pass
else:

    @pytest.fixture
    def segment_events() -> Iterator[Events]:
        """A :func:`capture` open for the test: what every client sent, nothing delivered."""
        with capture() as events:
            yield events
