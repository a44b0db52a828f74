"""
Putting one client's pipeline together from its configuration.

:func:`build_processor` makes the parts — the batch envelope, the HTTP transport, the
spool when one is asked for — and joins them in a batching processor.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from otel_segment.pipeline.backlogs import MemoryBacklog
from otel_segment.pipeline.batching import BatchProcessor
from otel_segment.pipeline.encoding import BatchEnvelope
from otel_segment.pipeline.oauth import TokenSource
from otel_segment.pipeline.spool import Spool
from otel_segment.pipeline.spooled import SpoolBacklog
from otel_segment.pipeline.transport import HttpTransport

if TYPE_CHECKING:
    from otel_segment.pipeline.backlogs import Backlog
    from otel_segment.pipeline.config import ClientConfig

__all__ = ["build_processor"]


def build_processor(config: ClientConfig) -> BatchProcessor:
    """
    The batching processor (with its transport, and its spool if configured) for *config*.

    Raises:
        ValueError: ``max_message_bytes`` plus the batch envelope do not fit in
            ``max_batch_bytes``, or ``oauth_client_key`` is not an RSA private key.
        ImportError: OAuth is configured but its extra (PyJWT, cryptography) is missing.
        SpoolError: The spool file cannot be used.
    """
    envelope = BatchEnvelope(config.write_key)
    if config.max_message_bytes + envelope.overhead > config.max_batch_bytes:
        raise ValueError(
            f"max_message_bytes ({config.max_message_bytes}) plus the batch envelope "
            f"({envelope.overhead} bytes) must fit in max_batch_bytes "
            f"({config.max_batch_bytes})"
        )
    _set_up_logging(config)
    tokens = None
    if config.oauth is not None:
        tokens = TokenSource(
            config.oauth, timeout=config.timeout, proxies=config.proxies, verify=config.verify
        )
    transport = HttpTransport(
        config.write_key,
        config.host,
        gzip=config.gzip,
        timeout=config.timeout,
        proxies=config.proxies,
        verify=config.verify,
        cert=config.cert,
        tokens=tokens,
    )
    backlog: Backlog
    if config.spool is None or not config.send:
        backlog = MemoryBacklog(config.max_queue_size)
    else:
        spool = Spool(config.spool, max_bytes=config.spool_max_bytes)
        backlog = SpoolBacklog(spool, policy=config.retry, max_queue_size=config.max_queue_size)
    return BatchProcessor(
        transport,
        envelope,
        backlog=backlog,
        policy=config.retry,
        flush_at=config.flush_at,
        flush_interval=config.flush_interval,
        max_queue_size=config.max_queue_size,
        max_batch_bytes=config.max_batch_bytes,
        on_error=config.on_error,
        max_in_flight=config.max_in_flight,
    )


def _set_up_logging(config: ClientConfig) -> None:
    """``log_handler`` joins the ``otel_segment`` logger; ``debug`` lowers its level."""
    logger = logging.getLogger("otel_segment")
    if config.log_handler is not None:
        logger.addHandler(config.log_handler)  # once: addHandler skips a handler it holds
    if config.debug:
        logger.setLevel(logging.DEBUG)
        if not logger.handlers:
            logger.addHandler(logging.StreamHandler())
