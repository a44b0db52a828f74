"""
A process for the fault tests: it drives a client with a spool and reports on stdout.

``python tests/_spool_child.py MODE URL SPOOL [--count N] [--prefix P]``

- ``produce``: track *N* messages (ids ``P-0`` ...), wait until all are in the spool,
  print ``DURABLE``, then keep running until stdin closes (or the test kills it).
- ``drain``: flush what the spool holds, shut down, print the stats as JSON.
- ``fork``: track ``parent-0``, fork; the child tracks ``child-0``, flushes, prints its
  stats and runs until stdin closes; the parent tracks ``parent-1``, shuts down, prints
  its own stats and exits.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from otel_segment import Client, RetryPolicy
from otel_segment.pipeline.spooled import SpoolBacklog


def _no_wait(retry: int) -> float:
    """Retry at once."""
    del retry
    return 0.0


FAST_RETRY = RetryPolicy(max_attempts=2, backoff=_no_wait, max_elapsed=0.5, jitter=0.0)


def say(line: str) -> None:
    """Write one line to stdout at once (a single write, so lines of two processes never mix)."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def new_client(args: argparse.Namespace) -> Client:
    """A client of *args.url* with the spool *args.spool*, small batches, fast retries."""
    return Client(
        "test-key",
        host=args.url,
        spool=args.spool,
        flush_at=50,
        max_batch_bytes=20_000,
        max_message_bytes=10_000,
        retry=FAST_RETRY,
        timeout=5.0,
    )


def track(client: Client, message_id: str) -> None:
    """Track one message with a known id."""
    client.track("u1", "Fault Tested", {"id": message_id}, message_id=message_id)


def produce(args: argparse.Namespace) -> None:
    """Track *count* messages, make them durable, then wait to be killed."""
    client = new_client(args)
    for number in range(args.count):
        track(client, f"{args.prefix}-{number}")
    processor = client._processor  # the durability point, which only the pipeline has
    backlog = processor.backlog
    durable = isinstance(backlog, SpoolBacklog) and backlog.wait_durable(30)
    say("DURABLE" if durable else "NOT DURABLE")
    sys.stdin.read()
    client.shutdown(5)


def drain(args: argparse.Namespace) -> None:
    """Deliver what the spool holds; print the stats."""
    client = new_client(args)
    flushed = client.flush(30)
    stats = client.stats()
    closed = client.shutdown(10)
    say(json.dumps({"flushed": flushed, "closed": closed, **stats}))


def fork(args: argparse.Namespace) -> None:
    """Fork with a spooled client; both sides send, report, and the child lingers."""
    client = new_client(args)
    track(client, "parent-0")
    if os.fork() == 0:
        track(client, "child-0")
        flushed = client.flush(10)
        say(json.dumps({"who": "child", "pid": os.getpid(), "flushed": flushed, **client.stats()}))
        sys.stdin.read()
        client.shutdown(5)
        return
    track(client, "parent-1")
    flushed = client.flush(10)
    closed = client.shutdown(10)
    say(json.dumps({"who": "parent", "flushed": flushed, "closed": closed, **client.stats()}))


def main() -> None:
    """Run the mode named on the command line."""
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["produce", "drain", "fork"])
    parser.add_argument("url")
    parser.add_argument("spool")
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--prefix", default="m")
    args = parser.parse_args()
    {"produce": produce, "drain": drain, "fork": fork}[args.mode](args)


if __name__ == "__main__":
    main()
