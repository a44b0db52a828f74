"""
The gateway process: uvicorn (OTLP/HTTP) and grpcio (OTLP/gRPC) on one asyncio loop.

:class:`Gateway` owns one :class:`~otel_segment.Client`: every message goes through its
pipeline. :meth:`Gateway.serve` runs until :meth:`Gateway.stop` (SIGTERM or SIGINT
under :func:`run`), then drains: ``/readyz`` turns 503 and new exports are answered
503 with ``Retry-After`` while the client delivers what is queued (or leaves it in the
spool) within ``drain_timeout``; then both servers close.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import pathlib
import signal
import socket
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import grpc
import uvicorn

from otel_segment.gateway.metrics import GatewayMetrics
from otel_segment.gateway.otlp_grpc import handlers
from otel_segment.gateway.otlp_http import HttpApp
from otel_segment.gateway.service import ExportService
from otel_segment.pipeline.lifecycle import deadline_after, remaining

if TYPE_CHECKING:
    from collections.abc import Iterator

    from otel_segment.pipeline.client import Client

__all__ = ["DEFAULT_MAX_BODY_BYTES", "Gateway", "GatewayConfig", "run"]

_logger = logging.getLogger("otel_segment.gateway")

DEFAULT_MAX_BODY_BYTES: Final = 20 * 1024 * 1024
"""Largest request body (and message over gRPC), before and after inflating."""

_MAX_CONNECTIONS: Final = 1000
_KEEP_ALIVE_SECONDS: Final = 15.0
_IDLE_SECONDS: Final = 60.0  # a gRPC connection with no call for this long is closed
_KEEP_ALIVE_PING_SECONDS: Final = 60.0
_CLOSE_GRACE_SECONDS: Final = 1.0  # for answers under way when the listeners close


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    """
    How the gateway listens and answers.

    Attributes:
        http: ``(host, port)`` of OTLP/HTTP; ``None``: no HTTP. Port 0 picks one.
        grpc: ``(host, port)`` of OTLP/gRPC; ``None``: no gRPC.
        token: Bearer token senders must present; ``None``: no check.
        tls_cert: PEM certificate (chain) file: serve TLS on both ports.
        tls_key: PEM private key file of *tls_cert*.
        max_body_bytes: Largest body, before and after inflating.
        body_budget_bytes: Bytes of HTTP bodies being read at once (default twice
            *max_body_bytes*); beyond, 503.
        body_timeout_seconds: Time an HTTP body may take to arrive; then 408. Over
            gRPC, the time a connection's handshake may take, and the grace a call
            under way gets when its connection reaches *max_connection_age_seconds*.
        max_connection_age_seconds: Age at which a gRPC connection is closed (GOAWAY;
            the sender reconnects, so long-lived channels spread over replicas behind
            a load balancer, and a stalled call ends within the age and its grace).
        drain_timeout: Seconds a drain may take, requests and delivery together.
        retry_after_seconds: The wait suggested with 429/503 and RetryInfo.
    """

    http: tuple[str, int] | None = ("0.0.0.0", 4318)  # noqa: S104 - a server for a fleet
    grpc: tuple[str, int] | None = ("0.0.0.0", 4317)  # noqa: S104
    token: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    body_budget_bytes: int | None = None
    body_timeout_seconds: float = 30.0
    max_connection_age_seconds: float = 300.0
    drain_timeout: float = 30.0
    retry_after_seconds: int = 1

    def __post_init__(self) -> None:
        """Check the values: ``ValueError`` naming the field."""
        if self.http is None and self.grpc is None:
            raise ValueError("http and grpc are both None: the gateway would listen nowhere")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key go together")
        for name in ("max_body_bytes", "retry_after_seconds"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)!r}")
        for name in ("body_timeout_seconds", "max_connection_age_seconds", "drain_timeout"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)!r}")
        if self.token is not None and not self.token:
            raise ValueError("token must not be empty")


class _Server(uvicorn.Server):
    """uvicorn without its signal handlers: the gateway decides what a signal does."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class Gateway:
    """
    OTLP/HTTP and OTLP/gRPC in, Segment messages out through *client*.

    Args:
        config: Addresses, token, TLS and limits.
        client: The pipeline; the gateway shuts it down when it stops.
    """

    def __init__(self, config: GatewayConfig, client: Client) -> None:
        self.config = config
        self.client = client
        self.metrics = GatewayMetrics(client)
        self.service = ExportService(
            client, self.metrics, token=config.token, retry_after_seconds=config.retry_after_seconds
        )
        self.started = threading.Event()
        self.http_port: int | None = None
        self.grpc_port: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._drained = False

    def stop(self) -> None:
        """Begin draining; safe from any thread, and from a signal handler on the loop."""
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None:
            loop.call_soon_threadsafe(stop.set)

    @property
    def drained(self) -> bool:
        """Whether the last drain delivered (or spooled) everything before its deadline."""
        return self._drained

    async def serve(self) -> bool:
        """
        Serve until :meth:`stop`, then drain; returns :attr:`drained`.

        Raises:
            OSError: An address cannot be bound.
        """
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        config = self.config
        grpc_server = await self._start_grpc(config.grpc) if config.grpc else None
        http_server, http_task = self._start_http(config.http) if config.http else (None, None)
        self.started.set()
        _logger.info(
            "gateway listening",
            extra={"http_port": self.http_port, "grpc_port": self.grpc_port},
        )
        await self._stop.wait()
        deadline = deadline_after(self.config.drain_timeout)
        # Still listening while the pipeline drains: /readyz and new exports answer 503
        # (senders retry elsewhere); exports already past that check finish normally.
        self.service.draining = True
        _logger.info("gateway draining", extra={"drain_timeout": self.config.drain_timeout})
        self._drained = await asyncio.to_thread(self.client.shutdown, remaining(deadline))
        if http_server is not None:
            http_server.should_exit = True
        if grpc_server is not None:
            await grpc_server.stop(_CLOSE_GRACE_SECONDS)
        if http_server is not None and http_task is not None:
            await http_task
            _abort_left(http_server)
        _logger.info("gateway stopped", extra={"drained": self._drained, **self.client.stats()})
        return self._drained

    def _start_http(self, address: tuple[str, int]) -> tuple[_Server, asyncio.Task[None]]:
        config = self.config
        host, port = address
        sock = socket.create_server((host, port), family=_family(host), reuse_port=False)
        self.http_port = sock.getsockname()[1]
        app = HttpApp(
            self.service,
            max_body_bytes=config.max_body_bytes,
            body_budget_bytes=config.body_budget_bytes or 2 * config.max_body_bytes,
            body_timeout_seconds=config.body_timeout_seconds,
        )
        server = _Server(
            uvicorn.Config(
                app,
                http="httptools",
                lifespan="off",
                log_config=None,
                access_log=False,
                server_header=False,
                limit_concurrency=_MAX_CONNECTIONS,
                timeout_keep_alive=int(_KEEP_ALIVE_SECONDS),
                timeout_graceful_shutdown=int(_CLOSE_GRACE_SECONDS),
                ssl_certfile=config.tls_cert,
                ssl_keyfile=config.tls_key,
            )
        )
        return server, asyncio.create_task(server.serve(sockets=[sock]))

    async def _start_grpc(self, address: tuple[str, int]) -> grpc.aio.Server:
        config = self.config
        server = grpc.aio.server(
            handlers=handlers(self.service),
            options=[
                ("grpc.max_receive_message_length", config.max_body_bytes),
                ("grpc.max_concurrent_streams", 100),
                ("grpc.so_reuseport", 0),
                *_grpc_connection_limits(config),
            ],
            maximum_concurrent_rpcs=_MAX_CONNECTIONS,
        )
        host, port = address
        target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        if config.tls_cert and config.tls_key:
            key = pathlib.Path(config.tls_key).read_bytes()  # noqa: ASYNC240 - once, at start
            cert = pathlib.Path(config.tls_cert).read_bytes()  # noqa: ASYNC240
            credentials = grpc.ssl_server_credentials([(key, cert)])
            self.grpc_port = server.add_secure_port(target, credentials)
        else:
            self.grpc_port = server.add_insecure_port(target)
        await server.start()
        return server


