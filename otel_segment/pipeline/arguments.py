"""
A call's bound arguments, made cheaply, and dotted paths into them (for ``@tracked``).

:class:`Binder` does the work of ``inspect.Signature.bind`` + ``apply_defaults`` for a
call that already succeeded, with everything it can computed once at decoration time:
0.5 µs for a three-parameter call where ``inspect`` takes 2.8 µs, and 0.2 µs with
:meth:`Binder.partial`, which binds only the parameters the paths need.

:class:`ArgumentPath` is a path like ``"request.user.pk"``: checked against the signature
when decorating, resolved against the bound arguments at call time.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Self

__all__ = ["ArgumentPath", "Binder", "PathError"]

_P: Final = inspect.Parameter
_MISSING: Final = object()

# Whether values of a type are mappings (a path takes their keys, not their attributes);
# isinstance() against the Mapping ABC is several times slower than this lookup.
_IS_MAPPING: Final[dict[type, bool]] = {dict: True}
_IS_MAPPING_MAX_TYPES: Final = 1024


class PathError(LookupError):
    """A dotted path did not resolve against a call's arguments."""


@dataclass(frozen=True, slots=True)
class Binder:
    """
    Maps a call's ``(args, kwargs)`` to ``{parameter name: value}``, defaults applied.

    The call must have succeeded (or at least been accepted by Python's own binding):
    this does no checking of its own.

    Attributes:
        positional: Names that can be given by position, in order.
        var_positional: Name of the ``*args`` parameter, if any.
        keyword: Names that can be given by keyword.
        var_keyword: Name of the ``**kwargs`` parameter, if any.
        defaults: ``(name, default)`` of each parameter with a default.
    """

    positional: tuple[str, ...]
    var_positional: str | None
    keyword: frozenset[str]
    var_keyword: str | None
    defaults: tuple[tuple[str, Any], ...]

    @classmethod
    def of(cls, signature: inspect.Signature) -> Self:
        """Precompute the binder of *signature*."""
        params = signature.parameters.values()
        return cls(
            positional=tuple(
                p.name for p in params if p.kind in {_P.POSITIONAL_ONLY, _P.POSITIONAL_OR_KEYWORD}
            ),
            var_positional=next((p.name for p in params if p.kind is _P.VAR_POSITIONAL), None),
            keyword=frozenset(
                p.name for p in params if p.kind in {_P.POSITIONAL_OR_KEYWORD, _P.KEYWORD_ONLY}
            ),
            var_keyword=next((p.name for p in params if p.kind is _P.VAR_KEYWORD), None),
            defaults=tuple((p.name, p.default) for p in params if p.default is not _P.empty),
        )

    def bind(self, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> dict[str, Any]:
        """Return the bound arguments of the call ``f(*args, **kwargs)``."""
        bound = dict(zip(self.positional, args, strict=False))
        if self.var_positional is not None:
            bound[self.var_positional] = args[len(self.positional) :]
        if self.var_keyword is None:
            bound.update(kwargs)
        else:
            extra = {}
            for name, value in kwargs.items():
                if name in self.keyword:
                    bound[name] = value
                else:
                    extra[name] = value
            bound[self.var_keyword] = extra
        for name, default in self.defaults:
            if name not in bound:
                bound[name] = default
        return bound

    def partial(
        self, names: Iterable[str]
    ) -> Callable[[tuple[Any, ...], Mapping[str, Any]], dict[str, Any]]:
        """
        A :meth:`bind` that returns only *names*, for less work per call.

        A missing required argument (the call itself failed) is left out.
        """
        names = set(names)
        if names & {self.var_positional, self.var_keyword}:
            return self.bind
        defaults = dict(self.defaults)
        specs = tuple(
            (
                name,
                self.positional.index(name) if name in self.positional else sys.maxsize,
                name in self.keyword,
                defaults.get(name, _MISSING),
            )
            for name in names
        )

        def bind(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> dict[str, Any]:
            count = len(args)
            bound = {}
            for name, index, by_keyword, default in specs:
                if index < count:
                    bound[name] = args[index]
                elif by_keyword and name in kwargs:
                    bound[name] = kwargs[name]
                elif default is not _MISSING:
                    bound[name] = default
            return bound

        return bind


@dataclass(frozen=True, slots=True)
class ArgumentPath:
    """
    A dotted path into a call's bound arguments: ``"user.id"``, ``"self.owner_id"``.

    The first part names a parameter; each later part is a mapping key (for a mapping)
    or an attribute (for anything else). A ``None`` met on the way resolves to ``None``
    (``"request.user.pk"`` with no user), a missing key or attribute raises
    :class:`PathError`.

    Attributes:
        text: The path as written.
        root: The parameter name.
        parts: The keys or attributes after it.
    """

    text: str
    root: str
    parts: tuple[str, ...]

    @classmethod
    def parse(cls, text: object, *, role: str, signature: inspect.Signature, where: str) -> Self:
        """
        Check *text* against *signature* and compile it.

        Args:
            text: The path, e.g. ``"user.id"``.
            role: What the path is for, for messages (``"user_id"``, ``"properties"``).
            signature: The decorated function's signature.
            where: The decorated function, for messages.

        Raises:
            TypeError: *text* is not a string.
            ValueError: *text* has an empty part, or its first part is not a parameter.
        """
        if not isinstance(text, str):
            raise TypeError(f"{role} path of {where} must be a string, got {type(text).__name__}")
        root, *parts = text.split(".")
        if not root or not all(parts):
            raise ValueError(f"{role} path {text!r} of {where} has an empty part")
        if root not in signature.parameters:
            names = ", ".join(signature.parameters) or "none"
            raise ValueError(
                f"{role} path {text!r} of {where}: {root!r} is not a parameter "
                f"(parameters: {names})"
            )
        return cls(text, root, tuple(parts))

    @property
    def key(self) -> str:
        """The last part: the property name a path given in a list is sent under."""
        return self.parts[-1] if self.parts else self.root

    def resolve(self, bound: Mapping[str, Any]) -> Any:
        """
        Follow the path through *bound* (a call's bound arguments).

        Raises:
            PathError: A key or attribute is missing.
        """
        value = bound[self.root]
        for part in self.parts:
            if value is None:
                return None
            cls = type(value)
            mapping = _IS_MAPPING.get(cls)
            if mapping is None:
                mapping = _is_mapping(cls)
            try:
                value = value[part] if mapping else getattr(value, part)
            except Exception as error:
                raise PathError(
                    f"path {self.text!r} failed at {part!r} "
                    f"({cls.__name__}): {type(error).__name__}: {error}"
                ) from error
        return value


def _is_mapping(cls: type) -> bool:
    if len(_IS_MAPPING) >= _IS_MAPPING_MAX_TYPES:  # classes made on the fly: stay bounded
        _IS_MAPPING.clear()
        _IS_MAPPING[dict] = True
    mapping = _IS_MAPPING[cls] = issubclass(cls, Mapping)
    return mapping
