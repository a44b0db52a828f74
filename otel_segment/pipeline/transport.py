"""
One HTTP POST of one batch body; the outcome is returned, never retried here.

Each request runs with OpenTelemetry instrumentation suppressed, so an instrumented
``requests`` makes no span for our own uploads.
"""

from __future__ import annotations

import base64
import dataclasses
import gzip as gzip_module
import importlib
import logging
import os
import re
from typing import TYPE_CHECKING, Final

import requests
from opentelemetry import context as otel_context

from otel_segment._version import __version__
from otel_segment.pipeline.oauth import TokenFailure
from otel_segment.pipeline.retry import parse_retry_after

if TYPE_CHECKING:
    from otel_segment.pipeline.oauth import TokenSource

__all__ = ["HttpTransport", "Outcome"]

_logger = logging.getLogger("otel_segment")

USER_AGENT: Final = f"otel-segment/{__version__}"
"""The ``User-Agent`` of every request."""

_SECRET_MIN_CHARS: Final = 8
# Statuses after which analytics-python drops its OAuth token: the next attempt gets a new one.
_TOKEN_REFUSED: Final = frozenset({400, 401, 403, 511})
_ERRNO: Final = re.compile(r"\[Errno -?\d+\] [^'\")]+")
_SUPPRESS_KEY: Final = otel_context._SUPPRESS_INSTRUMENTATION_KEY  # noqa: SLF001 - the API's own key


