"""Every example runs on its own against a local sink, so none can rot."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Final

import pytest

EXAMPLES: Final = Path(__file__).resolve().parent.parent / "examples"

RUN_ELSEWHERE: Final = {
    "decorators.py": "tests/test_decorators.py",
    "logging_dictconfig.py": "tests/test_handler_frontends.py",
    "logging_loguru.py": "tests/test_handler_frontends.py",
    "logging_structlog.py": "tests/test_handler_frontends.py",
    "otel_flask_app.py": "tests/test_otel_subprocess.py",
    "otel_logs.py": "tests/test_otel_subprocess.py",
    "otel_sampling.py": "tests/test_otel_subprocess.py",
    "otel_traces.py": "tests/test_otel_subprocess.py",
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
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEGMENT_")}
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
        tested_here = {"quickstart.py", *WEB_EXAMPLES}
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

    @pytest.mark.parametrize("example", sorted(WEB_EXAMPLES))
    def test_web_example(self, example: str) -> None:
        """Each web framework example serves its requests and shows the messages."""
        done = _run(example)

        assert 0 == done.returncode, done.stderr
        for text in WEB_EXAMPLES[example]:
            assert text in done.stdout
