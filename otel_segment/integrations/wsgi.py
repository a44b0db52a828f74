"""
WSGI middleware: every request runs in an identity scope, and may send a ``page``.

::

    from otel_segment.integrations.wsgi import SegmentMiddleware
    application = SegmentMiddleware(application, identify=lambda environ: ..., page=True)

The scope lives in a :class:`contextvars.Context` of the request's own, entered for the
app's call and for each chunk of its body, so a streamed body is inside it too and the
server's context never changes. Standard library only.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import re
import time
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import quote

from otel_segment.identity import open_lazy_scope
from otel_segment.integrations._request import (
    PageSender,
    RequestFacts,
    Settings,
    call_identify,
    lazy_fields,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator
    from types import TracebackType

    from otel_segment.pipeline.client import Client

    Environ = dict[str, Any]
    StartResponse = Callable[..., Callable[[bytes], object]]
    WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]
    ExcInfo = tuple[type[BaseException], BaseException, TracebackType] | tuple[None, None, None]

__all__ = ["PAGE_NAME_KEY", "SegmentMiddleware", "request_facts"]

_logger = logging.getLogger("otel_segment")

PAGE_NAME_KEY: Final = "otel_segment.page_name"
"""An environ key a framework may set during the request: the page's name (its route)."""

_PATH_SAFE: Final = "/:@!$&'()*+,;=~%"
_PLAIN_PATH: Final = re.compile(r"[A-Za-z0-9_.\-~/:@!$&'()*+,;=]*")
"""A path that quoting would leave as it is."""
_DEFAULT_PORTS: Final = {("http", "80"), ("https", "443")}


class SegmentMiddleware:
    """
    Wrap a WSGI app: each request runs in an identity scope of its sender.

    The scope holds the anonymous id of analytics.js's ``ajs_anonymous_id`` cookie, the
    user id ``identify(environ)`` returns, and a context with ``ip``, ``userAgent``,
    ``locale`` and ``page``; messages made while the request is served carry them.

    Args:
        app: The WSGI app.
        client: Where ``page`` messages go; default: the default client.
        identify: ``callable(environ) -> user id | None``; if it raises or returns
            something that is not a string, int or UUID, the request has no user id
            (and a warning is logged).
        page: Also send one ``page`` message per request when its response is done
            (name: the route a framework names under ``environ[PAGE_NAME_KEY]``, else
            the path; properties: ``path``, ``url``, ``search``, ``referrer``, ``status``,
            ``duration_ms``).
        collect_ip: Put the sender's address in ``context.ip``.
        trust_forwarded: Take that address from the first ``X-Forwarded-For`` hop (only
            behind a proxy that sets it: anyone can send the header).

    Raises:
        TypeError: An option has the wrong type.

    .. versionadded:: 0.2.0
    """

    def __init__(
        self,
        app: WSGIApp,
        *,
        client: Client | None = None,
        identify: Callable[[Environ], object] | None = None,
        page: bool = False,
        collect_ip: bool = True,
        trust_forwarded: bool = False,
    ) -> None:
        if not callable(app):
            raise TypeError(f"app must be a WSGI callable, got {type(app).__name__}")
        self.app = app
        self.settings: Final = Settings(client, identify, page, collect_ip, trust_forwarded)
        self._pages = PageSender(client) if page else None

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        """Serve one request inside its identity scope."""
        context = self._request_context(environ)
        if context is None:  # a malformed environ: served without a scope
            return self.app(environ, start_response)
        if self._pages is None:
            body = context.run(self.app, environ, start_response)
            # A list's chunks are made already: only other bodies run app code later.
            return body if isinstance(body, list) else _Body(body, context, None)
        request = _Request(self._pages, environ)

        def start(
            status: str, headers: list[tuple[str, str]], exc_info: ExcInfo | None = None
        ) -> Any:
            request.status = status
            return start_response(status, headers, exc_info)

        try:
            body = context.run(self.app, environ, start)
        except BaseException:
            context.run(request.finish)
            raise
        return _Body(body, context, request)

    def _request_context(self, environ: Environ) -> contextvars.Context | None:
        """
        A copy of the server's context with the request's scope open in it.

        ``None`` if the environ cannot be read. The scope is opened in the copy only,
        never in the server's context: the copy is the request's alone and is dropped
        with it, so there is nothing to close however the server ends the request.
        """
        settings = self.settings
        try:
            facts = request_facts(environ)
        except Exception:
            _logger.warning("could not read the request's identity", exc_info=True)
            return None
        user_id = None if settings.identify is None else call_identify(settings.identify, environ)
        context = contextvars.copy_context()
        # The anonymous id and context are made when a message first reads the scope.
        context.run(open_lazy_scope, user_id, lazy_fields(facts, settings))
        return context


