"""
Decorators: ``@tracked`` sends a track event for each call; ``@snapshot`` reports state.

``@tracked`` is built on wrapt's ``FunctionWrapper``, so the decorated object keeps its
signature, ``__wrapped__``, its ``inspect.iscoroutinefunction`` /
``isgeneratorfunction`` / ``isasyncgenfunction`` answers, and works on methods,
classmethods and staticmethods in either decorator order. ``@snapshot`` registers a
function on the client's one timer thread (``Client.every``).

Neither ever raises into the decorated code once decoration succeeded: what cannot be
sent is counted (``stats()["rejected"]``) and logged under ``otel_segment``.
"""

from __future__ import annotations

import inspect
import logging
import threading
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final, TypeVar

from otel_segment.pipeline.identify import without_identity
from otel_segment.pipeline.options import seconds
from otel_segment.pipeline.tracking import Decoratable, decorator
from otel_segment.sources.clients import ClientRef

if TYPE_CHECKING:
    from otel_segment.pipeline.client import Client

__all__ = ["Decoratable", "IdSource", "PropertiesSource", "StateFunction", "snapshot", "tracked"]

_logger = logging.getLogger("otel_segment")

StateFunction = TypeVar("StateFunction", bound="Callable[[], Mapping[str, object]]")
"""What ``@snapshot`` decorates: a function of no arguments returning a mapping."""

IdSource = str | Callable[[dict[str, Any]], object]
"""A dotted path into the bound arguments, or a callable receiving them."""

PropertiesSource = (
    Sequence[str] | Mapping[str, str] | Callable[[dict[str, Any], Any], Mapping[str, object]]
)
"""Dotted paths (key = last part), ``{key: path}``, or ``(bound_arguments, result) -> dict``."""

_SNAPSHOT_TYPES: Final = ("group", "identify")


def tracked(
    event: str,
    *,
    user_id: IdSource | None = None,
    anonymous_id: IdSource | None = None,
    properties: PropertiesSource | None = None,
    client: Client | None = None,
    track_errors: bool = True,
) -> Callable[[Decoratable], Decoratable]:
    """
    Send a ``track`` *event* each time the decorated function completes.

    Works on functions, coroutine functions, generator and async-generator functions
    (their event is sent when the iteration ends: exhausted, raising, closed early or
    garbage-collected; one never started sends nothing), methods, classmethods and
    staticmethods. The event's properties carry ``duration_ms`` (a float, to the
    microsecond): from the call to the return, the raise or the end of the iteration.

    If the call raises, the exception propagates unchanged; with *track_errors* the
    event is sent with ``error: True``, ``error_type`` and ``error_message``, without
    it no event is sent for that call. Without *user_id* and *anonymous_id* (or when
    both resolve to ``None``), the event takes the identity in force where the call
    ends: the :func:`~otel_segment.identity` scope, the current span's identity, or
    Baggage (see :func:`~otel_segment.identity`). If an id or a property cannot be
    resolved (a missing attribute or key, a raising callable, no identity at all), the
    event is not sent: it is counted as rejected and logged, and the call is unaffected. Inside
    an active OpenTelemetry span the event carries its trace and span ids (for
    generators, those of the context of the call that made the generator).

    Args:
        event: The event name, e.g. ``"Report Generated"``.
        user_id: A dotted path into the call's bound arguments (``"user.id"``,
            ``"request.user.pk"``, ``"self.owner_id"``; each part after the first a
            mapping key or an attribute), or a callable receiving the bound arguments
            as a dict (defaults applied) and returning the id.
        anonymous_id: Same, for the anonymous id. Without either, the identity in
            force at the call gives them.
        properties: A list of dotted paths (each sent under its last part), a
            ``{key: path}`` dict, or a callable ``(bound_arguments, result) -> dict``
            (*result* is ``None`` when the call raised).
        client: The client to send through; default: the process-wide default client,
            looked up at each call (so decorating before ``configure()`` is fine).
        track_errors: Send an event, with the error's details, for a call that raised.

    Returns:
        The decorator.

    Raises:
        TypeError: An argument has the wrong type.
        ValueError: *event* is empty, or a path's first part is not a
            parameter of the decorated function (raised when decorating).

    .. versionadded:: 0.1.0
    .. versionchanged:: 0.2.0
       *user_id* and *anonymous_id* may both be omitted.
    """
    ref = ClientRef(client)
    return decorator(
        event,
        user_id=user_id,
        anonymous_id=anonymous_id,
        properties=properties,
        client=ref.get,
        track_errors=track_errors,
    )


