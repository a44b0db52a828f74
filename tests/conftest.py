"""
Fixtures shared by the test suite.

A scripted Segment-compatible server (plain and mTLS), clients of it, and
``no_write_key``; the hypothesis profile. Topical fixtures live in the plugins this module loads:
``_logging`` (handler tests), ``_otel`` (span tests) and ``_spooled`` (spool tests).

Process-wide state (the default client, the package settings) is reset around every test
by ``default_state``, through ``_default.reset()``.

A test module that wants other defaults for ``clients`` (and ``spooled``) overrides
``client_defaults``; one that wants another ``client`` defines its own fixture of that name.
"""

from __future__ import annotations

import ssl
from typing import TYPE_CHECKING, Any

import pytest
import trustme
from _helpers import Clients
from _server import ScriptedServer, TlsServer
from hypothesis import HealthCheck, settings

from otel_segment import Client, _default

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytest_plugins = ["_logging", "_otel", "_spooled"]

# Tests check what a result is, never how fast it came: on a shared two-core CI machine
# hypothesis's per-example deadline and its slow-generation check only add flakes (speed
# is measured in `nox -s bench`).
settings.register_profile(
    "otel_segment", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("otel_segment")


@pytest.fixture(autouse=True)
def default_state() -> Iterator[None]:
    """Every test starts and ends with no default client, default settings, no listeners."""
    _default.reset()
    yield
    _default.reset()


@pytest.fixture
def segment_server() -> Iterator[ScriptedServer]:
    """A running :class:`ScriptedServer` on ``http://127.0.0.1:<port>``, closed afterwards."""
    with ScriptedServer() as server:
        yield server


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[TlsServer]:
    """A :class:`ScriptedServer` on HTTPS that requires a client certificate from its CA."""
    ca = trustme.CA()
    ca_path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    client = ca.issue_cert("client.example")
    cert_path, key_path = tmp_path / "client.pem", tmp_path / "client.key"
    cert_path.write_bytes(b"".join(pem.bytes() for pem in client.cert_chain_pems))
    client.private_key_pem.write_to_path(str(key_path))

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    ca.configure_trust(context)
    context.verify_mode = ssl.CERT_REQUIRED
    with ScriptedServer(ssl_context=context) as server:
        yield TlsServer(server, str(ca_path), (str(cert_path), str(key_path)))


@pytest.fixture
def client(segment_server: ScriptedServer) -> Iterator[Client]:
    """A client of the test server with the library's defaults, shut down afterwards."""
    client = Client("test-key", host=segment_server.url)
    try:
        yield client
    finally:
        client.shutdown(5)


@pytest.fixture
def client_defaults() -> dict[str, Any]:
    """Options of every client ``clients`` builds (none here; a module may override this)."""
    return {}


@pytest.fixture
def clients(segment_server: ScriptedServer, client_defaults: dict[str, Any]) -> Iterator[Clients]:
    """A factory of clients of the test server, all shut down afterwards."""
    factory = Clients(segment_server, **client_defaults)
    yield factory
    factory.close()


@pytest.fixture
def no_write_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """No default client, and no write key to build one (neither set nor in the environment)."""
    monkeypatch.delenv("SEGMENT_WRITE_KEY", raising=False)  # default_state reset the rest
