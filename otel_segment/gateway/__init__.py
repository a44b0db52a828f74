"""
The gateway: OTLP/HTTP and OTLP/gRPC in, Segment messages out, for fleets.

Services in any language, or a tier of OpenTelemetry Collectors, export OTLP logs and
traces to it; it maps them by the in-process bridges' own rules
(:mod:`otel_segment.gateway.records`) and delivers through one
:class:`~otel_segment.Client`. Needs the ``otel-segment[gateway]`` extra (uvicorn,
grpcio, opentelemetry-proto, prometheus-client). Run it as ``otel-segment gateway``, or::

    gateway = Gateway(GatewayConfig(http=("127.0.0.1", 4318), grpc=None), Client(...))
    run(gateway)  # until SIGTERM / SIGINT; or: await gateway.serve(); gateway.stop()

.. versionadded:: 0.2.0
"""

from __future__ import annotations

from otel_segment.gateway.server import DEFAULT_MAX_BODY_BYTES, Gateway, GatewayConfig, run

__all__ = ["DEFAULT_MAX_BODY_BYTES", "Gateway", "GatewayConfig", "run"]
