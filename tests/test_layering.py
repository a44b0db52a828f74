"""
The package's modules import only downwards (STYLE.md), checked with ``ast``.

sources (handler, otel, decorators and their private helpers) -> client ->
messages / batching / periodic -> encoding / retry / transport. ``_default`` sits on the
client; ``__init__`` may import anything; the command line (cli, __main__, sink and their
helpers) is on top and imported by nothing below it; sink needs only the standard library
and orjson.
Every import counts: module level, inside functions, and under ``TYPE_CHECKING``.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path
from typing import Final

import pytest

import otel_segment

PACKAGE: Final = Path(otel_segment.__file__).parent

LAYERS: Final = {
    "_version": 0,
    "_spool_db": 0,
    "_options": 0,
    "_lifecycle": 1,
    "_reporting": 1,
    "encoding": 1,
    "retry": 1,
    "transport": 1,
    "spool": 1,
    "messages": 2,
    "batching": 2,
    "periodic": 2,
    "spooled": 2,
    "_delivery": 2,
    "_spool_feed": 2,
    "client": 3,
    "_default": 4,
    "handler": 5,
    "otel": 5,
    "decorators": 5,
    "_arguments": 5,
    "_tracking": 5,
    "_otel_bridge": 5,
    "_otel_mapping": 5,
    "_otel_metrics": 5,
    "__init__": 6,
    "cli": 7,
    "__main__": 7,
    "sink": 7,
    "_demo": 7,
    "_replay": 7,
}
"""Each module's layer: a module imports modules of lower layers only."""

SOURCES: Final = 5
TOP: Final = 7

SIDEWAYS: Final = {
    ("transport", "retry"): "parse_retry_after(), a stdlib-only helper, reads Retry-After",
    ("_delivery", "messages"): "now_timestamp() stamps each body's sentAt",
    ("batching", "_delivery"): "the workers send each batch with send_batch()",
    ("_spool_feed", "batching"): "SpoolFeed is a BatchProcessor",
    ("spooled", "_spool_feed"): "SpooledProcessor is a SpoolFeed",
    ("spooled", "batching"): "SpooledProcessor is a BatchProcessor",
}
"""Imports within one layer, each with its reason (a source may also use private helpers)."""

UPWARD: Final = {
    ("client", "decorators"): "Client.tracked() is DESIGN.md's API; imported in the method",
}
"""Imports against the flow that the design itself asks for."""


def imported_modules(source: str) -> set[str]:
    """The package modules that *source* imports, anywhere in it."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "otel_segment":
                    found.add(parts[1] if len(parts) > 1 else "__init__")
        elif isinstance(node, ast.ImportFrom):
            # A relative import stays in the package (its modules are all top-level).
            module = (node.module or "").split(".") if node.module else []
            parts = ["otel_segment", *module] if node.level else module
            if not parts or parts[0] != "otel_segment":
                continue
            if len(parts) > 1:
                found.add(parts[1])
                continue
            for alias in node.names:
                is_module = (PACKAGE / f"{alias.name}.py").exists()
                found.add(alias.name if is_module else "__init__")
    return found


def package_modules() -> dict[str, set[str]]:
    """Every module of the package and the package modules it imports."""
    return {
        path.stem: imported_modules(path.read_text(encoding="utf-8")) - {path.stem}
        for path in sorted(PACKAGE.glob("*.py"))
    }


def violation(importer: str, imported: str) -> str | None:
    """Why *importer* may not import *imported*, or ``None`` if it may."""
    low, high = LAYERS[imported], LAYERS[importer]
    allowed = (
        low < high
        or (importer, imported) in SIDEWAYS
        or (importer, imported) in UPWARD
        or (low == high == SOURCES and imported.startswith("_"))
        or low == high == TOP
    )
    return None if allowed else f"{importer} (layer {high}) imports {imported} (layer {low})"


class TestLayering:
    """The package's import graph flows one way."""

    def test_every_module_has_a_layer(self) -> None:
        """A new module must be placed in LAYERS."""
        assert [] == sorted(set(package_modules()) - set(LAYERS))

    def test_imports_flow_downwards(self) -> None:
        """No module imports one above it (or beside it, unless listed)."""
        graph = package_modules()
        problems = [
            problem
            for importer, imported in sorted(graph.items())
            if importer in LAYERS
            for target in sorted(imported)
            if target in LAYERS and (problem := violation(importer, target))
        ]
        assert [] == problems

    def test_sink_stands_alone(self) -> None:
        """Sink imports the standard library and orjson, and of the package only the version."""
        tree = ast.parse((PACKAGE / "sink.py").read_text(encoding="utf-8"))
        names = {
            alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.Import)
            for alias in node.names
        }
        names |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        outside = {
            name
            for name in names
            if name.split(".")[0] not in sys.stdlib_module_names | {"__future__", "orjson"}
        }
        assert {"otel_segment._version"} == outside


class TestImportedModules:
    """The checker itself finds each form of import."""

    @pytest.mark.parametrize(
        ("source", "expected"),
        [
            ("import otel_segment", {"__init__"}),
            ("import otel_segment.client", {"client"}),
            ("from otel_segment import client", {"client"}),
            ("from otel_segment import Client", {"__init__"}),
            ("from otel_segment.client import Client", {"client"}),
            ("def f():\n    from otel_segment import handler", {"handler"}),
            ("if TYPE_CHECKING:\n    from otel_segment.batching import X", {"batching"}),
            ("from . import retry", {"retry"}),
            ("from .transport import HttpTransport", {"transport"}),
            ("import json\nfrom requests import Session", set()),
        ],
    )
    def test_forms(self, source: str, expected: set[str]) -> None:
        """Absolute, relative, nested and TYPE_CHECKING imports all count."""
        assert expected == imported_modules(source)

    def test_upward_import_is_caught(self) -> None:
        """The checker would flag the client importing the handler."""
        assert "client (layer 3) imports handler (layer 5)" == violation("client", "handler")
        assert violation("batching", "transport") is None
