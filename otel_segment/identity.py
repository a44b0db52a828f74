"""
Request-scoped identity: who the messages made in this context are about.

``with identity(user_id="u1", context={"ip": ...}):`` opens a scope over a
:class:`contextvars.ContextVar`, so it is per thread and per asyncio task (a task
started inside the scope sees it). Scopes nest: inner fields win, contexts merge (one
level deep: ``{"page": {"path": ...}}`` from an inner scope adds to the outer ``page``).
:func:`set_identity` changes the innermost open scope, for a user who logs in
mid-request. Every source of the client reads :func:`current_identity` when a message
gives no ids of its own. Standard library only, apart from OpenTelemetry Baggage when
asked for.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import types
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Final

__all__ = ["Identity", "current_identity", "identity", "set_identity"]

_EMPTY: Final[Mapping[str, Any]] = types.MappingProxyType({})


@dataclasses.dataclass(frozen=True, slots=True)
class Identity:
    """
    The identity of the open scopes, merged.

    Attributes:
        user_id: The user's id, or ``None``.
        anonymous_id: The anonymous id (e.g. analytics.js's ``ajs_anonymous_id``), or ``None``.
        context: Fields merged into every message's ``context`` (the message's own win).

    .. versionadded:: 0.2.0
    """

    user_id: str | None = None
    anonymous_id: str | None = None
    context: Mapping[str, Any] = dataclasses.field(default_factory=lambda: _EMPTY)


class _Scope:
    """
    One open ``identity(...)`` block; its merged view is cached until it changes.

    A scope opened by :func:`open_lazy_scope` has a *load* that makes its anonymous id
    and context the first time the scope is read (most requests make no message).
    """

    __slots__ = ("anonymous_id", "context", "load", "merged", "parent", "user_id")

    def __init__(
        self,
        parent: _Scope | None,
        user_id: str | None,
        anonymous_id: str | None,
        context: Mapping[str, Any],
        load: Loader | None = None,
    ) -> None:
        self.parent = parent
        self.user_id = user_id
        self.anonymous_id = anonymous_id
        self.context = context
        self.merged: Identity | None = None
        self.load = load

    def resolve(self) -> Identity:
        """The scope over its parents: inner fields win, contexts merge."""
        merged = self.merged
        if merged is not None:
            return merged
        if self.load is not None:
            self.loaded()
        outer = self.parent.resolve() if self.parent is not None else Identity()
        merged = Identity(
            self.user_id if self.user_id is not None else outer.user_id,
            self.anonymous_id if self.anonymous_id is not None else outer.anonymous_id,
            _merge(outer.context, self.context),
        )
        self.merged = merged
        return merged

    def loaded(self) -> None:
        """Fill the anonymous id and context from *load*, once (two threads: both, alike)."""
        load = self.load
        if load is None:
            return
        anonymous_id, context = load()
        if self.anonymous_id is None:
            self.anonymous_id = anonymous_id
        self.context = types.MappingProxyType(context)
        self.load = None


Loader = Callable[[], tuple[str | None, dict[str, Any]]]
"""Makes a lazy scope's ``(anonymous_id, context)``; must not raise."""

_SCOPE: Final[contextvars.ContextVar[_Scope | None]] = contextvars.ContextVar(
    "otel_segment_identity", default=None
)


def current_identity() -> Identity | None:
    """
    The identity of the open scopes, merged; ``None`` outside every scope.

    .. versionadded:: 0.2.0
    """
    scope = _SCOPE.get()
    return None if scope is None else scope.resolve()