def _grpc_connection_limits(config: GatewayConfig) -> list[tuple[str, int]]:
    """The limits gRPC core puts on slow, silent and everlasting connections."""
    body_ms = int(config.body_timeout_seconds * 1000)
    age_ms = int(config.max_connection_age_seconds * 1000)
    return [
        ("grpc.server_handshake_timeout_ms", body_ms),  # a silent or half-open socket
        ("grpc.max_connection_age_ms", age_ms),
        ("grpc.max_connection_age_grace_ms", body_ms),  # then a stalled call is cut
        ("grpc.max_connection_idle_ms", int(_IDLE_SECONDS * 1000)),
        ("grpc.keepalive_time_ms", int(_KEEP_ALIVE_PING_SECONDS * 1000)),  # dead peers
        ("grpc.keepalive_timeout_ms", int(_KEEP_ALIVE_SECONDS * 1000)),
    ]


def _abort_left(server: _Server) -> None:
    """
    Abort connections still open after the grace period.

    A TLS peer that closes without a close_notify leaves its connection half-open on our
    side; uvicorn gives up waiting for it but does not close it.
    """
    for connection in list(server.server_state.connections):
        transport = getattr(connection, "transport", None)
        if transport is not None:
            transport.abort()


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def run(gateway: Gateway) -> bool:
    """
    Serve *gateway* in this (main) thread until SIGTERM or SIGINT, then drain.

    Returns:
        Whether the drain delivered (or spooled) everything in time.
    """

    async def main() -> bool:
        loop = asyncio.get_running_loop()
        for number in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(number, gateway.stop)
        return await gateway.serve()

    return asyncio.run(main())
