"""
What ``@tracked`` does for one decorated function: checked once, run at every call.

A :class:`Tracker` compiles the decorator's arguments against the function's signature
(at decoration time, so a typo fails at import), and :meth:`Tracker.finish` turns one
completed call into a ``track`` call on the client. ``finish`` never raises.
:func:`wrapper_for` gives the wrapt wrapper for the function's kind (plain, coroutine,
generator, async generator), which decides when a call is over.
"""

from __future__ import annotations

import contextvars
import inspect
import logging
import uuid
from collections.abc import Callable, Iterable, Mapping
from time import perf_counter
from typing import TYPE_CHECKING, Any, Final

from otel_segment import _default
from otel_segment._arguments import ArgumentPath, Binder
from otel_segment.client import in_pipeline

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Coroutine, Generator

    from otel_segment.client import Client

__all__ = ["RESERVED_PROPERTIES", "Tracker", "Wrapper", "wrapper_for"]

_logger = logging.getLogger("otel_segment")

RESERVED_PROPERTIES: Final = frozenset({"duration_ms", "error", "error_type", "error_message"})
"""Properties ``@tracked`` sets itself; a path may not be sent under these keys."""

_MAX_ERROR_MESSAGE_CHARS: Final = 500

_Resolve = Callable[[dict[str, Any]], object]
_Compute = Callable[[dict[str, Any], Any], object]
_Id = str | int | float | None
Wrapper = Callable[[Callable[..., Any], Any, tuple[Any, ...], dict[str, Any]], Any]
"""wrapt's wrapper signature: ``(wrapped, instance, args, kwargs) -> result``."""
_Bind = Callable[[tuple[Any, ...], Mapping[str, Any]], dict[str, Any]]


