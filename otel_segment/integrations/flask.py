"""
Flask: every request runs in an identity scope, and may send a ``page``.

::

    from otel_segment.integrations.flask import init_app
    init_app(app, page=True)

The scope is opened around Flask's WSGI app (so it covers the whole request, streamed
bodies and teardown included), and the user id is filled in by the first
``before_request`` function, once Flask's request context exists: ``identify()`` (no
arguments; it reads ``flask.request`` or ``flask_login.current_user``) is called there.
Without *identify*, an app using Flask-Login has ``current_user.get_id()`` of an
authenticated user as the user id, and ``login_user()`` during a request makes the new
user that of the messages made after it. Needs the ``flask`` extra.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from flask import current_app, request

from otel_segment.identity import scope_is_open, set_identity
from otel_segment.integrations import wsgi
from otel_segment.integrations._request import Settings, as_user_id, call_identify

if TYPE_CHECKING:
    from collections.abc import Callable

    from flask import Flask

    from otel_segment.pipeline.client import Client

__all__ = ["init_app", "login_user_id"]


def login_user_id() -> object:
    """
    The default ``identify``: Flask-Login's authenticated ``current_user.get_id()``.

    ``None`` when Flask-Login is not imported, the app has no login manager, or the
    user is anonymous.
    """
    if "flask_login" not in sys.modules or not hasattr(current_app, "login_manager"):
        return None
    from flask_login import current_user  # noqa: PLC0415 - only where the app uses it

    return current_user.get_id() if current_user.is_authenticated else None


def init_app(
    app: Flask,
    identify: Callable[[], object] | None = None,
    page: bool = False,
    *,
    client: Client | None = None,
    collect_ip: bool = True,
    trust_forwarded: bool = False,
) -> None:
    """
    Run each request of *app* in an identity scope; with *page*, send a ``page`` per request.

    Args:
        app: The Flask app.
        identify: ``callable() -> user id | None``, called in the request's context
            before the app's own ``before_request`` functions; default
            :func:`login_user_id`.
        page: Also send one ``page`` message per request (name: the URL rule, e.g.
            ``/items/<int:item_id>``, else the path).
        client: Where ``page`` messages go; default: the default client.
        collect_ip: Put the sender's address in ``context.ip``.
        trust_forwarded: Take it from the first ``X-Forwarded-For`` hop.

    Raises:
        TypeError: An option has the wrong type.

    .. versionadded:: 0.2.0
    """
    chosen = Settings(client, identify, page, collect_ip, trust_forwarded).identify
    who: Callable[[], object] = chosen or _login_identify(app)
    app.wsgi_app = wsgi.SegmentMiddleware(  # type: ignore[method-assign]
        app.wsgi_app,
        client=client,
        page=page,
        collect_ip=collect_ip,
        trust_forwarded=trust_forwarded,
    )

    def identify_request() -> None:
        if page:  # the page's name; only pages read it
            rule = request.url_rule
            if rule is not None:
                request.environ[wsgi.PAGE_NAME_KEY] = rule.rule
        if not scope_is_open():  # the request's identity could not be read
            return
        user_id = call_identify(who)
        if user_id is not None:
            set_identity(user_id=user_id)

    app.before_request_funcs.setdefault(None, []).insert(0, identify_request)
    if "flask_login" in sys.modules or _flask_login_installed():
        from flask_login import user_logged_in  # noqa: PLC0415 - optional

        user_logged_in.connect(_logged_in, app, weak=False)


def _login_identify(app: Flask) -> Callable[[], object]:
    """
    :func:`login_user_id`, once *app* is known to use Flask-Login; else ``None`` at once.

    Whether it does is settled at its first request, when Flask's setup is over (a login
    manager cannot be added later): a request then costs no proxy lookup that fails.
    """
    uses_login: list[bool] = []

    def identify() -> object:
        if not uses_login:
            uses_login.append("flask_login" in sys.modules and hasattr(app, "login_manager"))
        return login_user_id() if uses_login[0] else None

    return identify


def _flask_login_installed() -> bool:
    import importlib.util  # noqa: PLC0415 - only at init_app

    return importlib.util.find_spec("flask_login") is not None


def _logged_in(sender: object, user: Any = None, **extra: object) -> None:
    """``login_user()`` during a request: later messages are the new user's."""
    del sender, extra
    if user is None or not scope_is_open():
        return
    user_id = as_user_id(user.get_id(), "flask_login.login_user")
    if user_id is not None:
        set_identity(user_id=user_id)
