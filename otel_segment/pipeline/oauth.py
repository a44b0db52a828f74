"""
OAuth 2.0 for the Tracking API: a bearer token instead of the write key's Basic auth.

As segment-analytics-python 2.3+ does it: a short-lived JWT signed with the client's RSA
private key (RS256, ``kid`` = the key id) is exchanged at ``{auth_server}/token``
(client-credentials grant with a JWT client assertion, RFC 7523) for an access token,
which is cached and renewed once half its lifetime has passed. Tokens are fetched by the
pipeline's worker when it is about to send (never on the caller's thread, except in
``sync_mode``, where the caller sends). PyJWT and cryptography (the ``oauth`` extra) are
imported only when OAuth is configured. The private key, the signed assertion and the
access token never appear in a repr, a log line or an error.
"""

from __future__ import annotations

import dataclasses
import email.utils
import importlib
import logging
import threading
import time
import uuid
from typing import TYPE_CHECKING, Any, Final

import requests

from otel_segment.pipeline.retry import parse_retry_after

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "DEFAULT_AUTH_SERVER",
    "DEFAULT_SCOPE",
    "OAuthSettings",
    "TokenFailure",
    "TokenSource",
    "oauth_settings",
]

_logger = logging.getLogger("otel_segment")

DEFAULT_AUTH_SERVER: Final = "https://oauth2.segment.io"
"""Segment's token server."""

DEFAULT_SCOPE: Final = "tracking_api:write"
"""The scope that lets a token send to the Tracking API."""

_ASSERTION_TYPE: Final = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
_ASSERTION_LIFETIME_SECONDS: Final = 60  # issued 5 s in the past, valid 55 s ahead
_DEFAULT_TOKEN_LIFETIME_SECONDS: Final = 120.0  # when the server names none: renew after 60 s
_EXTRA_HINT: Final = "OAuth needs PyJWT with cryptography: pip install 'otel-segment[oauth]'"
_DETAIL_CHARS: Final = 200
_SKEW_ERRORS: Final = frozenset({"Token is expired", "Token used before issued"})


@dataclasses.dataclass(frozen=True, slots=True)
class OAuthSettings:
    """
    The OAuth options of a client (validated; see :func:`oauth_settings`).

    Args:
        client_id: The OAuth app's client id (the JWT's ``iss`` and ``sub``).
        client_key: The RSA private key, PEM; never shown in a repr.
        key_id: The id of the app's public key (the JWT header's ``kid``).
        auth_server: Base URL of the token server; the JWT's ``aud``.
        scope: The scope asked for.
    """

    client_id: str
    client_key: str = dataclasses.field(repr=False)
    key_id: str
    auth_server: str = DEFAULT_AUTH_SERVER
    scope: str = DEFAULT_SCOPE


def oauth_settings(
    client_id: object, client_key: object, key_id: object, auth_server: object, scope: object
) -> OAuthSettings | None:
    """
    The OAuth settings from the constructor's ``oauth_*`` options, or ``None`` for none.

    Raises:
        TypeError: An option is not a string.
        ValueError: Some of ``oauth_client_id``, ``oauth_client_key`` and ``oauth_key_id``
            are given but not all, or ``oauth_auth_server`` is not an http(s) URL.
    """
    required = {
        "oauth_client_id": client_id,
        "oauth_client_key": client_key,
        "oauth_key_id": key_id,
    }
    missing = [name for name, value in required.items() if not value]
    if len(missing) == len(required):
        return None
    if missing:
        raise ValueError(f"OAuth needs oauth_client_id, oauth_client_key and oauth_key_id; "
                         f"missing: {', '.join(missing)}")  # fmt: skip
    texts = {**required, "oauth_auth_server": auth_server, "oauth_scope": scope}
    for name, value in texts.items():
        if value is not None and not isinstance(value, str):
            raise TypeError(f"{name} must be a string, got {type(value).__name__}")
    server = DEFAULT_AUTH_SERVER if auth_server is None else str(auth_server)
    if not server.startswith(("http://", "https://")):
        raise ValueError(f"oauth_auth_server must start with http:// or https://, got {server!r}")
    return OAuthSettings(
        client_id=str(client_id),
        client_key=str(client_key),
        key_id=str(key_id),
        auth_server=server.rstrip("/"),
        scope=DEFAULT_SCOPE if scope is None else str(scope),
    )


