"""
The six Segment Spec calls, with segment-analytics-python 2.x's signatures.

:class:`SegmentCalls` is the part of :class:`~otel_segment.Client` users call most: each
method gathers its fields in that library's positional order and hands them to the
client's one message path (``Client._send``), which builds, checks, encodes and queues.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final

from otel_segment.pipeline import messages

if TYPE_CHECKING:
    import datetime as dt

__all__ = ["BUILDERS", "Id", "JSONMapping", "Result", "SegmentCalls"]

Id = str | int | float | None
JSONMapping = Mapping[str, Any] | None
Result = tuple[bool, messages.Message]

BUILDERS: Final[dict[str, Callable[..., messages.Message]]] = {
    "track": messages.track,
    "identify": messages.identify,
    "page": messages.page,
    "screen": messages.screen,
    "group": messages.group,
    "alias": messages.alias,
}
"""The message builder of each Segment call, by its ``type``."""


class SegmentCalls:
    """The six calls and :meth:`message`; mixed into :class:`~otel_segment.Client`."""

    __slots__ = ()

    if TYPE_CHECKING:

        def _send(
            self,
            builder: Callable[..., messages.Message],
            fields: tuple[Any, ...],
            *,
            raising: bool = True,
        ) -> Result: ...

    def track(
        self,
        user_id: Id = None,
        event: str | None = None,
        properties: JSONMapping = None,
        context: JSONMapping = None,
        timestamp: dt.datetime | float | None = None,
        anonymous_id: Id = None,
        integrations: JSONMapping = None,
        message_id: str | None = None,
    ) -> Result:
        """
        Record that a user did *event*.

        Returns:
            ``(accepted, message)``: whether the message was queued (or, in
            ``sync_mode``, delivered), and the message as it goes on the wire
            (values JSON cannot hold appear as given; the wire has them converted).

        Raises:
            TypeError: A field has the wrong type.
            ValueError: *event* is empty, or neither *user_id* nor *anonymous_id* is given.
            ClientClosedError: The client was shut down.
        """
        return self._send(
            messages.track,
            (
                user_id,
                event,
                properties,
                context,
                timestamp,
                anonymous_id,
                integrations,
                message_id,
            ),
        )

    def identify(
        self,
        user_id: Id = None,
        traits: JSONMapping = None,
        context: JSONMapping = None,
        timestamp: dt.datetime | float | None = None,
        anonymous_id: Id = None,
        integrations: JSONMapping = None,
        message_id: str | None = None,
    ) -> Result:
        """Tie a user to their *traits*; returns ``(accepted, message)`` like :meth:`track`."""
        return self._send(
            messages.identify,
            (user_id, traits, context, timestamp, anonymous_id, integrations, message_id),
        )

    def page(
        self,
        user_id: Id = None,
        category: str | None = None,
        name: str | None = None,
        properties: JSONMapping = None,
        context: JSONMapping = None,
        timestamp: dt.datetime | float | None = None,
        anonymous_id: Id = None,
        integrations: JSONMapping = None,
        message_id: str | None = None,
    ) -> Result:
        """Record a web page view; returns ``(accepted, message)`` like :meth:`track`."""
        return self._send(
            messages.page,
            (
                user_id,
                category,
                name,
                properties,
                context,
                timestamp,
                anonymous_id,
                integrations,
                message_id,
            ),
        )

    def screen(
        self,
        user_id: Id = None,
        category: str | None = None,
        name: str | None = None,
        properties: JSONMapping = None,
        context: JSONMapping = None,
        timestamp: dt.datetime | float | None = None,
        anonymous_id: Id = None,
        integrations: JSONMapping = None,
        message_id: str | None = None,
    ) -> Result:
        """Record an app screen view; returns ``(accepted, message)`` like :meth:`track`."""
        return self._send(
            messages.screen,
            (
                user_id,
                category,
                name,
                properties,
                context,
                timestamp,
                anonymous_id,
                integrations,
                message_id,
            ),
        )

    def group(
        self,
        user_id: Id = None,
        group_id: Id = None,
        traits: JSONMapping = None,
        context: JSONMapping = None,
        timestamp: dt.datetime | float | None = None,
        anonymous_id: Id = None,
        integrations: JSONMapping = None,
        message_id: str | None = None,
    ) -> Result:
        """Put a user in *group_id*; returns ``(accepted, message)`` like :meth:`track`."""
        return self._send(
            messages.group,
            (user_id, group_id, traits, context, timestamp, anonymous_id, integrations, message_id),
        )

    def alias(
        self,
        previous_id: Id = None,
        user_id: Id = None,
        context: JSONMapping = None,
        timestamp: dt.datetime | float | None = None,
        integrations: JSONMapping = None,
        message_id: str | None = None,
    ) -> Result:
        """Merge *previous_id* into *user_id*; returns ``(accepted, message)``."""
        return self._send(
            messages.alias,
            (previous_id, user_id, context, timestamp, integrations, message_id),
        )

    def message(self, type: str, **fields: Any) -> Result:
        """
        Send a message of *type* (``"track"``, ``"identify"`` ...) from keyword *fields*.

        The entry point for sources that decide the type at run time (log records,
        spans); the fields are those of the matching call. A message breaking the
        tracking plan is never raised from here, whatever ``on_violation`` says: it is
        dropped (and reported) instead.

        Raises:
            ValueError: *type* is not one of the six Segment calls.
        """
        builder = BUILDERS.get(type)
        if builder is None:
            raise ValueError(
                f"type must be one of {', '.join(messages.MESSAGE_TYPES)}, got {type!r}"
            )
        return self._send(functools.partial(builder, **fields), (), raising=False)