def snapshot(
    every: float,
    *,
    type: str = "group",
    user_id: str | int | None = None,
    group_id: str | int | None = None,
    anonymous_id: str | int | None = None,
    client: Client | None = None,
) -> Callable[[StateFunction], StateFunction]:
    """
    Report the mapping the decorated function returns every *every* seconds.

    The function takes no arguments and describes the state of the running system (an
    installation's version, plan, feature flags, counts). It runs on the client's one
    timer thread every *every* seconds, and once more when the client shuts down; its
    mapping is sent as the traits of a ``group`` call (or an ``identify`` call). With
    only a *group_id*, the installation is its own actor: ``anonymous_id = group_id``.
    A function that raises or returns something else than a mapping is reported
    (logged under ``otel_segment``, counted as rejected) and the schedule goes on.
    The function itself is returned unchanged, callable as before.

    With *client* ``None``, the snapshot follows the default client: it is registered
    on it at once if it exists, else as soon as it is built (by ``configure()`` or the
    first module-level call), and on each default client built later. Decorating at
    import time, before ``configure()``, is therefore fine; a process that sends
    nothing else builds the default client with ``otel_segment.configure(...)``.

    Args:
        every: Seconds between two reports (> 0).
        type: ``"group"`` (needs *group_id*) or ``"identify"`` (needs *user_id* or
            *anonymous_id*).
        user_id: The user the state is reported for.
        group_id: The group (account, installation) the state describes.
        anonymous_id: The anonymous actor; default *group_id* when no *user_id*.
        client: The client whose timer runs the function; default: the default client.

    Returns:
        The decorator.

    Raises:
        TypeError: An argument has the wrong type, or the function needs arguments.
        ValueError: *every* is not > 0, *type* is unknown, or an id it needs is missing.

    .. versionadded:: 0.1.0
    """
    every = seconds("every", every)
    fields = _snapshot_fields(type, user_id=user_id, group_id=group_id, anonymous_id=anonymous_id)
    ref = ClientRef(client)

    def decorate(func: StateFunction) -> StateFunction:
        report = _Snapshot(func, type, fields, float(every))
        ref.follow(report.register)
        return func

    return decorate


def _snapshot_fields(
    kind: str, *, user_id: object, group_id: object, anonymous_id: object
) -> dict[str, object]:
    if kind not in _SNAPSHOT_TYPES:
        raise ValueError(f"snapshot type must be 'group' or 'identify', got {kind!r}")
    for name, value in (
        ("user_id", user_id),
        ("group_id", group_id),
        ("anonymous_id", anonymous_id),
    ):
        if value is not None and (isinstance(value, bool) or not isinstance(value, (str, int))):
            raise TypeError(f"{name} must be a string or an int, got {value.__class__.__name__}")
    if kind == "identify":
        if user_id is None and anonymous_id is None:
            raise ValueError("an identify snapshot needs user_id= or anonymous_id=")
        if group_id is not None:
            raise ValueError("group_id= is for group snapshots, not identify")
        return {"user_id": user_id, "anonymous_id": anonymous_id}
    if group_id is None:
        raise ValueError("a group snapshot needs group_id=")
    if user_id is None and anonymous_id is None:
        anonymous_id = group_id
    return {"user_id": user_id, "anonymous_id": anonymous_id, "group_id": group_id}


class _Snapshot:
    """One ``@snapshot`` function, and the clients whose timers run it."""

    def __init__(
        self,
        func: Callable[[], object],
        kind: str,
        fields: dict[str, object],
        every: float,
    ) -> None:
        if not callable(func):
            raise TypeError(f"@snapshot decorates a function, got {func.__class__.__name__}")
        name = getattr(func, "__qualname__", None) or repr(func)
        self.where = f"@snapshot on {getattr(func, '__module__', '?')}.{name}"
        try:
            inspect.signature(func).bind()
        except TypeError:
            raise TypeError(f"{self.where}: the function must take no arguments") from None
        except ValueError:  # no signature (some builtins): find out when it runs
            pass
        self._func = func
        self._kind = kind
        self._fields = fields
        self._every = every
        self._lock = threading.Lock()
        self._clients: weakref.WeakSet[Client] = weakref.WeakSet()

    def register(self, client: Client) -> None:
        """Run on *client*'s timer (once per client, whoever asks)."""
        with self._lock:
            if client in self._clients or client.closed:
                return
            self._clients.add(client)
        client.every(self._every, lambda: self.report(client))

    def report(self, client: Client) -> None:
        """Call the function and send its mapping through *client*; never raises."""
        try:
            state = self._func()
        except Exception as error:
            _logger.debug("%s raised", self.where, exc_info=True)
            client.reject(RuntimeError(f"{self.where} raised {type(error).__name__}: {error}"))
            return
        if not isinstance(state, Mapping):
            client.reject(TypeError(f"{self.where} returned {type(state).__name__}, not a mapping"))
            return
        try:
            with without_identity():  # the installation's state, not a request's user
                client.message(self._kind, traits=dict(state), **self._fields)
        except Exception as error:  # noqa: BLE001 - counted by the client where it applies
            _logger.warning("%s: the state was not sent: %s", self.where, error)