def request_facts(environ: Environ) -> RequestFacts:
    """
    What a WSGI *environ* says about the request's sender.

    Raises:
        Exception: The environ is malformed (its values are not strings).
    """
    get = environ.get
    scheme = get("wsgi.url_scheme", "http")
    host = get("HTTP_HOST")
    if host is None and "SERVER_NAME" in environ:
        port = str(get("SERVER_PORT", ""))
        default = (scheme, port) in _DEFAULT_PORTS or not port
        host = str(get("SERVER_NAME")) + ("" if default else f":{port}")
    path = (get("SCRIPT_NAME", "") + get("PATH_INFO", "")) or "/"
    return RequestFacts(
        scheme=scheme,
        host=host,
        # PEP 3333: the path is decoded bytes, as Latin-1; the page shows it as it was sent.
        path=path
        if _PLAIN_PATH.fullmatch(path)
        else quote(path.encode("latin-1"), safe=_PATH_SAFE),
        query=get("QUERY_STRING", ""),
        remote_addr=get("REMOTE_ADDR"),
        cookie=get("HTTP_COOKIE"),
        user_agent=get("HTTP_USER_AGENT"),
        accept_language=get("HTTP_ACCEPT_LANGUAGE"),
        referer=get("HTTP_REFERER"),
        forwarded_for=get("HTTP_X_FORWARDED_FOR"),
    )


class _Request:
    """One request's state: its status, and the page sent when it is done."""

    __slots__ = ("environ", "pages", "started", "status")

    def __init__(self, pages: PageSender | None, environ: Environ) -> None:
        self.pages = pages
        self.environ = environ
        self.started = time.perf_counter()
        self.status: str | None = None

    def finish(self) -> None:
        """Send the page, if asked for, once: called in the request's context."""
        pages, self.pages = self.pages, None
        if pages is not None:
            pages.send(self._name(), self._status(), self.started)

    def _name(self) -> str:
        name = self.environ.get(PAGE_NAME_KEY)
        if isinstance(name, str) and name:
            return name
        return (self.environ.get("SCRIPT_NAME", "") + self.environ.get("PATH_INFO", "")) or "/"

    def _status(self) -> int:
        """The response's status code; 500 if the app failed before it started one."""
        try:
            return int(str(self.status).split(" ", 1)[0])
        except ValueError:
            return 500


class _Body:
    """
    The app's response body, each chunk made inside the request's context.

    The page is sent when the body is exhausted or closed, whichever comes first, or at
    the latest when it is collected (a test client may do neither).
    """

    __slots__ = ("_body", "_context", "_request")

    def __init__(
        self, body: Iterable[bytes], context: contextvars.Context, request: _Request | None
    ) -> None:
        self._body = body
        self._context = context
        self._request = request

    def __iter__(self) -> Iterator[bytes]:
        """The body's chunks."""
        run = self._context.run
        chunks = run(iter, self._body)
        while True:
            try:
                chunk = run(next, chunks)
            except StopIteration:
                if self._request is not None:
                    run(self._request.finish)
                return
            yield chunk

    def close(self) -> None:
        """Close the app's body, then send the page (PEP 3333)."""
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                self._context.run(close)
        finally:
            if self._request is not None:
                self._context.run(self._request.finish)

    def __del__(self) -> None:
        """A server that never closed the body (PEP 3333 says it must): send the page now."""
        if self._request is not None and self._request.pages is not None:
            with contextlib.suppress(RuntimeError):  # the context is entered elsewhere
                self._context.run(self._request.finish)
