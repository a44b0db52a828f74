"""Every example runs on its own against a local sink, so none can rot."""

from __future__ import annotations

import ast
import importlib.util
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Final

import pytest

EXAMPLES: Final = Path(__file__).resolve().parent.parent / "examples"

RUN_ELSEWHERE: Final = {
    "data_quality.py": "tests/test_hooks.py",
    "decorators.py": "tests/test_decorators.py",
    "logging_dictconfig.py": "tests/test_handler_frontends.py",
    "logging_loguru.py": "tests/test_handler_frontends.py",
    "logging_structlog.py": "tests/test_handler_frontends.py",
    "testing_analytics.py": "tests/test_testing.py",
}
"""Examples whose run, and expected output, is checked beside the feature they show."""


WEB_EXAMPLES: Final = {
    "web_django.py": ["-> 200", '"Checkout Started"', 'anon=anon-7  "/checkout/<str:plan>/"'],
    "web_flask.py": [
        "POST /projects -> 201",
        '"Project Created"',
        'user=u1 anon=anon-7  "/projects"',
    ],
    "web_fastapi.py": ["-> 200", 'user=u1 anon=anon-7  "Report Viewed"', '"/reports/{report_id}"'],
    "web_celery.py": ["task ran for user u1", 'user=u1 anon=-  "Invoice Sent"', "ip=203.0.113.9"],
}
"""The web framework examples, and what each prints."""


def _run(name: str) -> subprocess.CompletedProcess[str]:
    """Run one example with no write key in the environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SEGMENT_", "OTEL_"))}
    return subprocess.run(
        [sys.executable, str(EXAMPLES / name)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


class TestExamples:
    """examples/ stays runnable."""

    def test_every_example_is_run_by_a_test(self) -> None:
        """A new example must be run by a test: here, or listed with the test that runs it."""
        tested_here = {
            "quickstart.py",
            *WEB_EXAMPLES,
            *(p.name for p in EXAMPLES.glob("otel_*.py")),
        }
        assert sorted(tested_here | set(RUN_ELSEWHERE)) == sorted(
            p.name for p in EXAMPLES.glob("*.py")
        )

    def test_quickstart(self) -> None:
        """The quick start prints one line per message type it sent, and clean stats."""
        done = _run("quickstart.py")

        assert 0 == done.returncode, done.stderr
        kinds = [line.split()[0] for line in done.stdout.splitlines()[:-1]]
        assert ["identify", "track", "page", "group", "alias", "track"] == kinds
        assert "'delivered': 6" in done.stdout
        assert "'failed': 0" in done.stdout

    @pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.py")), ids=lambda p: p.name)
    def test_says_how_to_run_it(self, path: Path) -> None:
        """Each example's docstring gives the command that runs it (and the extra it needs)."""
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
        needs_extra = bool(third_party_imports(path))

        assert f"python examples/{path.name}" in doc
        assert needs_extra == ("pip install 'otel-segment[examples]'" in doc)

    def test_one_extra_installs_every_dependency(self) -> None:
        """What the examples import beyond the base install is in the ``examples`` extra."""
        project = tomllib.loads((EXAMPLES.parent / "pyproject.toml").read_text())["project"]
        extra = {_name(spec) for spec in project["optional-dependencies"]["examples"]}
        imported = set().union(*(third_party_imports(p) for p in EXAMPLES.glob("*.py")))

        web = {"django", "flask-login", "fastapi", "starlette", "celery"}
        assert {
            "structlog",
            "loguru",
            "flask",
            "opentelemetry-instrumentation-flask",
        } | web == imported
        assert imported <= extra

    @pytest.mark.parametrize(
        ("example", "expected"),
        [
            (
                "otel_traces.py",
                ['"Order Completed"', '"Coupon Applied"', "{plan=pro}", "error=true"],
            ),
            ("otel_sampling.py", ["requests: 200", "segment: 200 'Signed Up' events"]),
            ("otel_logs.py", ['"Invoice Paid"', "amount=99.0", "identify  user=u1", "trace_id="]),
            ("otel_flask_app.py", ["-> 201", '"Order Completed"', "order_id=o-17"]),
        ],
    )
    def test_otel_example(self, example: str, expected: list[str]) -> None:
        """Each examples/otel_*.py exits 0 and shows the messages Segment received."""
        if example == "otel_flask_app.py" and not all(
            importlib.util.find_spec(name)
            for name in ("flask", "opentelemetry.instrumentation.flask")
        ):
            pytest.skip("needs the examples extra (flask, opentelemetry-instrumentation-flask)")
        result = _run(example)

        assert 0 == result.returncode, result.stderr
        for text in expected:
            assert text in result.stdout

    @pytest.mark.parametrize("example", sorted(WEB_EXAMPLES))
    def test_web_example(self, example: str) -> None:
        """Each web framework example serves its requests and shows the messages."""
        done = _run(example)

        assert 0 == done.returncode, done.stderr
        for text in WEB_EXAMPLES[example]:
            assert text in done.stdout


BASE: Final = ("otel_segment", "opentelemetry.sdk", "opentelemetry", "requests", "orjson")
"""Import roots the base install provides (with the standard library)."""

DISTRIBUTIONS: Final = {
    "opentelemetry.instrumentation.flask": "opentelemetry-instrumentation-flask",
    "flask_login": "flask-login",
}
"""Distribution names of modules whose name differs."""


def third_party_imports(path: Path) -> set[str]:
    """The distributions *path* imports that the base install does not provide."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = (
            [alias.name for alias in node.names]
            if isinstance(node, ast.Import)
            else [node.module or ""]
            if isinstance(node, ast.ImportFrom) and not node.level
            else []
        )
        for name in names:
            if name in DISTRIBUTIONS:
                found.add(DISTRIBUTIONS[name])
            elif name.split(".")[0] not in {*sys.stdlib_module_names, "__future__"} and not (
                name.startswith("opentelemetry") or name.split(".")[0] in BASE
            ):
                found.add(name.split(".")[0])
    return found


def _name(spec: str) -> str:
    """The distribution name of a requirement such as ``flask>=3.0``."""
    return re.split(r"[<>=!~\[; ]", spec, maxsplit=1)[0].lower()
