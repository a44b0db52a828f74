"""
What ``@tracked`` does for one decorated function: checked once, run at every call.

:func:`decorator` builds the decorator for ``Client.tracked`` and ``otel_segment.tracked``.
A :class:`Tracker` compiles its arguments against the function's signature (at
decoration time, so a typo fails at import), and :meth:`Tracker.finish` turns one
completed call into a ``track`` call on the client the decorator was given a way to
find. ``finish`` never raises. The wrappers that decide when a call is over live in
:mod:`otel_segment.pipeline.call_wrappers`.
"""

from __future__ import annotations

import inspect
import logging
import uuid
from collections.abc import Callable, Iterable, Mapping
from time import perf_counter
from typing import TYPE_CHECKING, Any, Final, Protocol, TypeVar, cast

import wrapt

from otel_segment.errors import PlanViolation
from otel_segment.pipeline.arguments import ArgumentPath, Binder
from otel_segment.pipeline.batching import in_pipeline
from otel_segment.pipeline.call_wrappers import wrapper_for

if TYPE_CHECKING:
    from otel_segment.pipeline.messages import Message

__all__ = ["RESERVED_PROPERTIES", "Decoratable", "Sender", "Tracker", "decorator"]

_logger = logging.getLogger("otel_segment")

RESERVED_PROPERTIES: Final = frozenset({"duration_ms", "error", "error_type", "error_message"})
"""Properties ``@tracked`` sets itself; a path may not be sent under these keys."""

_MAX_ERROR_MESSAGE_CHARS: Final = 500

_Resolve = Callable[[dict[str, Any]], object]
_Compute = Callable[[dict[str, Any], Any], object]
_Id = str | int | float | None
_Bind = Callable[[tuple[Any, ...], Mapping[str, Any]], dict[str, Any]]


Decoratable = TypeVar(
    "Decoratable",
    bound="Callable[..., object] | classmethod[Any, ..., object] | staticmethod[..., object]",
)
"""What ``@tracked`` decorates; the decorated object keeps its static type."""


class Sender(Protocol):
    """The part of a client a tracker sends through."""

    def track(
        self,
        user_id: _Id = None,
        event: str | None = None,
        properties: Mapping[str, Any] | None = None,
        *,
        anonymous_id: _Id = None,
    ) -> tuple[bool, Message]:
        """Send a track call."""

    def reject(self, error: Exception) -> None:
        """Count and log a message that could not be built."""


def decorator(
    event: object,
    *,
    user_id: object,
    anonymous_id: object,
    properties: object,
    client: Callable[[], Sender],
    track_errors: object,
) -> Callable[[Decoratable], Decoratable]:
    """
    The ``@tracked`` decorator, sending through the client *client()* returns at each call.

    Raises:
        TypeError: An argument has the wrong type.
        ValueError: *event* is empty.
    """
    event = _event_name(event)
    if not isinstance(track_errors, bool):
        raise TypeError(f"track_errors must be True or False, got {track_errors!r}")

    def decorate(func: Decoratable) -> Decoratable:
        target = _underlying(func)
        tracker = Tracker(
            target,
            event,
            user_id=user_id,
            anonymous_id=anonymous_id,
            properties=properties,
            client=client,
            track_errors=track_errors,
        )
        wrapper = wrapper_for(target, tracker)
        return cast("Decoratable", wrapt.FunctionWrapper(cast("Callable[..., Any]", func), wrapper))

    return decorate


def _event_name(event: object) -> str:
    if not isinstance(event, str):
        raise TypeError(f"tracked() needs an event name (a string), got {event!r}")
    if not event:
        raise ValueError("tracked() needs a non-empty event name")
    return event


def _underlying(func: object) -> Callable[..., object]:
    """The function whose signature the call binds to (a method's with ``self``)."""
    if isinstance(func, (classmethod, staticmethod)) or inspect.ismethod(func):
        return cast("Callable[..., object]", func.__func__)
    if not callable(func):
        raise TypeError(f"@tracked decorates a callable, got {type(func).__name__}")
    return func


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
        client: Returns the client to send through, at each call (it may raise).
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
        client: Callable[[], Sender],
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
            client = self._client()
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
        except PlanViolation:  # on_violation="raise": already counted, reported and logged
            pass
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
        # Neither id: the identity in force at the call gives them (the client fills them
        # in); with none there either, the client rejects the event (counted, logged).
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