@dataclasses.dataclass(frozen=True, slots=True)
class TokenFailure:
    """
    Why no token could be had; the batch waiting for it is retried or failed on this.

    Args:
        reason: What happened, for the log and ``on_error`` (no secret in it).
        status: The token server's HTTP status, ``None`` when no usable answer arrived
            (retried like a lost connection).
        retry_after: Seconds the server asked to wait, if it did.
    """

    reason: str
    status: int | None = None
    retry_after: float | None = None


class _NoToken(Exception):  # noqa: N818 - internal: carries a TokenFailure out of _fetch
    def __init__(self, failure: TokenFailure) -> None:
        super().__init__(failure.reason)
        self.failure = failure


class TokenSource:
    """
    Access tokens for the Tracking API, fetched when needed and renewed before expiry.

    Thread-safe: workers sending at once share one token and one fetch.

    Args:
        settings: The OAuth options.
        timeout: Seconds for connecting to the token server and for each read.
        proxies: As for ``requests``.
        verify: TLS verification: ``True``, ``False`` or a CA bundle path.
        clock: The clock a token's renewal is timed by (``time.monotonic``); tests pass
            their own. The assertion's ``iat`` and ``exp`` come from the wall clock,
            corrected by the token server's ``Date``.

    Raises:
        ImportError: PyJWT or cryptography is not installed (the ``oauth`` extra).
        ValueError: ``oauth_client_key`` is not a PEM RSA private key.
    """

    def __init__(
        self,
        settings: OAuthSettings,
        *,
        timeout: float = 15.0,
        proxies: dict[str, str] | None = None,
        verify: bool | str = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._jwt, self._key = _load_key(settings.client_key)
        self._settings = settings
        self._url = f"{settings.auth_server}/token"
        self._timeout = timeout
        self._verify = verify
        self._clock = clock
        self._proxies = proxies
        self._session = self._new_session()
        self._lock = threading.Lock()
        self._token: str | None = None
        self._renew_at = 0.0
        self._skew = 0.0  # our clock minus the token server's, from its Date header

    def __repr__(self) -> str:
        """Show the token server and the client id, never the key or a token."""
        return f"TokenSource(url={self._url!r}, client_id={self._settings.client_id!r})"

    def authorization(self) -> str | TokenFailure:
        """
        The ``Authorization`` header value, ``Bearer <token>``, fetching a token if needed.

        Returns:
            The header value, or why the token server gave none (never raises).
        """
        with self._lock:
            if self._token is None or self._clock() >= self._renew_at:
                try:
                    self._fetch()
                except _NoToken as exc:
                    return exc.failure
            return f"Bearer {self._token}"

    def invalidate(self) -> None:
        """Forget the token (the API refused it); the next request fetches another."""
        with self._lock:
            self._token = None

    def scrub(self, text: str) -> str:
        """*text* with the current token taken out (a server may quote it back)."""
        token = self._token
        return text.replace(token, "<token>") if token else text

    def reset_after_fork(self) -> None:
        """Drop the parent's connections and token (a child fetches its own)."""
        self._session = self._new_session()
        self._lock = threading.Lock()  # a worker of the parent may have held it
        self._token = None

    def _new_session(self) -> requests.Session:
        session = requests.Session()
        session.proxies.update(self._proxies or {})
        session.trust_env = self._proxies is None
        return session

    def close(self) -> None:
        """Close the token server connections."""
        self._session.close()

    def _fetch(self) -> None:
        assertion = self._assertion()
        form = {
            "grant_type": "client_credentials",
            "client_assertion_type": _ASSERTION_TYPE,
            "client_assertion": assertion,
            "scope": self._settings.scope,
        }
        _logger.debug("requesting an OAuth access token from %s", self._url)
        try:
            response = self._session.post(
                self._url, data=form, timeout=self._timeout, verify=self._verify
            )
        except (requests.RequestException, OSError) as exc:
            reason = f"OAuth token request to {self._url} failed: {type(exc).__name__}"
            raise _NoToken(TokenFailure(reason)) from None
        with response:
            self._learn_skew(response.headers.get("Date"))
            if response.status_code != 200:  # noqa: PLR2004
                raise _NoToken(self._refusal(response, assertion))
            token, lifetime = _read_token(response)
        if token is None:
            raise _NoToken(TokenFailure(f"the OAuth token server {self._url} sent no access_token"))
        self._token = token
        self._renew_at = self._clock() + lifetime / 2

    def _assertion(self) -> str:
        now = int(time.time() - self._skew)
        claims = {
            "iss": self._settings.client_id,
            "sub": self._settings.client_id,
            "aud": self._settings.auth_server,
            "iat": now - 5,
            "exp": now + _ASSERTION_LIFETIME_SECONDS - 5,
            "jti": str(uuid.uuid4()),
        }
        headers = {"kid": self._settings.key_id}
        signed: str = self._jwt.encode(claims, self._key, algorithm="RS256", headers=headers)
        return signed

    def _learn_skew(self, date: str | None) -> None:
        if not date:
            return
        try:
            server_now = email.utils.parsedate_to_datetime(date).timestamp()
        except (TypeError, ValueError, IndexError):
            return
        self._skew = time.time() - server_now

    def _refusal(self, response: requests.Response, assertion: str) -> TokenFailure:
        detail = response.text.replace(assertion, "<assertion>")[:_DETAIL_CHARS].strip()
        retry_after = parse_retry_after(
            response.headers.get("Retry-After") or response.headers.get("X-RateLimit-Reset")
        )
        reason = f"OAuth token request to {self._url} got HTTP {response.status_code}"
        reason = f"{reason} {response.reason}: {detail}".rstrip(": ")
        if _clock_skew(response):
            # our clock disagreed with the server's; its Date header corrected the skew,
            # so another attempt can succeed: no status, as for a lost connection
            return TokenFailure(f"{reason} (clock skew: retried)")
        return TokenFailure(reason, response.status_code, retry_after)


def _clock_skew(response: requests.Response) -> bool:
    """Whether the server refused the assertion's times (analytics-python retries those)."""
    if response.status_code != 400:  # noqa: PLR2004
        return False
    try:
        data: Any = response.json()
    except ValueError:
        return False
    return isinstance(data, dict) and data.get("error_description") in _SKEW_ERRORS


def _read_token(response: requests.Response) -> tuple[str | None, float]:
    """The access token and its lifetime in seconds from a 200 answer."""
    try:
        data: Any = response.json()
    except ValueError:
        return None, 0.0
    if not isinstance(data, dict):
        return None, 0.0
    token = data.get("access_token")
    lifetime = data.get("expires_in")
    if isinstance(lifetime, bool) or not isinstance(lifetime, (int, float)) or lifetime < 0:
        lifetime = _DEFAULT_TOKEN_LIFETIME_SECONDS
    return (token if isinstance(token, str) and token else None), float(lifetime)


def _load_key(pem: str) -> tuple[Any, Any]:
    """PyJWT and the loaded private key; the PEM text goes no further."""
    try:
        jwt = importlib.import_module("jwt")
        serialization = importlib.import_module("cryptography.hazmat.primitives.serialization")
        rsa = importlib.import_module("cryptography.hazmat.primitives.asymmetric.rsa")
    except ImportError as exc:
        raise ImportError(_EXTRA_HINT, name=exc.name) from None
    try:
        key = serialization.load_pem_private_key(pem.encode(), password=None)
    except Exception:  # noqa: BLE001 - ValueError, TypeError, cryptography's UnsupportedAlgorithm
        key = None
    if not isinstance(key, rsa.RSAPrivateKey):
        message = "oauth_client_key must be an RSA private key in PEM form, unencrypted"
        raise ValueError(message)  # noqa: TRY004 - a bad value, whatever type the key had
    return jwt, key
