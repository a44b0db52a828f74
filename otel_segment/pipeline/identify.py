"""
Which identity a message takes when its call gives no ids: the scope, the span, Baggage.

:meth:`Client._send <otel_segment.Client>` calls :func:`complete` before a builder
validates the fields, so a ``track`` with neither id passes when the identity gives one.
The rules, in order:

- Ids the call, record or span gives itself always win: when it gives either
  ``user_id`` or ``anonymous_id``, no id is added (an explicit actor is not paired with
  another one's ids).
- Else, field by field: the open :func:`~otel_segment.identity` scope; then the current
  span's identity attributes (``segment.user_id``, ``enduser.id``, ``user.id``;
  ``segment.anonymous_id``, ``enduser.pseudo.id``, ``session.id``), or what it inherited
  from its parent spans (recorded by :class:`~otel_segment.SegmentSpanProcessor` at
  span start, in :data:`INHERITED`); then, with ``Client(identity_from_baggage=True)``,
  ``enduser.id`` / ``enduser.pseudo.id`` from OpenTelemetry Baggage.
- The scope's ``context`` merges under the call's own context and over
  ``default_context``, whatever ids the call gave (the request's ``ip`` is the request's).

Outside every scope, a call that gives its user costs the client one ``ContextVar.get()``
before it decides not to call :func:`complete` at all.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Final

from opentelemetry import baggage as otel_baggage
from opentelemetry import trace as otel_trace

from otel_segment.identity import _SCOPE, Identity, _Scope
from otel_segment.pipeline import messages

__all__ = [
    "ANONYMOUS_KEYS",
    "FILLERS",
    "INHERITED",
    "INHERITED_MAX",
    "SCOPE",
    "USER_KEYS",
    "Ids",
    "complete",
    "inherit",
    "span_ids",
    "without_identity",
]

Ids = tuple[str | None, str | None]
"""``(user_id, anonymous_id)``."""

Builder = Callable[..., messages.Message]

USER_KEYS: Final = ("segment.user_id", "enduser.id", "user.id")
"""Span attributes naming the user, first found wins."""

ANONYMOUS_KEYS: Final = ("segment.anonymous_id", "enduser.pseudo.id", "session.id")
"""Span attributes naming the anonymous visitor, first found wins."""

_BAGGAGE_USER: Final = "enduser.id"
_BAGGAGE_ANONYMOUS: Final = "enduser.pseudo.id"

SCOPE: Final = _SCOPE
"""The identity scopes' ``ContextVar`` (``None`` outside every scope): the client's fast check."""

INHERITED: Final[dict[int, Ids]] = {}
"""Ids a live span inherited from its parent spans, by span id (only spans that did)."""

INHERITED_MAX: Final = 100_000
"""Live spans :data:`INHERITED` holds at most: spans that never end cannot grow it for ever."""

Filler = Callable[[tuple[Any, ...], "str | None", "str | None"], tuple[Any, ...]]

# Per builder of the client's six calls: where its positional fields hold user_id and
# anonymous_id (None: alias has none), and the fields with both ids put in (a tuple
# display: 0.1 us, where a list copy and tuple() cost 0.3).
FILLERS: Final[dict[Builder, tuple[int, int | None, Filler]]] = {
    messages.track: (0, 5, lambda f, u, a: (u, f[1], f[2], f[3], f[4], a, f[6], f[7])),
    messages.identify: (0, 4, lambda f, u, a: (u, f[1], f[2], f[3], a, f[5], f[6])),
    messages.page: (0, 6, lambda f, u, a: (u, f[1], f[2], f[3], f[4], f[5], a, f[7], f[8])),
    messages.screen: (0, 6, lambda f, u, a: (u, f[1], f[2], f[3], f[4], f[5], a, f[7], f[8])),
    messages.group: (0, 5, lambda f, u, a: (u, f[1], f[2], f[3], f[4], a, f[6], f[7])),
    messages.alias: (1, None, lambda f, u, _a: (f[0], u, f[2], f[3], f[4], f[5])),
}


def complete(
    builder: Builder,
    fields: tuple[Any, ...],
    base: Mapping[str, Any],
    from_baggage: bool,
    scope: _Scope | None = None,
) -> tuple[Builder, tuple[Any, ...], Mapping[str, Any]]:
    """
    The call with the identity filled in: ``(builder, fields, base_context)``.

    *builder* and *fields* are what the client's call passes on (a ``functools.partial``
    with keyword fields for :meth:`~otel_segment.Client.message`); *base* is the client's
    base context (``default_context`` and the library); *scope* is the open scope, which
    the client has read already.
    """
    found = None
    if scope is not None:
        found = scope.merged or scope.resolve()  # cached while the scope is unchanged
        if found.context:
            base = _with_context(base, found.context)
    fill = FILLERS.get(builder)
    if fill is None:
        if _given_keywords(builder):
            return builder, fields, base
    else:
        user_at, anonymous_at, filler = fill
        if fields[user_at] not in _ABSENT or (
            anonymous_at is not None and fields[anonymous_at] not in _ABSENT
        ):
            return builder, fields, base
        if found is not None and found.user_id is not None:  # the common case: look no further
            return builder, filler(fields, found.user_id, found.anonymous_id), base
    looked_up = _ids(found, from_baggage)
    if looked_up is None:
        return builder, fields, base
    if fill is None:
        return _fill_keywords(builder, looked_up), fields, base  # type: ignore[arg-type]
    return builder, fill[2](fields, *looked_up), base


_ABSENT: Final = (None, "")

# The last base context merged with a scope's context: the scope's merged context is one
# object for as long as the scope is unchanged, so a request's messages merge it once.
_last_merge: tuple[Mapping[str, Any], Mapping[str, Any], Mapping[str, Any]] | None = None


def _with_context(base: Mapping[str, Any], context: Mapping[str, Any]) -> Mapping[str, Any]:
    """*context* over *base* (the call's own context merges over this in the builder)."""
    global _last_merge  # noqa: PLW0603 - a one-entry cache; a tuple is swapped atomically
    last = _last_merge
    if last is not None and last[0] is base and last[1] is context:
        return last[2]
    merged = messages.merge_context(base, context)
    _last_merge = (base, context, merged)
    return merged


def _given_keywords(builder: Builder) -> bool:
    """Whether a ``message()`` call gives an id itself (or is not one this module knows)."""
    if not isinstance(builder, functools.partial):
        return True
    keywords: dict[str, Any] = builder.keywords
    if keywords.get("user_id") not in _ABSENT:
        return True
    return builder.func is not messages.alias and keywords.get("anonymous_id") not in _ABSENT


def _ids(found: Identity | None, from_baggage: bool) -> Ids | None:
    """
    The ids from the first of scope, span and Baggage that gives a user id.

    Looking stops at the first user id; the anonymous id is the first one found in the
    sources looked at.
    """
    user, anonymous = (None, None) if found is None else (found.user_id, found.anonymous_id)
    if user is None:
        span = span_ids(otel_trace.get_current_span())
        if span is not None:
            user, anonymous = span[0], anonymous or span[1]
    if user is None and from_baggage:
        user = _baggage_text(_BAGGAGE_USER)
        anonymous = anonymous or _baggage_text(_BAGGAGE_ANONYMOUS)
    if user is None and anonymous is None:
        return None
    return user, anonymous


def _baggage_text(key: str) -> str | None:
    value = otel_baggage.get_baggage(key)
    return value if isinstance(value, str) and value else None


def _fill_keywords(builder: functools.partial[messages.Message], ids: Ids) -> Builder:
    keywords = {**builder.keywords, "user_id": ids[0]}
    if builder.func is not messages.alias:
        keywords["anonymous_id"] = ids[1]
    return functools.partial(builder.func, *builder.args, **keywords)


def span_ids(span: object) -> Ids | None:
    """
    The ids a span gives what happens inside it; ``None`` when it gives none.

    Its own identity attributes, else the ones it inherited from its parent spans.
    """
    attributes = _attributes(span) if span.is_recording() else None  # type: ignore[attr-defined]
    if attributes:
        user = _first(USER_KEYS, attributes)
        anonymous = _first(ANONYMOUS_KEYS, attributes)
        if user is not None or anonymous is not None:
            return user, anonymous
    if not INHERITED:
        return None
    context = getattr(span, "get_span_context", None)
    return None if context is None else INHERITED.get(context().span_id)


def inherit(span: object, parent: object) -> None:
    """
    Remember the ids *span* takes from *parent* (a span, or the invalid span).

    Called at span start by :class:`~otel_segment.SegmentSpanProcessor`; :func:`forget`
    undoes it at span end.
    """
    if parent is otel_trace.INVALID_SPAN:
        return
    ids = span_ids(parent)
    if ids is not None:
        if len(INHERITED) >= INHERITED_MAX:  # the oldest span's: the likeliest never to end
            INHERITED.pop(next(iter(INHERITED)), None)
        INHERITED[span.get_span_context().span_id] = ids  # type: ignore[attr-defined]


def forget(span: object) -> None:
    """Drop what :func:`inherit` remembered for *span* (at span end)."""
    if INHERITED:
        INHERITED.pop(span.get_span_context().span_id, None)  # type: ignore[attr-defined]


@contextlib.contextmanager
def without_identity() -> Iterator[None]:
    """Run the block outside every identity scope (``@snapshot``: not the request's)."""
    token = _SCOPE.set(None)
    try:
        yield
    finally:
        _SCOPE.reset(token)


def _attributes(span: object) -> Mapping[str, Any] | None:
    """A live span's attributes, read the cheap way for the SDK's spans (see otel_mapping)."""
    internals: Any = span
    try:
        inner = internals._attributes._dict  # noqa: SLF001 - 0.05 us a lookup, not 0.6
    except AttributeError:
        return getattr(span, "attributes", None)
    return inner if isinstance(inner, dict) else None


def _first(keys: tuple[str, ...], attributes: Mapping[str, Any]) -> str | None:
    for key in keys:
        value = attributes.get(key)
        if value is not None and value != "":
            return str(value)
    return None
