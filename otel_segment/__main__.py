"""``python -m otel_segment``: the command line."""

from otel_segment.cli import main

raise SystemExit(main())
