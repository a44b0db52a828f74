"""Development sessions: ``nox -s tests``, ``lint``, ``cover`` and ``bench``."""

from __future__ import annotations

import nox

PYPROJECT = nox.project.load_toml("pyproject.toml")

nox.options.sessions = ["tests", "lint"]
nox.options.reuse_existing_virtualenvs = True
# The tests run on every supported Python found on PATH; one that is missing is skipped.
nox.options.error_on_missing_interpreters = False


@nox.session(python=nox.project.python_versions(PYPROJECT))
def tests(session: nox.Session) -> None:
    """Run the test suite (pass pytest arguments after ``--``)."""
    session.install("-e.", *nox.project.dependency_groups(PYPROJECT, "test"))
    session.run("pytest", *session.posargs)


@nox.session(default=False)
def cover(session: nox.Session) -> None:
    """The test suite under coverage (in-process code; subprocess runs are not counted)."""
    session.install("-e.", "coverage[toml]", *nox.project.dependency_groups(PYPROJECT, "test"))
    session.run("coverage", "erase")
    session.run("coverage", "run", "-m", "pytest", *session.posargs)
    session.run("coverage", "combine", success_codes=[0, 1])
    session.run("coverage", "report", "--fail-under=94")


@nox.session
def lint(session: nox.Session) -> None:
    """Ruff (lint and format check) and mypy --strict."""
    session.install("-e.", *nox.project.dependency_groups(PYPROJECT, "lint"))
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("mypy", "--strict")


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmark otel_segment against segment-analytics-python; ``-- gateway``: the gateway."""
    session.install(".[gateway]", *nox.project.dependency_groups(PYPROJECT, "bench"))
    session.run("python", "bench/run.py", *session.posargs)
