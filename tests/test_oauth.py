"""Tests for otel_segment.pipeline.oauth: bearer tokens from a real local token server."""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from typing import TYPE_CHECKING, Any

import pytest
from _helpers import FAST_RETRY, WRITE_KEY, ErrorLog, delivered
from _oauth import CLIENT_ID, KEY_ID, TokenServer, private_key_pem

from otel_segment import Client, DeliveryError
from otel_segment.pipeline.oauth import (
    DEFAULT_AUTH_SERVER,
    DEFAULT_SCOPE,
    OAuthSettings,
    TokenFailure,
    TokenSource,
    oauth_settings,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

    from _server import ScriptedServer

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


@pytest.fixture
def token_server() -> Iterator[TokenServer]:
    """A running token server, stopped afterwards."""
    with TokenServer() as server:
        yield server


def settings_for(server: TokenServer, scope: str = DEFAULT_SCOPE) -> OAuthSettings:
    """OAuth settings pointing at *server*."""
    settings = oauth_settings(CLIENT_ID, private_key_pem(), KEY_ID, server.url, scope)
    assert settings is not None
    return settings


def oauth_options(server: TokenServer) -> dict[str, Any]:
    """The Client options for OAuth against *server*."""
    return {
        "oauth_client_id": CLIENT_ID,
        "oauth_client_key": private_key_pem(),
        "oauth_key_id": KEY_ID,
        "oauth_auth_server": server.url,
    }


@pytest.fixture
def oauth_client(
    segment_server: ScriptedServer, token_server: TokenServer
) -> Iterator[tuple[Client, ErrorLog]]:
    """A client of the test server that authenticates with OAuth; its on_error log."""
    errors = ErrorLog()
    client = Client(
        WRITE_KEY,
        segment_server.url,
        on_error=errors,
        retry=FAST_RETRY,
        flush_interval=30,
        **oauth_options(token_server),
    )
    try:
        yield client, errors
    finally:
        client.shutdown(5)


class TestSettings:
    """The oauth_* options: all three or none, and the key kept out of sight."""

    def test_none_given(self) -> None:
        """Without oauth options there is no OAuth (and PyJWT is not needed)."""
        assert oauth_settings(None, None, None, None, None) is None

    def test_defaults(self) -> None:
        """Segment's token server and the tracking scope are the defaults."""
        settings = oauth_settings("id", "pem", "kid", None, None)
        assert settings is not None
        assert (DEFAULT_AUTH_SERVER, DEFAULT_SCOPE) == (settings.auth_server, settings.scope)
        assert ("https://oauth2.segment.io", "tracking_api:write") == (
            DEFAULT_AUTH_SERVER,
            DEFAULT_SCOPE,
        )

    def test_repr_hides_the_key(self) -> None:
        """The private key never shows in the settings' repr, nor the client's config."""
        settings = oauth_settings("id", private_key_pem(), "kid", None, None)
        with Client(WRITE_KEY, send=False, **_options(settings)) as client:
            shown = repr(settings) + repr(client.config) + repr(client)
        assert "PRIVATE KEY" not in shown
        assert WRITE_KEY not in shown

    def test_imported_only_when_configured(self) -> None:
        """Importing otel_segment (or a client without OAuth) loads no PyJWT nor cryptography."""
        code = (
            "import sys, otel_segment\n"
            "otel_segment.Client('k', send=False).shutdown()\n"
            "print(sorted({'jwt', 'cryptography'} & {m.split('.')[0] for m in sys.modules}))\n"
        )
        result = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=30
        )

        assert (0, "[]") == (result.returncode, result.stdout.strip()), result.stderr

    def test_missing_extra(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Without PyJWT, the error names the extra to install."""
        monkeypatch.setitem(sys.modules, "jwt", None)
        settings = oauth_settings("id", private_key_pem(), "kid", None, None)
        assert settings is not None
        with pytest.raises(ImportError, match=r"otel-segment\[oauth\]"):
            TokenSource(settings)


def _options(settings: OAuthSettings | None) -> dict[str, Any]:
    assert settings is not None
    return {
        "oauth_client_id": settings.client_id,
        "oauth_client_key": settings.client_key,
        "oauth_key_id": settings.key_id,
    }


class TestTokenSource:
    """Tokens are fetched with a signed assertion, cached, and renewed at half-life."""

    def test_assertion_and_form(self, token_server: TokenServer) -> None:
        """The form is a client-credentials grant; the JWT is RS256 with kid, iss, sub, aud."""
        tokens = TokenSource(settings_for(token_server, scope="tracking_api:write other"))
        try:
            before = int(time.time())
            assert "Bearer token-1" == tokens.authorization()
        finally:
            tokens.close()
        [request] = token_server.requests
        claims = request.claims
        assert {
            "grant_type": "client_credentials",
            "client_assertion_type": ASSERTION_TYPE,
            "scope": "tracking_api:write other",
        } == {k: v for k, v in request.form.items() if k != "client_assertion"}
        assert (KEY_ID, CLIENT_ID, CLIENT_ID, token_server.url) == (
            request.key_id,
            claims["iss"],
            claims["sub"],
            claims["aud"],
        )
        assert claims["iat"] <= before <= claims["exp"]
        assert 60 == claims["exp"] - claims["iat"]
        assert 36 == len(claims["jti"])

    def test_cached_then_renewed_at_half_life(self, token_server: TokenServer) -> None:
        """One fetch serves until half the lifetime passed; then a new one is fetched."""
        now = [1_000_000.0]
        tokens = TokenSource(settings_for(token_server), clock=lambda: now[0])
        try:
            first = [tokens.authorization() for _ in range(3)]
            now[0] += 1799  # expires_in is 3600: renewed from 1800 s on
            still = tokens.authorization()
            now[0] += 1
            renewed = tokens.authorization()
        finally:
            tokens.close()

        assert ["Bearer token-1"] * 4 == [*first, still]
        assert "Bearer token-2" == renewed
        assert 2 == len(token_server.requests)
        jtis = {request.claims["jti"] for request in token_server.requests}
        assert 2 == len(jtis)

    def test_invalidate(self, token_server: TokenServer) -> None:
        """A token the API refused is dropped; the next call fetches another."""
        tokens = TokenSource(settings_for(token_server))
        try:
            tokens.authorization()
            tokens.invalidate()
            assert "Bearer token-2" == tokens.authorization()
        finally:
            tokens.close()

    @pytest.mark.parametrize(
        ("status", "headers", "retry_after"),
        [(500, {}, None), (429, {"Retry-After": "7"}, 7.0), (401, {}, None)],
    )
    def test_refusal(
        self,
        token_server: TokenServer,
        status: int,
        headers: dict[str, str],
        retry_after: float | None,
    ) -> None:
        """A refusal is a TokenFailure with the status and Retry-After; no secret in it."""
        token_server.respond(status, {"error": "nope", "echo": "see below"}, **headers)
        tokens = TokenSource(settings_for(token_server))
        try:
            failure = tokens.authorization()
        finally:
            tokens.close()
        assert isinstance(failure, TokenFailure)
        assert (status, retry_after) == (failure.status, failure.retry_after)
        assert f"got HTTP {status}" in failure.reason
        assert "PRIVATE KEY" not in failure.reason

    def test_no_server(self) -> None:
        """No token server: a TokenFailure without status (retried like a lost connection)."""
        settings = oauth_settings("id", private_key_pem(), "kid", "http://127.0.0.1:9", None)
        assert settings is not None
        tokens = TokenSource(settings, timeout=2)
        try:
            failure = tokens.authorization()
        finally:
            tokens.close()
        assert isinstance(failure, TokenFailure)
        assert (None, True) == (failure.status, "failed" in failure.reason)

    def test_repr(self, token_server: TokenServer) -> None:
        """repr() shows the token URL and client id, never the key or a token."""
        tokens = TokenSource(settings_for(token_server))
        try:
            tokens.authorization()
            shown = repr(tokens)
        finally:
            tokens.close()
        assert f"TokenSource(url='{token_server.url}/token', client_id='{CLIENT_ID}')" == shown


class TestDelivery:
    """Batches carry the bearer token; token server failures are retried and reported."""

    def test_bearer_token_arrives(
        self, segment_server: ScriptedServer, oauth_client: tuple[Client, ErrorLog]
    ) -> None:
        """The batch is sent with Authorization: Bearer, not the write key's Basic auth."""
        client, _ = oauth_client
        client.track("u1", "Ev")
        [message] = delivered(client, segment_server, 1)

        [request] = segment_server.requests
        assert "Bearer token-1" == request.header("Authorization")
        assert WRITE_KEY == request.json["writeKey"]
        assert "Ev" == message["event"]

    def test_fetched_on_the_worker(
        self, segment_server: ScriptedServer, token_server: TokenServer
    ) -> None:
        """A slow token server never holds up the caller: the worker waits for it."""
        token_server.hold()
        with Client(
            WRITE_KEY, segment_server.url, flush_at=1, **oauth_options(token_server)
        ) as client:
            client.track("u1", "First")  # the worker takes it and asks for a token
            assert token_server.waiting.wait(5)
            accepted, _ = client.track("u1", "While the token is on its way")
            token_server.release.set()

            assert accepted
            assert 2 == len(delivered(client, segment_server, 2))

    def test_token_server_500_is_retried(
        self,
        segment_server: ScriptedServer,
        token_server: TokenServer,
        oauth_client: tuple[Client, ErrorLog],
    ) -> None:
        """A token server error is retried by the retry policy, then the batch goes out."""
        client, errors = oauth_client
        token_server.respond(500, {"error": "server_error"})
        client.track("u1", "Ev")

        assert 1 == len(delivered(client, segment_server, 1))
        assert (2, 1, []) == (len(token_server.requests), client.stats()["retried"], errors.calls)
        assert "Bearer token-1" == segment_server.requests[0].header("Authorization")

    def test_clock_skew_is_retried(
        self,
        segment_server: ScriptedServer,
        token_server: TokenServer,
        oauth_client: tuple[Client, ErrorLog],
    ) -> None:
        """'Token used before issued' is retried (the server's Date fixed the skew)."""
        client, errors = oauth_client
        token_server.respond(
            400, {"error": "invalid_request", "error_description": "Token used before issued"}
        )
        client.track("u1", "Ev")

        assert 1 == len(delivered(client, segment_server, 1))
        assert (2, []) == (len(token_server.requests), errors.calls)

    def test_token_refused_is_reported(
        self,
        token_server: TokenServer,
        oauth_client: tuple[Client, ErrorLog],
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        """A 4xx from the token server fails the batch: on_error gets a DeliveryError."""
        client, errors = oauth_client
        token_server.respond(400, {"error": "invalid_client", "error_description": "unknown"})
        with caplog.at_level(logging.DEBUG, logger="otel_segment"):
            client.track("u1", "Ev")
            assert client.flush(5)
            assert errors.wait_for_messages(1)
        [(error, [message])] = errors.calls

        assert isinstance(error, DeliveryError)
        assert (400, "Ev", 1) == (error.status, message["event"], client.stats()["failed"])
        assert "OAuth token request" in str(error)
        shown = str(error) + caplog.text + repr(client)
        assert "PRIVATE KEY" not in shown
        assert private_key_pem().splitlines()[1] not in shown

    def test_refused_token_is_renewed(
        self, segment_server: ScriptedServer, oauth_client: tuple[Client, ErrorLog]
    ) -> None:
        """After the API answers 401, the next batch is sent with a new token."""
        client, errors = oauth_client
        segment_server.respond(401)
        client.track("u1", "Refused")
        assert client.flush(5)
        assert errors.wait_for_messages(1)
        client.track("u1", "Accepted")
        delivered(client, segment_server, 1)

        assert ["Bearer token-1", "Bearer token-2"] == [
            request.header("Authorization") for request in segment_server.requests
        ]

    def test_sync_mode(self, segment_server: ScriptedServer, token_server: TokenServer) -> None:
        """In sync_mode the caller sends, and so fetches the token itself."""
        with Client(
            WRITE_KEY, segment_server.url, sync_mode=True, **oauth_options(token_server)
        ) as client:
            accepted, _ = client.track("u1", "Ev")

        assert accepted
        assert "Bearer token-1" == segment_server.requests[0].header("Authorization")
