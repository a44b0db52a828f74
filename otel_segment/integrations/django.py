"""
Django middleware: every request runs in an identity scope, and may send a ``page``.

In ``settings.py``::

    MIDDLEWARE = [
        ...,
        "django.contrib.auth.middleware.AuthenticationMiddleware",
        "otel_segment.integrations.django.SegmentMiddleware",  # after authentication
    ]
    OTEL_SEGMENT = {"write_key": "...", "flush_interval": 1.0}  # builds the default client
    OTEL_SEGMENT_MIDDLEWARE = {"page": True}  # the middleware's options, all optional

The user id is ``request.user.pk`` of an authenticated user, unless
``OTEL_SEGMENT_MIDDLEWARE["identify"]`` (a callable or its dotted path) says otherwise;
a user who logs in during the request (``django.contrib.auth.login``) is the user of the
messages made after it. The middleware is synchronous: under ASGI, Django runs it in
a thread as it does every synchronous middleware. Needs the ``django`` extra:
``pip install 'otel-segment[django]'``.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any, Final

from django.conf import settings as django_settings
from django.contrib.auth.signals import user_logged_in
from django.utils.module_loading import import_string

from otel_segment import _default
from otel_segment.identity import (
    close_scope,
    open_lazy_scope,
    scope_is_open,
    set_identity,
)
from otel_segment.integrations import wsgi
from otel_segment.integrations._request import (
    PageSender,
    RequestFacts,
    Settings,
    as_user_id,
    call_identify,
    lazy_fields,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from django.http import HttpRequest, HttpResponseBase

__all__ = ["SegmentMiddleware", "request_user_id"]

_logger = logging.getLogger("otel_segment")

_MIDDLEWARE_OPTIONS: Final = ("identify", "page", "collect_ip", "trust_forwarded")

# The OTEL_SEGMENT options the default client was last built from here, and that client:
# Django builds the middleware once per handler (the test client, once per Client), and
# the same settings must not replace a live default client each time.
_built: list[tuple[dict[str, Any], Any]] = []


def request_user_id(request: HttpRequest) -> object:
    """The default ``identify``: ``request.user.pk`` of an authenticated user, else ``None``."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return None
    return user.pk


class SegmentMiddleware:
    """
    Run each request in an identity scope; with ``page``, send a ``page`` per request.

    Options come from ``settings.OTEL_SEGMENT_MIDDLEWARE`` (the keyword arguments of
    :class:`otel_segment.integrations.wsgi.SegmentMiddleware` but ``client``:
    ``identify``, ``page``, ``collect_ip``, ``trust_forwarded``); the page's name is the
    URL pattern (``/items/<int:pk>/``), else the path. ``settings.OTEL_SEGMENT`` (client
    options), when set, builds the default client that page messages and the
    module-level calls use.

    Raises:
        TypeError: A setting has the wrong type.
        ValueError: ``OTEL_SEGMENT_MIDDLEWARE`` names an unknown option.

    .. versionadded:: 0.2.0
    """

    sync_capable = True
    async_capable = False

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response
        options = dict(getattr(django_settings, "OTEL_SEGMENT_MIDDLEWARE", None) or {})
        unknown = set(options) - set(_MIDDLEWARE_OPTIONS)
        if unknown:
            raise ValueError(f"OTEL_SEGMENT_MIDDLEWARE: unknown options {sorted(unknown)}")
        if isinstance(options.get("identify"), str):
            options["identify"] = import_string(options["identify"])
        self.settings: Final = Settings(None, **options)
        self._identify = self.settings.identify or request_user_id
        self._pages = PageSender(None) if self.settings.page else None
        _configure_default_client()
        user_logged_in.connect(_logged_in, dispatch_uid="otel_segment.integrations.django")

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        """Serve *request* inside its identity scope."""
        started = time.perf_counter()
        try:
            facts = wsgi.request_facts(request.META)
        except Exception:  # a malformed request: serve it without an identity scope
            _logger.warning("could not read the request's identity", exc_info=True)
            return self.get_response(request)
        user_id = call_identify(self._identify, request)
        # The anonymous id and context are made when a message first reads the scope.
        token = open_lazy_scope(user_id, _fields(request, facts, self.settings))
        status = 500
        try:
            response = self.get_response(request)
            status = response.status_code
        finally:
            if self._pages is not None:
                self._pages.send(_page_name(request), status, started)
            close_scope(token)
        return response


def _fields(
    request: HttpRequest, facts: RequestFacts, settings: Settings
) -> Callable[[], tuple[str | None, dict[str, Any]]]:
    """The scope's loader: the facts with Django's scheme (``SECURE_PROXY_SSL_HEADER``)."""

    def load() -> tuple[str | None, dict[str, Any]]:
        try:
            scheme = request.scheme or "http"
        except Exception:  # noqa: BLE001 - a malformed proxy header: the server's scheme
            scheme = facts.scheme
        return lazy_fields(facts._replace(scheme=scheme), settings)()

    return load


def _page_name(request: HttpRequest) -> str:
    match = getattr(request, "resolver_match", None)
    route = getattr(match, "route", None)
    if isinstance(route, str) and route:
        return route if route.startswith("/") else f"/{route}"
    return request.path or "/"


def _logged_in(sender: object, request: HttpRequest, user: Any, **kwargs: object) -> None:
    """``django.contrib.auth.login`` during a request: later messages are the new user's."""
    del sender, request, kwargs
    if not scope_is_open():
        return
    user_id = as_user_id(getattr(user, "pk", None), "django.contrib.auth.login")
    if user_id is not None:
        set_identity(user_id=user_id)


def _configure_default_client() -> None:
    """Build the default client from ``settings.OTEL_SEGMENT``, unless it already is."""
    options = getattr(django_settings, "OTEL_SEGMENT", None)
    if options is None:
        return
    if not isinstance(options, dict):
        raise TypeError(f"OTEL_SEGMENT must be a dict of client options, got {type(options)}")
    if _built and _built[-1][0] == options and _default.current() is _built[-1][1]:
        return
    client = _default.configure(**options)
    _built[:] = [(dict(options), client)]
