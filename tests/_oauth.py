"""
A local OAuth token server for the OAuth tests, and an RSA key pair to sign with.

:class:`TokenServer` answers ``POST /token`` the way Segment's token server does: it
checks the client-credentials form and the JWT client assertion (signature, ``kid``,
``aud``), then hands out ``token-1``, ``token-2`` ... Answers can be scripted, and a
request can be held until the test lets it go.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, Final, Self
from urllib.parse import parse_qs

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

if TYPE_CHECKING:
    from types import TracebackType

KEY_ID: Final = "kid-7"
CLIENT_ID: Final = "client-abc"


@functools.cache
def private_key_pem() -> str:
    """An RSA private key (PEM, unencrypted), made once per test run."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def public_key() -> Any:
    """The public half of :func:`private_key_pem`."""
    return serialization.load_pem_private_key(private_key_pem().encode(), None).public_key()


@dataclasses.dataclass(frozen=True, slots=True)
class TokenRequest:
    """
    One request the token server received.

    Attributes:
        form: The form fields (one value each).
        claims: The verified claims of the client assertion, or ``{}`` if it did not verify.
        key_id: The assertion's ``kid`` header.
    """

    form: dict[str, str]
    claims: dict[str, Any]
    key_id: str | None


@dataclasses.dataclass(frozen=True, slots=True)
class _Answer:
    status: int
    body: dict[str, Any]
    headers: dict[str, str]


class TokenServer:
    """
    An OAuth token server on ``http://127.0.0.1:<port>``; use it as a context manager.

    Args:
        lifetime: ``expires_in`` of the tokens it gives, in seconds.
    """

    def __init__(self, *, lifetime: float = 3600) -> None:
        self.lifetime = lifetime
        self.requests: list[TokenRequest] = []
        self._script: collections.deque[_Answer] = collections.deque()
        self._issued = 0
        self._lock = threading.Lock()
        self.release = threading.Event()
        self.release.set()
        self.waiting = threading.Event()
        self._httpd = _Server(("127.0.0.1", 0), functools.partial(_Handler, self))
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        serve = functools.partial(self._httpd.serve_forever, poll_interval=0.01)  # quick stop
        self._thread = threading.Thread(target=serve, daemon=True)

    def __enter__(self) -> Self:
        """Start serving."""
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop serving."""
        self.release.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)

    def respond(self, status: int, body: dict[str, Any], **headers: str) -> Self:
        """Answer the next request with *status* and the JSON *body*."""
        self._script.append(_Answer(status, body, dict(headers)))
        return self

    def hold(self) -> None:
        """Keep the next requests waiting until :attr:`release` is set."""
        self.release.clear()

    def answer(self, form: dict[str, str]) -> _Answer:
        """Record one request and decide its answer."""
        assertion = form.get("client_assertion", "")
        try:
            header = jwt.get_unverified_header(assertion)
            claims = jwt.decode(assertion, public_key(), algorithms=["RS256"], audience=self.url)
        except jwt.PyJWTError:
            header, claims = {}, {}
        with self._lock:
            self.requests.append(TokenRequest(form, claims, header.get("kid")))
            if self._script:
                return self._script.popleft()
            if not claims:
                return _Answer(401, {"error": "invalid_client"}, {})
            self._issued += 1
            body = {"access_token": f"token-{self._issued}", "expires_in": self.lifetime}
            return _Answer(200, body, {})


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def server_bind(self) -> None:
        super().server_bind()
        self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def __init__(self, owner: TokenServer, *args: Any) -> None:
        self.owner = owner
        super().__init__(*args)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        fields = parse_qs(self.rfile.read(length).decode(), keep_blank_values=True)
        form = {name: values[0] for name, values in fields.items()}
        self.owner.waiting.set()
        self.owner.release.wait(10)
        answer = self.owner.answer(form)
        data = json.dumps(answer.body).encode()
        self.send_response(answer.status)
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        del format, args
