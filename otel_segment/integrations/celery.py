"""
Celery: a task runs in the identity scope of the code that sent it.

::

    from otel_segment.integrations.celery import propagate_identity
    propagate_identity(celery_app)   # in the sending process and in the worker

When a task is sent inside an identity scope (a web request served by one of the
middlewares, or ``with otel_segment.identity(...)``), the scope's ids and context travel
in a task header; the worker opens the same scope around the task's run, so messages the
task makes are about the same user. Needs the ``celery`` extra.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from celery import Celery, signals

from otel_segment.identity import current_identity, identity

if TYPE_CHECKING:
    import contextlib

__all__ = ["HEADER", "propagate_identity"]

_logger = logging.getLogger("otel_segment")

HEADER: Final = "otel_segment_identity"
"""The task header with the sender's identity: ``{"user_id", "anonymous_id", "context"}``."""

_DISPATCH_UID: Final = "otel_segment.integrations.celery"

# The apps whose workers open scopes, and the scope open for each running task (by the
# task's id): prerun opens it and postrun, on the same thread, closes it.
_apps: list[Celery] = []
_open: dict[str, contextlib.AbstractContextManager[object]] = {}


def propagate_identity(celery_app: Celery) -> None:
    """
    Carry the identity scope of the code that sends a task into the task's run.

    Call it where the app is defined, so that both the senders and the workers do; a
    second call for the same app changes nothing.

    Raises:
        TypeError: *celery_app* is not a ``celery.Celery``.

    .. versionadded:: 0.2.0
    """
    if not isinstance(celery_app, Celery):
        raise TypeError(f"celery_app must be a celery.Celery, got {type(celery_app).__name__}")
    if celery_app not in _apps:
        _apps.append(celery_app)
    signals.before_task_publish.connect(_publish, weak=False, dispatch_uid=_DISPATCH_UID)
    signals.task_prerun.connect(_prerun, weak=False, dispatch_uid=_DISPATCH_UID)
    signals.task_postrun.connect(_postrun, weak=False, dispatch_uid=_DISPATCH_UID)


def _publish(headers: dict[str, Any] | None = None, **_: object) -> None:
    """Put the sender's identity in the task's headers."""
    current = current_identity()
    if current is None or headers is None:
        return
    headers[HEADER] = {
        "user_id": current.user_id,
        "anonymous_id": current.anonymous_id,
        "context": _plain(current.context),
    }


def _plain(value: object) -> Any:
    """*value* with mappings as dicts and other leaves JSON can hold as they are, else str."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def _prerun(task_id: str | None = None, task: Any = None, **_: object) -> None:
    """Open the sender's scope around the task's run."""
    if task_id is None or task is None or getattr(task, "app", None) not in _apps:
        return
    carried = getattr(task.request, HEADER, None)
    if carried is None:
        return
    try:
        scope = identity(carried["user_id"], carried["anonymous_id"], carried["context"])
    except (TypeError, KeyError):
        _logger.warning("task %s: malformed %s header; ignored", task_id, HEADER)
        return
    scope.__enter__()
    _open[task_id] = scope


def _postrun(task_id: str | None = None, **_: object) -> None:
    """Close the task's scope."""
    scope = _open.pop(task_id, None) if task_id is not None else None
    if scope is not None:
        scope.__exit__(None, None, None)