@contextlib.contextmanager
def identity(
    user_id: str | int | None = None,
    anonymous_id: str | int | None = None,
    context: Mapping[str, Any] | None = None,
    *,
    baggage: bool = False,
) -> Iterator[Identity]:
    """
    Attribute every message made inside the block to this identity.

    Direct calls that give no ids, log records, spans, OTel log records and ``@tracked``
    calls take the ids from here; fields a call, record or span gives itself win.

    Args:
        user_id: The user's id (an int is written as a string).
        anonymous_id: The anonymous id.
        context: Merged into each message's ``context`` (e.g. ``{"ip": ...}``).
        baggage: Also put ``enduser.id`` / ``enduser.pseudo.id`` into OpenTelemetry
            Baggage, so a W3C propagator carries them to the services this one calls.
            Off by default: baggage leaves the process, and may reach third parties.

    Yields:
        The merged identity now in force.

    Raises:
        TypeError: An id is not a string or an int, or *context* is not a mapping.

    .. versionadded:: 0.2.0
    """
    scope = _Scope(
        _SCOPE.get(),
        _id("user_id", user_id),
        _id("anonymous_id", anonymous_id),
        _context(context),
    )
    token = _SCOPE.set(scope)
    detach = _attach_baggage(scope.resolve()) if baggage else None
    try:
        yield scope.resolve()
    finally:
        if detach is not None:
            detach()
        _SCOPE.reset(token)


def set_identity(
    user_id: str | int | None = None,
    anonymous_id: str | int | None = None,
    context: Mapping[str, Any] | None = None,
) -> Identity:
    """
    Change the innermost open scope (e.g. the user logged in mid-request).

    Fields given replace the scope's own; *context* merges into its context. Messages
    made from now on in this scope carry the new identity.

    Returns:
        The merged identity now in force.

    Raises:
        RuntimeError: No ``identity(...)`` scope is open here.
        TypeError: An id is not a string or an int, or *context* is not a mapping.

    .. versionadded:: 0.2.0
    """
    scope = _SCOPE.get()
    if scope is None:
        raise RuntimeError("set_identity() needs an open identity(...) scope")
    scope.loaded()
    new_user, new_anonymous = _id("user_id", user_id), _id("anonymous_id", anonymous_id)
    if new_user is not None:
        scope.user_id = new_user
    if new_anonymous is not None:
        scope.anonymous_id = new_anonymous
    if context is not None:
        scope.context = _merge(scope.context, _context(context))
    scope.merged = None
    return scope.resolve()


def open_lazy_scope(user_id: str | None, load: Loader) -> contextvars.Token[Any]:
    """
    Open a scope whose anonymous id and context *load* makes when it is first read.

    For the web integrations: a request's context costs microseconds to build, and most
    requests make no message. Close it with :func:`close_scope`, in the same context, or
    drop the context it was opened in.
    """
    return _SCOPE.set(_Scope(_SCOPE.get(), user_id, None, _EMPTY, load))


def close_scope(token: contextvars.Token[Any]) -> None:
    """Close the scope :func:`open_lazy_scope` returned *token* for."""
    _SCOPE.reset(token)


def scope_is_open() -> bool:
    """Whether an identity scope is open here (without reading it)."""
    return _SCOPE.get() is not None


def _id(name: str, value: object) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise TypeError(f"{name} must be a string or an int, got {type(value).__name__}")


def _context(value: object) -> Mapping[str, Any]:
    if value is None:
        return _EMPTY
    if not isinstance(value, Mapping):
        raise TypeError(f"context must be a mapping, got {type(value).__name__}")
    return types.MappingProxyType(dict(value))


def _merge(outer: Mapping[str, Any], inner: Mapping[str, Any]) -> Mapping[str, Any]:
    """*inner* over *outer*; where both hold a mapping under a key, those merge too."""
    if not outer:
        return inner
    if not inner:
        return outer
    merged = dict(outer)
    for key, value in inner.items():
        below = merged.get(key)
        if isinstance(value, Mapping) and isinstance(below, Mapping):
            merged[key] = {**below, **value}
        else:
            merged[key] = value
    return types.MappingProxyType(merged)


def _attach_baggage(merged: Identity) -> Any:
    """Put the ids into OTel Baggage in the current context; return what undoes it."""
    from opentelemetry import baggage, context  # noqa: PLC0415 - only when asked for

    ctx = context.get_current()
    if merged.user_id is not None:
        ctx = baggage.set_baggage("enduser.id", merged.user_id, ctx)
    if merged.anonymous_id is not None:
        ctx = baggage.set_baggage("enduser.pseudo.id", merged.anonymous_id, ctx)
    token = context.attach(ctx)
    return lambda: context.detach(token)
