"""
The wrapt wrappers of ``@tracked``, one per kind of function, each deciding when a call is over.

A plain function's call is over when it returns or raises; a coroutine's when it
returns; a generator's and an async generator's when the iteration ends (exhausted,
raising, closed early or garbage-collected). Each then hands the call to a finish
callback (:meth:`otel_segment.pipeline.tracking.Tracker.finish`).
"""

from __future__ import annotations

import contextvars
import inspect
from collections.abc import Callable
from time import perf_counter
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Coroutine, Generator

__all__ = ["Finisher", "Wrapper", "wrapper_for"]

Wrapper = Callable[[Callable[..., Any], Any, tuple[Any, ...], dict[str, Any]], Any]
"""wrapt's wrapper signature: ``(wrapped, instance, args, kwargs) -> result``."""


class Finisher(Protocol):
    """What a wrapper calls once a call is over (a :class:`~.tracking.Tracker`)."""

    def finish(
        self,
        instance: object,
        args: tuple[Any, ...],
        kwargs: Any,
        start: float,
        result: object,
        error: BaseException | None,
    ) -> None:
        """Send the event of one finished call; never raises."""


def wrapper_for(func: Callable[..., object], tracker: Finisher) -> Wrapper:
    """
    The wrapt wrapper calling *func* (as defined) and *tracker* when the call is over.

    One per kind: the event of a coroutine is sent when it returns, that of a generator
    or an async generator when its iteration ends.
    """
    if inspect.isasyncgenfunction(func):
        return _async_generator_wrapper(tracker)
    if inspect.iscoroutinefunction(func):
        return _coroutine_wrapper(tracker)
    if inspect.isgeneratorfunction(func):
        return _generator_wrapper(tracker)
    return _sync_wrapper(tracker)


def _sync_wrapper(tracker: Finisher) -> Wrapper:
    finish = tracker.finish

    def call(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        start = perf_counter()
        try:
            result = wrapped(*args, **kwargs)
        except BaseException as error:
            finish(instance, args, kwargs, start, None, error)
            raise
        finish(instance, args, kwargs, start, result, None)
        return result

    return call


def _coroutine_wrapper(tracker: Finisher) -> Wrapper:
    finish = tracker.finish

    async def run(
        coroutine: Coroutine[Any, Any, Any],
        instance: Any,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        start: float,
    ) -> Any:
        # The track call happens here, in the context of the task awaiting the call.
        try:
            result = await coroutine
        except BaseException as error:
            finish(instance, args, kwargs, start, None, error)
            raise
        finish(instance, args, kwargs, start, result, None)
        return result

    def call(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Coroutine[Any, Any, Any]:
        start = perf_counter()
        return run(wrapped(*args, **kwargs), instance, args, kwargs, start)

    return call


def _generator_wrapper(tracker: Finisher) -> Wrapper:
    finish = tracker.finish

    def run(
        generator: Generator[Any, Any, Any],
        instance: Any,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        start: float,
        context: contextvars.Context,
    ) -> Generator[Any, Any, Any]:
        # The iteration may end anywhere (another thread, the garbage collector): the
        # track call runs in the context of the call that made the generator.
        try:
            result = yield from generator
        except GeneratorExit:
            context.run(finish, instance, args, kwargs, start, None, None)
            raise
        except BaseException as error:
            context.run(finish, instance, args, kwargs, start, None, error)
            raise
        context.run(finish, instance, args, kwargs, start, result, None)
        return result

    def call(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Generator[Any, Any, Any]:
        start = perf_counter()
        generator = wrapped(*args, **kwargs)
        return run(generator, instance, args, kwargs, start, contextvars.copy_context())

    return call


def _async_generator_wrapper(tracker: Finisher) -> Wrapper:
    finish = tracker.finish

    async def run(
        generator: AsyncGenerator[Any, Any],
        instance: Any,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        start: float,
        context: contextvars.Context,
    ) -> AsyncGenerator[Any, Any]:
        # An async generator has no ``yield from``: forward asend/athrow/aclose by hand.
        # The event loop finalizes an abandoned one in a context of its own, hence
        # *context*, as for generators.
        step = generator.asend(None)
        try:
            while True:
                try:
                    value = await step
                except StopAsyncIteration:
                    break
                try:
                    sent = yield value
                except GeneratorExit:
                    await generator.aclose()
                    raise
                except BaseException as thrown:  # noqa: BLE001 - forwarded, not handled
                    step = generator.athrow(thrown)
                else:
                    step = generator.asend(sent)
        except GeneratorExit:
            context.run(finish, instance, args, kwargs, start, None, None)
            raise
        except BaseException as error:
            context.run(finish, instance, args, kwargs, start, None, error)
            raise
        context.run(finish, instance, args, kwargs, start, None, None)

    def call(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> AsyncGenerator[Any, Any]:
        start = perf_counter()
        generator = wrapped(*args, **kwargs)
        return run(generator, instance, args, kwargs, start, contextvars.copy_context())

    return call