@dataclasses.dataclass(frozen=True, slots=True)
class Outcome:
    """
    What one POST came to.

    Args:
        status: The HTTP status, or ``None`` when no response arrived.
        retry_after: The server's ``Retry-After`` in seconds, if any.
        error: A short description of the failure, ``None`` on success.
    """

    status: int | None
    retry_after: float | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the server accepted the batch (2xx)."""
        return self.status is not None and 200 <= self.status < 300  # noqa: PLR2004


class HttpTransport:
    """
    POSTs batch bodies to ``{host}/v1/batch`` over one keep-alive session.

    Args:
        write_key: Sent as HTTP Basic user name (the body carries it too).
        host: Base URL, e.g. ``https://api.segment.io``.
        gzip: Compress bodies.
        timeout: Seconds for connecting and for each read.
        proxies: As for ``requests``.
        verify: TLS verification: ``True``, ``False`` or a CA bundle path.
        cert: A client certificate path, or a ``(cert, key)`` pair (mTLS).
        tokens: OAuth access tokens; when given, requests carry ``Authorization: Bearer``
            instead of the write key's Basic auth.
    """

    def __init__(
        self,
        write_key: str,
        host: str,
        *,
        gzip: bool = False,
        timeout: float = 15.0,
        proxies: dict[str, str] | None = None,
        verify: bool | str = True,
        cert: str | tuple[str, str] | None = None,
        tokens: TokenSource | None = None,
    ) -> None:
        self.url = host.rstrip("/") + "/v1/batch"
        self._gzip = gzip
        self._timeout = timeout
        self._proxies = proxies
        self._verify = verify
        self._cert = cert
        self._tokens = tokens
        token = base64.b64encode(f"{write_key}:".encode()).decode("ascii")
        # kept out of error text; a key too short to be real ("bad") would garble it
        self._secrets = (write_key, token) if len(write_key) >= _SECRET_MIN_CHARS else ()
        self._headers = {
            "Authorization": f"Basic {token}",
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
        }
        if gzip:
            self._headers["Content-Encoding"] = "gzip"
        _import_lazy_modules()
        self._session = self._new_session()

    def __repr__(self) -> str:
        """Show the endpoint, never the write key."""
        return f"HttpTransport(url={self.url!r}, gzip={self._gzip})"

    def _new_session(self) -> requests.Session:
        session = requests.Session()
        session.headers.clear()
        # The environment's proxies and CA bundle are read once per session, as requests
        # would read them for this URL: per request they cost 40 % of a batch's CPU.
        # Explicit proxies ignore the environment, as before.
        session.trust_env = False
        if self._proxies is not None:
            session.proxies.update(self._proxies)
            session.verify = self._verify
        else:
            session.proxies.update(_environment_proxies(self.url))
            session.verify = _environment_verify(self._verify)
        session.cert = self._cert
        return session

    def post(self, body: bytes, *, retry_count: int = 0) -> Outcome:
        """
        Send one batch body; report what happened without raising.

        With OAuth, a token is fetched first if none is cached (or it is due for renewal);
        a token server that fails or refuses makes the outcome of this attempt.

        Args:
            body: The uncompressed JSON body.
            retry_count: How many attempts came before this one (``X-Retry-Count``).
        """
        data = gzip_module.compress(body, compresslevel=6) if self._gzip else body
        token = otel_context.attach(otel_context.set_value(_SUPPRESS_KEY, value=True))
        try:
            return self._post(data, retry_count)
        finally:
            otel_context.detach(token)

    def _post(self, data: bytes, retry_count: int) -> Outcome:
        headers = self._headers
        if self._tokens is not None:
            authorization = self._tokens.authorization()
            if isinstance(authorization, TokenFailure):  # the retry policy decides, as for a POST
                failure = authorization
                return Outcome(
                    failure.status, retry_after=failure.retry_after, error=failure.reason
                )
            headers = {**headers, "Authorization": authorization}
        if retry_count:
            headers = {**headers, "X-Retry-Count": str(retry_count)}
        try:
            response = self._session.post(
                self.url, data=data, headers=headers, timeout=self._timeout
            )
        except requests.Timeout as exc:
            return Outcome(None, error=f"timed out after {self._timeout} s ({type(exc).__name__})")
        except requests.ConnectionError as exc:
            return Outcome(None, error=f"connection failed: {_os_error(exc)}")
        except OSError as exc:  # requests' errors, and its plain OSError for a bad cert path
            return Outcome(None, error=f"{type(exc).__name__}: {_first_line(exc)}")
        with response:
            if 200 <= response.status_code < 300:  # noqa: PLR2004
                return Outcome(response.status_code)
            return self._failure(response)

    def _failure(self, response: requests.Response) -> Outcome:
        detail = response.text
        for secret in self._secrets:  # a server may quote the key back
            detail = detail.replace(secret, "<write key>")
        if self._tokens is not None:
            detail = self._tokens.scrub(detail)
            if response.status_code in _TOKEN_REFUSED:
                self._tokens.invalidate()
        detail = detail[:200].strip()
        return Outcome(
            response.status_code,
            retry_after=parse_retry_after(response.headers.get("Retry-After")),
            error=f"HTTP {response.status_code} {response.reason}: {detail}".rstrip(": "),
        )

    def reset_after_fork(self) -> None:
        """Drop the parent's connections (never closed here: they are the parent's)."""
        self._session = self._new_session()
        if self._tokens is not None:
            self._tokens.reset_after_fork()

    def close(self) -> None:
        """Close the session's connections."""
        self._session.close()
        if self._tokens is not None:
            self._tokens.close()


def _environment_proxies(url: str) -> dict[str, str]:
    """The proxies of ``$HTTPS_PROXY`` & co. for *url* (none when ``$NO_PROXY`` covers it)."""
    return dict(requests.utils.get_environ_proxies(url))


def _environment_verify(verify: bool | str) -> bool | str:
    """For ``verify=True``: ``$REQUESTS_CA_BUNDLE``, else ``$CURL_CA_BUNDLE``, as requests."""
    if verify is not True:
        return verify
    return os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True


def _import_lazy_modules() -> None:
    """
    Import now, before any fork, what the HTTP stack imports on its first request.

    requests imports ``netrc`` (and with it ``shlex``) inside its first request, for its
    netrc lookup. A process forked while a worker holds that import's lock has a child
    whose own first request waits on it forever (seen in about 1 of 20 forks).
    """
    importlib.import_module("netrc")
    importlib.import_module("encodings.idna")  # the codec of socket.getaddrinfo(host)


def _os_error(exc: BaseException) -> str:
    """The operating system's reason inside a wrapped connection error, if there is one."""
    match = _ERRNO.search(str(exc))
    return match.group(0).strip() if match else _first_line(exc)


def _first_line(exc: BaseException) -> str:
    text = str(exc).splitlines()
    return text[0][:300] if text else ""
