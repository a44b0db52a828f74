"""
A Celery task that runs in the identity scope of the request that sent it.

``propagate_identity(app)`` puts the sender's identity (ids and context) in a task
header, and opens the same scope around the task's run in the worker: the task's events
are about the user who clicked, with the same ip and page.

It runs a real worker in a thread, on Celery's in-memory broker, and the messages go to
a local sink. An app needs the ``celery`` extra.

Run::

    python -m pip install 'otel-segment[examples]'
    python examples/web_celery.py
"""

from __future__ import annotations

from celery import Celery
from celery.contrib.testing.worker import start_worker

import otel_segment
from otel_segment.integrations.celery import propagate_identity
from otel_segment.sink import Sink, format_message

app = Celery("shop", broker="memory://", backend="cache+memory://")
app.conf.update(
    broker_connection_retry_on_startup=True,
    broker_transport_options={"polling_interval": 0.01},
    worker_hijack_root_logger=False,
)
propagate_identity(app)


@app.task(name="send_invoice")  # type: ignore[untyped-decorator]
def send_invoice(order_id: str) -> str | None:
    """Track ``Invoice Sent`` for whoever placed the order."""
    current = otel_segment.current_identity() or otel_segment.Identity()
    otel_segment.track(
        current.user_id,
        "Invoice Sent",
        {"order_id": order_id},
        anonymous_id=current.anonymous_id,
        context=dict(current.context),
    )
    return current.user_id


def main() -> None:
    """Send one task from inside a request's scope; print what Segment got."""
    with Sink() as sink:
        otel_segment.configure(write_key="demo-key", host=sink.url)
        with start_worker(app, pool="solo", perform_ping_check=False, loglevel="WARNING"):
            # What a web middleware does for each request:
            with otel_segment.identity(user_id="u1", context={"ip": "203.0.113.9"}):
                result = send_invoice.delay("o-17")
            print(f"task ran for user {result.get(timeout=10, interval=0.01)}")
        otel_segment.shutdown()
        for message in sink.messages:
            print(format_message(message), f"ip={message['context']['ip']}")


if __name__ == "__main__":
    main()
