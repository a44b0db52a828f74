"""
:class:`TrackingPlan`: the events a team agreed to send, loaded once, checked per message.

A plan is read and every JSON Schema in it compiled at load, so that whatever is wrong
with it fails there, naming the file and the place.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
from typing import TYPE_CHECKING, Any, Final, Literal

from otel_segment.errors import FieldViolation, TrackingPlanError
from otel_segment.plans.formats import Rule, plain_rules, segment_rules
from otel_segment.plans.rudderstack import rudderstack_rules

if TYPE_CHECKING:
    import os
    from collections.abc import Callable, Iterator, Mapping

__all__ = ["TrackingPlan", "Unplanned"]

Unplanned = Literal["allow", "violation"]
_YAML_SUFFIXES: Final = (".yaml", ".yml")
_NAMED: Final = {"track": "event", "page": "name", "screen": "name"}
_NO_VIOLATIONS: Final[tuple[FieldViolation, ...]] = ()


@dataclasses.dataclass(frozen=True, slots=True)
class TrackingPlan:
    """
    A tracking plan: which events exist and what their messages must hold.

    Build one with :meth:`load` (a file) or :meth:`from_dict` (data), then give it to a
    client (``Client(plan=plan, on_violation="report")``) or check messages with
    :meth:`check`.

    Attributes:
        rules: The plan's rules, in the order they were read.
        unplanned: ``"allow"``: a track of an event the plan does not name passes;
            ``"violation"``: it breaks the plan (rule ``"unplanned"``).
        source: Where the plan came from.

    .. versionadded:: 0.2.0
    """

    rules: tuple[Rule, ...]
    unplanned: Unplanned = "allow"
    source: str = "<mapping>"
    _index: dict[tuple[str, str], tuple[Rule, ...]] = dataclasses.field(
        init=False, repr=False, compare=False
    )
    _common: tuple[Rule, ...] = dataclasses.field(init=False, repr=False, compare=False)
    _fast: dict[tuple[str, str], Callable[[Any], bool]] = dataclasses.field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        """Index the rules by message type and event (name), versions in order."""
        if self.unplanned not in {"allow", "violation"}:
            raise ValueError(f"unplanned must be 'allow' or 'violation', got {self.unplanned!r}")
        index: dict[tuple[str, str], list[Rule]] = {}
        for rule in self.rules:
            index.setdefault((rule.kind, rule.key), []).append(rule)
        frozen = {key: tuple(sorted(rules, key=_version)) for key, rules in index.items()}
        common = frozen.pop(("common", ""), ())
        object.__setattr__(self, "_common", common)
        object.__setattr__(self, "_index", frozen)
        # The hot path: one rule of one version, no COMMON rules: the validator itself.
        fast = {key: rules[0].schema.check for key, rules in frozen.items() if len(rules) == 1}
        object.__setattr__(self, "_fast", {} if common else fast)

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str],
        *more: str | os.PathLike[str],
        unplanned: Unplanned = "allow",
    ) -> TrackingPlan:
        """
        Read a tracking plan from a file (JSON or YAML), or from several.

        The format is recognised from the content: a Segment Protocols export
        (``rules[]``), a RudderStack catalog (YAML documents with ``kind:``; give every
        file of the catalog, or its folder), or ``{"events": {...}}``.

        Raises:
            TrackingPlanError: A file cannot be read or parsed, or its content is
                malformed or unsupported: the error names the file and the place.
            ValueError: *unplanned* is neither ``"allow"`` nor ``"violation"``.
        """
        files = [file for given in (path, *more) for file in _files(pathlib.Path(given))]
        documents = [(document, str(file)) for file in files for document in _read(file)]
        source = ", ".join(str(file) for file in files)
        return cls(tuple(_rules(documents, source)), unplanned, source)

    @classmethod
    def from_dict(
        cls, document: Mapping[str, Any], *, unplanned: Unplanned = "allow"
    ) -> TrackingPlan:
        """
        Build a tracking plan from data in any of the formats :meth:`load` reads.

        Raises:
            TrackingPlanError: The data is malformed or unsupported (naming the place).
        """
        return cls(tuple(_rules([(document, "<mapping>")], "<mapping>")), unplanned)

    @property
    def events(self) -> frozenset[str]:
        """The track events the plan names."""
        return frozenset(key for kind, key in self._index if kind == "track")

    def check(self, message: Mapping[str, Any]) -> tuple[FieldViolation, ...]:
        """
        How *message* (a wire message, as a mapping) breaks the plan; ``()`` if it does not.

        The rule of the message's type and event (or page/screen name) applies, with
        ``COMMON`` rules; for several versions of one rule, the version named in
        ``context.protocols.event_version``, else the lowest.
        """
        kind = message.get("type")
        field = _NAMED.get(kind)  # type: ignore[arg-type]
        key = message.get(field, "") if field is not None else ""
        if not isinstance(key, str) or not isinstance(kind, str):  # e.g. a malformed log line
            return (FieldViolation(field or "type", "type", "must be a string"),)
        fast = self._fast.get((kind, key))
        if fast is not None:
            try:
                if fast(message):
                    return _NO_VIOLATIONS
            except ValueError:  # a value JSON cannot hold: the slow path says which
                pass
        rules = self._index.get((kind, key)) or self._index.get((kind, ""))
        if rules is None:
            return self._unruled(kind, key, message)
        rule = rules[0] if len(rules) == 1 else _chosen(rules, message)
        if rule.schema.is_valid(message) and not self._common:
            return _NO_VIOLATIONS
        return self._checked((rule, *self._common), message)

    def _unruled(
        self, kind: str, key: str, message: Mapping[str, Any]
    ) -> tuple[FieldViolation, ...]:
        """A message no rule names: unplanned (a track, if so configured), COMMON rules."""
        errors = self._checked(self._common, message) if self._common else _NO_VIOLATIONS
        if kind == "track" and self.unplanned == "violation":
            unplanned = FieldViolation("event", "unplanned", f"{key!r} is not in the plan")
            return (unplanned, *errors)
        return errors

    @staticmethod
    def _checked(rules: tuple[Rule, ...], message: Mapping[str, Any]) -> tuple[FieldViolation, ...]:
        return tuple(
            error
            for rule in rules
            if not rule.schema.is_valid(message)
            for error in rule.schema.errors(message)
        )


def _version(rule: Rule) -> int:
    return rule.version


def _chosen(rules: tuple[Rule, ...], message: Mapping[str, Any]) -> Rule:
    protocols = (message.get("context") or {}).get("protocols")
    wanted = protocols.get("event_version") if isinstance(protocols, dict) else None
    return next((rule for rule in rules if rule.version == wanted), rules[0])


def _files(path: pathlib.Path) -> Iterator[pathlib.Path]:
    if path.is_dir():
        yield from sorted(p for p in path.rglob("*") if p.suffix in (*_YAML_SUFFIXES, ".json"))
    else:
        yield path


def _read(file: pathlib.Path) -> list[Any]:
    """The documents of *file* (JSON: one; YAML: one per ``---``)."""
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TrackingPlanError(str(file), "", f"cannot read: {exc}") from None
    if file.suffix not in _YAML_SUFFIXES:
        try:
            return [json.loads(text)]
        except json.JSONDecodeError as exc:
            where = f"line {exc.lineno} column {exc.colno}"
            raise TrackingPlanError(str(file), where, f"not JSON: {exc.msg}") from None
    try:
        import yaml  # noqa: PLC0415 - the optional [yaml] extra, only for YAML plans
    except ImportError:
        raise TrackingPlanError(
            str(file), "", "reading YAML needs PyYAML: pip install 'otel-segment[yaml]'"
        ) from None
    try:
        return [document for document in yaml.safe_load_all(text) if document is not None]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = "" if mark is None else f"line {mark.line + 1} column {mark.column + 1}"
        problem = getattr(exc, "problem", None) or str(exc)
        raise TrackingPlanError(str(file), where, f"not YAML: {problem}") from None


def _rules(documents: list[tuple[Any, str]], source: str) -> list[Rule]:
    for document, file in documents:
        if not isinstance(document, dict):
            raise TrackingPlanError(file, "", "a plan must be a mapping at the top")
    if any(document.get("kind") is not None for document, _ in documents):
        return rudderstack_rules(documents, source)
    rules: list[Rule] = []
    for document, file in documents:
        if "rules" in document or "data" in document:
            rules.extend(segment_rules(document, file))
        elif "events" in document or document.keys() & {"identify", "group"}:
            rules.extend(plain_rules(document, file))
        else:
            raise TrackingPlanError(
                file,
                "",
                "not a tracking plan: expected rules[] (Segment), kind: (RudderStack) "
                "or events: {...}",
            )
    return rules
