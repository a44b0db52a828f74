"""Fixtures shared by the test suite: a scripted Segment-compatible server, plain and mTLS."""

from __future__ import annotations

import ssl
from typing import TYPE_CHECKING

import pytest
import trustme
from _server import ScriptedServer, TlsServer

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


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
