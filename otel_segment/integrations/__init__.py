"""
Web frameworks and task queues: each request or task runs in an identity scope.

- :mod:`.wsgi` and :mod:`.asgi`: ``SegmentMiddleware`` for any WSGI or ASGI 3 app
  (FastAPI and Starlette take the ASGI one with ``app.add_middleware``).
- :mod:`.django`: ``"otel_segment.integrations.django.SegmentMiddleware"`` in ``MIDDLEWARE``.
- :mod:`.flask`: ``init_app(app)``.
- :mod:`.celery`: ``propagate_identity(celery_app)``.

Importing this package imports no framework; each module imports its own when it is
imported, and ``import otel_segment`` imports none of them.
"""

from __future__ import annotations
