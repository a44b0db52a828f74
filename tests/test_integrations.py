"""Tests for otel_segment.integrations: frameworks are imported only by their own module."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

FRAMEWORKS = ("django", "flask", "flask_login", "celery", "starlette", "fastapi", "uvicorn")


class TestOptionalFrameworks:
    """import otel_segment, and the WSGI and ASGI middleware, import no framework."""

    def test_no_framework_is_imported(self) -> None:
        """A fresh interpreter: the package and both middlewares load no framework."""
        code = textwrap.dedent(
            f"""
            import sys
            import otel_segment
            import otel_segment.integrations.asgi
            import otel_segment.integrations.wsgi
            print(sorted(m for m in {FRAMEWORKS!r} if m in sys.modules))
            """
        )
        result = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            timeout=30,
            env={k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")},
            check=False,
        )

        assert 0 == result.returncode, result.stderr
        assert "[]" == result.stdout.strip()
