"""
ASGI 3 middleware: every HTTP request runs in an identity scope, and may send a ``page``.

::

    from otel_segment.integrations.asgi import SegmentMiddleware
    app.add_middleware(SegmentMiddleware, page=True)       # FastAPI, Starlette
    application = SegmentMiddleware(application)           # any ASGI 3 app

Lifespan and websocket scopes (and any other kind) pass through; when the app reports
its lifespan shutdown complete, the client is flushed first (uvicorn ends the process
on SIGTERM without running ``atexit``). The scope is
a scope opened around the app's call in the request's own task, so tasks the
app starts while serving it inherit it. Standard library only.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import quote

from otel_segment.identity import close_scope, open_lazy_scope
from otel_segment.integrations._request import (
    PageSender,
    RequestFacts,
    Settings,
    call_identify,
    lazy_fields,
)
from otel_segment.sources.clients import ClientRef

if TYPE_CHECKING:
    import contextvars

    from otel_segment.pipeline.client import Client

__all__ = ["SegmentMiddleware", "request_facts"]

_logger = logging.getLogger("otel_segment")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_WANTED: Final = {
    b"host": "host",
    b"cookie": "cookie",
    b"user-agent": "user_agent",
    b"accept-language": "accept_language",
    b"referer": "referer",
    b"x-forwarded-for": "forwarded_for",
}
_JOINERS: Final = {"cookie": "; ", "forwarded_for": ", "}
_PATH_SAFE: Final = "/:@!$&'()*+,;=~%"
_DEFAULT_PORTS: Final = {("http", 80), ("https", 443)}


class SegmentMiddleware:
    """
    Wrap an ASGI 3 app: each HTTP request runs in an identity scope of its sender.

    The same options, and the same scope, as
    :class:`otel_segment.integrations.wsgi.SegmentMiddleware`; *identify* is called
    with the ASGI scope, and a page's name is the route's path template when the
    framework records the route in the scope (Starlette and FastAPI do), else the path.

    Raises:
        TypeError: An option has the wrong type.

    .. versionadded:: 0.2.0
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        client: Client | None = None,
        identify: Callable[[Scope], object] | None = None,
        page: bool = False,
        collect_ip: bool = True,
        trust_forwarded: bool = False,
    ) -> None:
        if not callable(app):
            raise TypeError(f"app must be an ASGI callable, got {type(app).__name__}")
        self.app = app
        self.settings: Final = Settings(client, identify, page, collect_ip, trust_forwarded)
        self._pages = PageSender(client) if page else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one connection: an HTTP request inside its identity scope, others as they are."""
        kind = scope.get("type")
        opened = self._open_scope(scope) if kind == "http" else None
        if opened is None:
            await self.app(scope, receive, self._flushing(send) if kind == "lifespan" else send)
            return
        pages = self._pages
        if pages is None:  # nothing to learn from the response: pass send through
            try:
                await self.app(scope, receive, send)
            finally:
                close_scope(opened)
            return
        started = time.perf_counter()
        status = 500  # unless the app starts a response

        async def send_status(message: Message) -> None:
            nonlocal status
            if message.get("type") == "http.response.start":
                status = message.get("status", 500)
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            try:
                pages.send(_page_name(scope), status, started)
            finally:
                close_scope(opened)

    def _flushing(self, send: Send) -> Send:
        """*send*, flushing the client first when the app reports its shutdown complete."""

        async def send_after_flush(message: Message) -> None:
            if message.get("type") == "lifespan.shutdown.complete":
                await _flush(self.settings.client)
            await send(message)

        return send_after_flush

    def _open_scope(self, scope: Scope) -> contextvars.Token[Any] | None:
        settings = self.settings
        try:
            facts = request_facts(scope)
        except Exception:  # a malformed scope: serve the request without an identity scope
            _logger.warning("could not read the request's identity", exc_info=True)
            return None
        user_id = None if settings.identify is None else call_identify(settings.identify, scope)
        # The anonymous id and context are made when a message first reads the scope.
        return open_lazy_scope(user_id, lazy_fields(facts, settings))


async def _flush(client: Client | None) -> None:
    """
    Flush *client* (else the default client, if built) off the event loop.

    Servers may end the process without running ``atexit`` (uvicorn re-raises the SIGTERM
    it handled, with the default action), so what is queued goes now.
    """
    client = ClientRef(client).current()
    if client is None or client.closed:
        return
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:  # another event loop (trio): the server is stopping anyway
        client.flush(client.config.exit_timeout)
        return
    await loop.run_in_executor(None, client.flush, client.config.exit_timeout)


def request_facts(scope: Scope) -> RequestFacts:
    """
    What an ASGI HTTP *scope* says about the request's sender.

    Raises:
        Exception: The scope is malformed (headers are not byte pairs, ...).
    """
    found: dict[str, str] = {}
    for name, value in scope.get("headers", ()):
        field = _WANTED.get(name.lower())
        if field is not None:
            text = value.decode("latin-1")
            found[field] = f"{found[field]}{_JOINERS[field]}{text}" if field in found else text
    scheme = scope.get("scheme", "http")
    host = found.pop("host", None)
    server = scope.get("server")
    if host is None and server is not None and server[1] is not None:
        default = (scheme, server[1]) in _DEFAULT_PORTS
        host = str(server[0]) if default else f"{server[0]}:{server[1]}"
    client = scope.get("client")
    return RequestFacts(
        scheme=scheme,
        host=host,
        path=_raw_path(scope),
        query=scope.get("query_string", b"").decode("latin-1"),
        remote_addr=None if client is None else str(client[0]),
        **found,
    )


def _raw_path(scope: Scope) -> str:
    raw = scope.get("raw_path")
    if raw:
        return bytes(raw).decode("latin-1").split("?", 1)[0]
    path: str = scope.get("path") or "/"
    return quote(path.encode("utf-8"), safe=_PATH_SAFE)


def _page_name(scope: Scope) -> str:
    """The route's path template (Starlette, FastAPI), else the request's path."""
    template = getattr(scope.get("route"), "path", None)
    if isinstance(template, str) and template:
        return template
    path = scope.get("path")
    return path if isinstance(path, str) and path else "/"
