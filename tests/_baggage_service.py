"""
Two services for the Baggage test, each run as its own process.

``python _baggage_service.py serve SINK_URL on|off`` answers one HTTP request: it extracts
the request's OpenTelemetry context with the global (W3C tracecontext + baggage)
propagator, tracks "Checkout Viewed" with no ids through a client with
``identity_from_baggage`` on or off, delivers to SINK_URL and exits. It prints its port
first.

``python _baggage_service.py call URL USER_ID`` makes one ``requests`` call, instrumented by
opentelemetry-instrumentation-requests, inside ``identity(user_id=USER_ID, baggage=True)``.
"""

from __future__ import annotations

import http.server
import sys

import requests
from opentelemetry import context, propagate, trace
from opentelemetry.instrumentation.requests import RequestsInstrumentor
from opentelemetry.sdk.trace import TracerProvider

import otel_segment


def serve(sink_url: str, from_baggage: bool) -> None:
    """Answer one request, tracking through a client of *sink_url*; deliver, then exit."""
    client = otel_segment.Client("k", host=sink_url, identity_from_baggage=from_baggage)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            token = context.attach(propagate.extract(self.headers))
            try:
                client.track(event="Checkout Viewed")
                answer = b"tracked"
            except ValueError:
                answer = b"rejected"
            finally:
                context.detach(token)
            self.send_response(200)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *_: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)  # noqa: T201 - the port, for the test
    server.handle_request()
    server.server_close()
    client.shutdown(5)


def call(url: str, user_id: str) -> None:
    """One instrumented GET of *url* in an identity scope that puts the user in Baggage."""
    trace.set_tracer_provider(TracerProvider())
    RequestsInstrumentor().instrument()
    with otel_segment.identity(user_id=user_id, baggage=True):
        response = requests.get(url, timeout=5)
    print(response.text, flush=True)  # noqa: T201 - what the service answered


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve(sys.argv[2], sys.argv[3] == "on")
    else:
        call(sys.argv[2], sys.argv[3])
