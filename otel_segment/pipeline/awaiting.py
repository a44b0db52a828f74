"""
The client's asyncio face: ``aflush``, ``ashutdown`` and ``async with``.

Each awaits the blocking call on a thread of the loop's default executor.
:class:`Awaiting` is mixed into :class:`~otel_segment.Client`; the six calls need no
async form, since they never wait.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Self

if TYPE_CHECKING:
    from types import TracebackType

__all__ = ["Awaiting"]


class Awaiting:
    """:meth:`aflush`, :meth:`ashutdown`, ``async with``: never blocking the event loop."""

    __slots__ = ()

    if TYPE_CHECKING:

        def flush(self, timeout: float | None = None) -> bool: ...  # noqa: D102

        def shutdown(self, timeout: float | None = None) -> bool: ...  # noqa: D102

    async def aflush(self, timeout: float | None = None) -> bool:  # noqa: ASYNC109 - the promised name
        """
        :meth:`flush`, awaited: the event loop runs on while the queue drains.

        The wait happens on a thread of the loop's default executor; cancelling the
        awaiting task stops the wait, not the delivery.

        .. versionadded:: 0.2.0
        """
        return await asyncio.get_running_loop().run_in_executor(None, self.flush, timeout)

    async def ashutdown(self, timeout: float | None = None) -> bool:  # noqa: ASYNC109 - as aflush
        """
        :meth:`shutdown`, awaited without blocking the event loop (as :meth:`aflush`).

        .. versionadded:: 0.2.0
        """
        return await asyncio.get_running_loop().run_in_executor(None, self.shutdown, timeout)

    async def __aenter__(self) -> Self:
        """Use the client in an ``async with`` block; it shuts down on exit."""
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Shut down (as :meth:`ashutdown`), delivering what is queued."""
        await self.ashutdown()
