"""
The package's imports flow one way (STYLE.md), checked with ``ast``.

The package is a stack of units — top-level modules and folders — each of a rank:
a module imports modules of its own unit or of lower ranks only, and the import graph
of all modules has no cycle (so within a folder, too, imports flow one way). Every
import counts: module level, inside functions, and under ``TYPE_CHECKING``.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path
from typing import Final

import pytest

import otel_segment

PACKAGE: Final = Path(otel_segment.__file__).parent

RANKS: Final = {
    "_version": 0,
    "_json": 0,
    "errors": 0,
    "sink": 1,
    "identity": 1,
    "plans": 1,
    "pipeline": 2,
    "_default": 3,
    "sources": 4,
    "testing": 5,
    "__init__": 6,
    "integrations": 7,
    "gateway": 8,
    "cli": 9,
    "__main__": 10,
}
"""Each unit's rank: data flows from sources through the pipeline to the wire; the command
line, integrations and the gateway sit on top; ``sink`` stands alone."""


def module_name(path: Path) -> str:
    """The dotted name of the module at *path*, without the package prefix."""
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts.pop()
    return ".".join(parts)


def all_modules() -> dict[str, Path]:
    """Every module of the package, by dotted name (``__init__`` for the package itself)."""
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def unit(module: str) -> str:
    """The unit (top-level module or folder) *module* belongs to."""
    return module.split(".", maxsplit=1)[0]


def resolve(name: str, modules: set[str]) -> str | None:
    """The package module *name* (dotted, after ``otel_segment.``) denotes, if any."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def imported_modules(source: str, here: str, modules: set[str]) -> set[str]:
    """The package modules that *source* (module *here*) imports, anywhere in it."""
    package_of_here = (
        here if (PACKAGE / here.replace(".", "/")).is_dir() else here.rpartition(".")[0]
    )
    found: set[str | None] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(_target(alias.name, modules) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package_of_here.split(".") if package_of_here else []
                base = base[: len(base) - node.level + 1] if node.level > 1 else base
                module = ".".join(["otel_segment", *base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            for alias in node.names:  # a submodule if one has the name, else the module
                name = f"{module}.{alias.name}"
                exact = _target(name, modules) == name.removeprefix("otel_segment.")
                found.add(_target(name if exact else module, modules))
    return {name for name in found if name is not None and name != here}


def _target(name: str, modules: set[str]) -> str | None:
    """The package module an absolute dotted *name* denotes (``None``: not ours)."""
    parts = name.split(".")
    if parts[0] != "otel_segment":
        return None
    return resolve(".".join(parts[1:]), modules) or "__init__"


def import_graph() -> dict[str, set[str]]:
    """Every module and the package modules it imports."""
    modules = all_modules()
    names = set(modules)
    return {
        name: imported_modules(path.read_text(encoding="utf-8"), name, names)
        for name, path in modules.items()
    }


def violation(importer: str, imported: str) -> str | None:
    """Why *importer* may not import *imported*, or ``None`` if it may."""
    high, low = RANKS[unit(importer)], RANKS[unit(imported)]
    if unit(importer) == unit(imported) or low < high:
        return None
    return f"{importer} (rank {high}) imports {imported} (rank {low})"


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import cycles of *graph* (one path per cycle found by depth-first search)."""
    found: list[list[str]] = []
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                found.append([*path[path.index(target) :], target])
            elif target not in state:
                visit(target, [*path, target])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    return found


class TestLayering:
    """The package's import graph flows one way."""

    def test_every_unit_has_a_rank(self) -> None:
        """A new top-level module or folder must be placed in RANKS."""
        assert [] == sorted({unit(name) for name in all_modules()} - set(RANKS))

    def test_imports_flow_downwards(self) -> None:
        """No module imports one of a higher-ranked unit."""
        problems = [
            problem
            for importer, imported in sorted(import_graph().items())
            for target in sorted(imported)
            if (problem := violation(importer, target))
        ]
        assert [] == problems

    def test_no_import_cycles(self) -> None:
        """No chain of imports comes back to where it started, within a folder or across."""
        graph = import_graph()
        graph.pop("__init__")  # every module's parent package: imports are checked above it
        assert [] == cycles({name: targets - {"__init__"} for name, targets in graph.items()})

    def test_sink_stands_alone(self) -> None:
        """Sink imports the standard library and orjson; of the package, the version and _json."""
        names: set[str] = set()
        for path in sorted((PACKAGE / "sink").glob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            names |= {
                alias.name
                for node in ast.walk(tree)
                if isinstance(node, ast.Import)
                for alias in node.names
            }
            names |= {
                node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
            }
        outside = {
            name
            for name in names
            if name.split(".")[0] not in sys.stdlib_module_names | {"__future__", "orjson"}
            and not name.startswith("otel_segment.sink.")
        }
        assert {"otel_segment._json", "otel_segment._version"} == outside

    def test_modules_stay_small(self) -> None:
        """No module is over ~400 lines (STYLE.md): a longer one is split by concept."""
        long = {
            name
            for name, path in all_modules().items()
            if len(path.read_text(encoding="utf-8").splitlines()) > 420
        }
        assert set() == long


MODULES: Final = {
    "__init__",
    "pipeline",
    "sources",
    "pipeline.client",
    "pipeline.batching",
    "sources.handler",
    "errors",
}


class TestImportedModules:
    """The checker itself finds each form of import."""

    @pytest.mark.parametrize(
        ("source", "expected"),
        [
            ("import otel_segment", {"__init__"}),
            ("import otel_segment.pipeline.client", {"pipeline.client"}),
            ("from otel_segment.pipeline import client", {"pipeline.client"}),
            ("from otel_segment import Client", {"__init__"}),
            ("from otel_segment.pipeline.client import Client", {"pipeline.client"}),
            ("def f():\n    from otel_segment.sources import handler", {"sources.handler"}),
            (
                "if TYPE_CHECKING:\n    from otel_segment.pipeline.batching import X",
                {"pipeline.batching"},
            ),
            ("from . import batching", {"pipeline.batching"}),
            ("from .client import Client", {"pipeline.client"}),
            ("from ..errors import DeliveryError", {"errors"}),
            ("import json\nfrom requests import Session", set()),
        ],
    )
    def test_forms(self, source: str, expected: set[str]) -> None:
        """Absolute, relative, nested and TYPE_CHECKING imports all count."""
        assert expected == imported_modules(source, "pipeline.retry", MODULES)

    def test_upward_import_is_caught(self) -> None:
        """The checker would flag the client importing the handler."""
        assert "pipeline.client (rank 2) imports sources.handler (rank 4)" == violation(
            "pipeline.client", "sources.handler"
        )
        assert violation("pipeline.batching", "errors") is None

    def test_cycle_is_caught(self) -> None:
        """A two-module loop is found."""
        assert [["a", "b", "a"]] == cycles({"a": {"b"}, "b": {"a"}})
