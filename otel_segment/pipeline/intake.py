"""
Whole requests, all or nothing: what a receiver of many messages at once needs (the gateway).

:class:`RequestIntake` is mixed into :class:`~otel_segment.Client`: :meth:`~RequestIntake.encode`
checks and encodes each message of a request without queueing it, and
:meth:`~RequestIntake.enqueue_all` queues the request's messages together or refuses them
together, so a sender told "try later" has lost nothing and sent nothing twice.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from otel_segment.errors import ClientClosedError, MessageTooLargeError
from otel_segment.pipeline import capture as _capture
from otel_segment.pipeline import messages
from otel_segment.pipeline.calls import BUILDERS
from otel_segment.pipeline.encoding import dumps

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from otel_segment.pipeline.batching import BatchProcessor
    from otel_segment.pipeline.config import ClientConfig

__all__ = ["RequestIntake"]


class RequestIntake:
    """:meth:`encode`, :meth:`enqueue_all` and :meth:`wait_durable`, for the gateway."""

    __slots__ = ()

    if TYPE_CHECKING:
        config: ClientConfig
        send: bool
        _closed: bool
        _processor: BatchProcessor
        _base_context: Mapping[str, Any]
        _hooks: Callable[[messages.Message, bool], tuple[messages.Message, bytes | None]] | None

    def encode(self, type: str, **fields: Any) -> bytes | None:
        """
        Build, check and encode a message as :meth:`message` would, without queueing it.

        For :meth:`enqueue_all`. The client's hooks apply (super properties,
        ``before_send``, the tracking plan, as for a source: never raising a plan
        violation). Ids of the active span are not added: such a source carries its own
        in ``context.trace``. An invalid or oversize message is counted in
        ``stats()["rejected"]``.

        Returns:
            The encoded message, or ``None`` when a hook dropped it (counted there).

        Raises:
            TypeError: A field has the wrong type.
            ValueError: *type* is unknown or a field is invalid;
                :class:`~otel_segment.MessageTooLargeError` over *max_message_bytes*.
            ClientClosedError: The client was shut down.
        """
        builder = BUILDERS.get(type)
        if builder is None:
            self._processor.reporter.count("rejected")
            raise ValueError(
                f"type must be one of {', '.join(messages.MESSAGE_TYPES)}, got {type!r}"
            )
        if self._closed:
            raise ClientClosedError("this client was shut down; create a new one")
        hooks = self._hooks
        try:
            msg = builder(self._base_context, **fields)
            data = dumps(msg) if hooks is None else None
        except (TypeError, ValueError):
            self._processor.reporter.count("rejected")
            raise
        except Exception as exc:  # as in _send: a value raised where no field check caught it
            self._processor.reporter.count("rejected")
            raise messages.unreadable(exc) from exc
        if hooks is not None:
            msg, data = hooks(msg, False)  # noqa: FBT003 - the runner takes it positionally
            if data is None:
                return None
        if data is not None and len(data) > self.config.max_message_bytes:
            self._processor.reporter.count("rejected")
            raise MessageTooLargeError(
                f"{type} message is {len(data)} bytes encoded; "
                f"max_message_bytes is {self.config.max_message_bytes}"
            )
        return data

    def enqueue_all(self, encoded: Sequence[bytes]) -> bool:
        """
        Queue every message of *encoded* (from :meth:`encode`), or none of them.

        Returns:
            ``False`` when the queue lacks room for all of them: nothing was queued and
            nothing is counted as dropped; the caller still holds them.

        Raises:
            ClientClosedError: The client was shut down.
        """
        if self._closed:
            raise ClientClosedError("this client was shut down; create a new one")
        if _capture.active:  # testing.capture(): recorded; sent only if it says so
            encoded = [data for data in encoded if _capture.record(data)]
        return True if not self.send or not encoded else self._processor.enqueue_all(encoded)

    def wait_durable(self, timeout: float | None = None) -> bool:
        """
        Block until every message queued so far is committed to the spool.

        Returns:
            Whether that happened within *timeout* seconds; ``True`` at once without a spool.
        """
        return self._processor.backlog.wait_durable(timeout)
