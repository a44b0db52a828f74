"""
An instrumented Flask app whose request span becomes an analytics event.

``opentelemetry-instrumentation-flask`` makes a span for every request; the handler
marks it with ``segment.*`` attributes, and ``SegmentSpanProcessor`` turns it into a
``Order Completed`` track when the request ends, with the request's duration.

It opens no socket of its own: Flask's test client makes one request against the app,
and the messages go to a local sink.

Run (it needs the ``examples`` extra)::

    python -m pip install 'otel-segment[examples]'
    python examples/otel_flask_app.py
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask import Flask, jsonify, request
from opentelemetry import trace
from opentelemetry.instrumentation.flask import FlaskInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

import otel_segment
from otel_segment.sink import Sink, format_message

if TYPE_CHECKING:
    from flask.typing import ResponseReturnValue


def create_app(provider: TracerProvider) -> Flask:
    """Build the app, instrumented with *provider*."""
    app = Flask("shop")

    @app.post("/orders")
    def create_order() -> ResponseReturnValue:
        order = request.get_json()
        trace.get_current_span().set_attributes(
            {
                "segment.event": "Order Completed",
                "enduser.id": request.headers.get("X-User-Id", ""),
                "segment.properties.order_id": order["id"],
                "segment.properties.total": order["total"],
            }
        )
        return jsonify({"id": order["id"], "status": "created"}), 201

    FlaskInstrumentor().instrument_app(app, tracer_provider=provider)  # type: ignore[no-untyped-call]
    return app


def main() -> None:
    """Make one request against the instrumented app and print what Segment got."""
    with Sink() as sink, otel_segment.Client("demo-key", host=sink.url) as client:
        provider = TracerProvider(resource=Resource.create({"service.name": "shop"}))
        provider.add_span_processor(otel_segment.SegmentSpanProcessor(client=client))
        app = create_app(provider)

        response = app.test_client().post(
            "/orders", json={"id": "o-17", "total": 42.5}, headers={"X-User-Id": "u1"}
        )
        print(f"POST /orders -> {response.status_code} {response.get_json()}")

        provider.shutdown()
        for message in sink.messages:
            print(format_message(message))
        print(f"context.app={sink.messages[0]['context']['app']}")


if __name__ == "__main__":
    main()