class Tracker:
    """
    The compiled arguments of one ``@tracked`` decoration.

    Args:
        func: The function as defined (a classmethod's or staticmethod's ``__func__``,
            a bound method's ``__func__``): its signature is what paths refer to.
        event: The event name.
        user_id: A dotted path or a callable.
        anonymous_id: A dotted path or a callable.
        properties: Paths, ``{key: path}`` or a callable ``(bound_arguments, result)``.
        client: A client, or ``None`` for the default client at each call.
        track_errors: Whether a call that raised is sent (with the error's details).

    Raises:
        TypeError: An argument has the wrong type.
        ValueError: A path does not start with a parameter name, or two paths of a
            list end with the same key, or a key is reserved.
    """

    __slots__ = (
        "_anonymous_id",
        "_bind",
        "_client",
        "_compute",
        "_event",
        "_paths",
        "_track_errors",
        "_user_id",
        "where",
    )

    def __init__(
        self,
        func: Callable[..., object],
        event: str,
        *,
        user_id: object,
        anonymous_id: object,
        properties: object,
        client: Client | None,
        track_errors: bool,
    ) -> None:
        name = getattr(func, "__qualname__", None) or repr(func)
        self.where = f"@tracked({event!r}) on {getattr(func, '__module__', '?')}.{name}"
        signature = inspect.signature(func)
        self._event = event
        self._client = client
        self._track_errors = track_errors
        ids = (
            self._id_source("user_id", user_id, signature),
            self._id_source("anonymous_id", anonymous_id, signature),
        )
        self._paths: tuple[tuple[str, ArgumentPath], ...] = ()
        self._compute: _Compute | None = None
        if callable(properties):
            self._compute = properties
        elif properties is not None:
            self._paths = self._property_paths(properties, signature)
        self._user_id, self._anonymous_id = (
            source.resolve if isinstance(source, ArgumentPath) else source for source in ids
        )
        # Bind only the parameters the paths start from, unless a callable wants them all.
        binder = Binder.of(signature)
        self._bind: _Bind = binder.bind
        if self._compute is None and not any(callable(source) for source in ids):
            roots = [path.root for _, path in self._paths]
            roots += [source.root for source in ids if isinstance(source, ArgumentPath)]
            self._bind = binder.partial(roots)

    def finish(
        self,
        instance: object,
        args: tuple[Any, ...],
        kwargs: Mapping[str, Any],
        start: float,
        result: object,
        error: BaseException | None,
    ) -> None:
        """
        Send the event of one call that started at *start* (``perf_counter``) and ended.

        Args:
            instance: wrapt's *instance*: bound as the first argument when not ``None``.
            args: The positional arguments the wrapped callable got.
            kwargs: Its keyword arguments.
            start: ``perf_counter()`` at the call.
            result: What the call returned (``None`` if it raised).
            error: What the call raised, if it did.
        """
        # Milliseconds to the microsecond (round() would cost four times as much).
        duration_ms = (perf_counter() - start) * 1e6 // 1 / 1e3
        if error is not None and not self._track_errors:
            return
        try:
            client = self._client if self._client is not None else _default.get_client()
        except Exception as exc:  # noqa: BLE001 - tracking never raises into the call
            _logger.warning("%s: no client to send the event through: %s", self.where, exc)
            return
        if in_pipeline():  # e.g. from on_error: sending could recurse without end
            client.reject(RuntimeError(f"{self.where}: called inside the delivery pipeline"))
            return
        try:
            if instance is not None:
                args = (instance, *args)
            user_id, anonymous_id, properties = self._fields(
                self._bind(args, kwargs), result, error, duration_ms
            )
        except Exception as exc:  # noqa: BLE001
            client.reject(ValueError(f"{self.where}: {type(exc).__name__}: {_message(exc)}"))
            return
        try:
            client.track(
                user_id=user_id, event=self._event, properties=properties, anonymous_id=anonymous_id
            )
        except Exception as exc:  # noqa: BLE001 - counted by the client where it applies
            _logger.warning("%s: the event was not sent: %s", self.where, exc)

    def _fields(
        self,
        bound: dict[str, Any],
        result: object,
        error: BaseException | None,
        duration_ms: float,
    ) -> tuple[_Id, _Id, dict[str, Any]]:
        user_id = None if self._user_id is None else _id("user_id", self._user_id(bound))
        anonymous_id = (
            None if self._anonymous_id is None else _id("anonymous_id", self._anonymous_id(bound))
        )
        if user_id is None and anonymous_id is None:
            raise ValueError("both user_id and anonymous_id resolved to None")
        properties = {key: path.resolve(bound) for key, path in self._paths}
        if self._compute is not None:
            computed = self._compute(bound, result)
            if not isinstance(computed, Mapping):
                raise TypeError(
                    f"the properties callable returned {type(computed).__name__}, not a mapping"
                )
            properties.update(computed)
        properties["duration_ms"] = duration_ms
        if error is not None:
            properties["error"] = True
            properties["error_type"] = _qualified_name(type(error))
            properties["error_message"] = _message(error)
        return user_id, anonymous_id, properties

    def _id_source(
        self, role: str, source: object, signature: inspect.Signature
    ) -> _Resolve | ArgumentPath | None:
        if source is None or callable(source):
            return source
        if not isinstance(source, str):
            raise TypeError(
                f"{role} of {self.where} must be a dotted path or a callable, "
                f"got {type(source).__name__}"
            )
        return ArgumentPath.parse(source, role=role, signature=signature, where=self.where)

    def _property_paths(
        self, properties: object, signature: inspect.Signature
    ) -> tuple[tuple[str, ArgumentPath], ...]:
        items: Iterable[tuple[object, object]]
        if isinstance(properties, Mapping):
            items = properties.items()
        elif isinstance(properties, (list, tuple)):
            items = ((None, path) for path in properties)
        else:
            raise TypeError(
                f"properties of {self.where} must be a list of paths, a {{key: path}} dict "
                f"or a callable, got {type(properties).__name__}"
            )
        paths: dict[str, ArgumentPath] = {}
        for key, text in items:
            path = ArgumentPath.parse(
                text, role="properties", signature=signature, where=self.where
            )
            name = path.key if key is None else key
            if not isinstance(name, str) or not name:
                raise TypeError(f"property keys of {self.where} must be non-empty strings")
            if name in RESERVED_PROPERTIES:
                raise ValueError(f"property {name!r} of {self.where} is set by @tracked itself")
            if name in paths:
                raise ValueError(
                    f"properties of {self.where}: two paths are sent as {name!r} "
                    f"({paths[name].text!r}, {path.text!r}); use a {{key: path}} dict"
                )
            paths[name] = path
        return tuple(paths.items())


def _id(role: str, value: object) -> _Id:
    if value is None or (isinstance(value, (str, int, float)) and not isinstance(value, bool)):
        return value
    if isinstance(value, uuid.UUID):  # e.g. Django's UUID primary keys
        return str(value)
    raise TypeError(f"{role} resolved to a {type(value).__name__}, not a string or a number")


def _qualified_name(cls: type[BaseException]) -> str:
    module = cls.__module__
    return cls.__qualname__ if module == "builtins" else f"{module}.{cls.__qualname__}"


def _message(error: BaseException) -> str:
    try:
        text = str(error)
    except Exception:  # noqa: BLE001 - a broken __str__ must not stop the event
        text = f"<unprintable {type(error).__name__}>"
    if len(text) > _MAX_ERROR_MESSAGE_CHARS:
        text = text[: _MAX_ERROR_MESSAGE_CHARS - 1] + "…"
    return text


def wrapper_for(func: Callable[..., object], tracker: Tracker) -> Wrapper:
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


def _sync_wrapper(tracker: Tracker) -> Wrapper:
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


def _coroutine_wrapper(tracker: Tracker) -> Wrapper:
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


def _generator_wrapper(tracker: Tracker) -> Wrapper:
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


def _async_generator_wrapper(tracker: Tracker) -> Wrapper:
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
