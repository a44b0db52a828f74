"""
Client choice, mapping and sending shared by the OpenTelemetry span and log sources.

See :mod:`otel_segment.sources.otel` for the rules: which client a source uses, what it owns,
and how invalid messages are counted.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from otel_segment.errors import ClientClosedError
from otel_segment.pipeline.batching import in_pipeline
from otel_segment.pipeline.messages import MESSAGE_TYPES, merge_context
from otel_segment.sources.clients import ClientRef
from otel_segment.sources.otel_mapping import Fields

if TYPE_CHECKING:
    from otel_segment.pipeline.client import Client

__all__ = ["Bridge", "MapperResult", "Pairs"]

_logger = logging.getLogger("otel_segment")

_T = TypeVar("_T")

MapperResult = Mapping[str, Any] | Iterable[Mapping[str, Any]] | None
"""What a mapper returns: one message, several, or none (each as ``Client.message`` fields
with its ``"type"``; ``"track"`` when missing)."""

Pairs = list[tuple[object, Fields]]


class Bridge(Generic[_T]):
    """Client choice, mapping and sending shared by the span and log sources."""

    def __init__(
        self,
        client: Client | None,
        mapper: Callable[[_T], MapperResult] | None,
        client_kwargs: dict[str, Any],
        default: Callable[[_T], Pairs],
        trace_of: Callable[[_T], dict[str, str] | None],
    ) -> None:
        if mapper is not None and not callable(mapper):
            raise TypeError(f"mapper must be callable, got {type(mapper).__name__}")
        self.ref = ClientRef(client, client_kwargs)
        self.closed = False
        self._mapper = mapper
        self._default = default
        self._trace_of = trace_of
        self._warned_unavailable = False
        self._warned_closed = False

    def current(self) -> Client | None:
        """The client in use, without building the default one."""
        return self.ref.current()

    def emit(self, items: Iterable[_T]) -> bool:
        """Map and send *items*; ``False`` when no usable client is there (closed, unset)."""
        client: Client | None = None
        for item in items:
            pairs = self._pairs(item)
            if not pairs:
                continue
            if client is None:
                client = self._resolve()
                if client is None:
                    return False
            if isinstance(pairs, Exception):
                client.reject(pairs)
            elif not _send(client, pairs):
                return False
        return True

    def export(self, items: Iterable[_T], what: str) -> bool:
        """
        An exporter's ``export()``: map and send *items* (*what* names them in logs).

        Returns:
            ``False`` (the SDK's FAILURE) only when nothing could be sent: after
            shutdown, with no usable client, or on an unexpected error. Items of our own
            delivery are never mapped. Never raises.
        """
        if self.closed:
            return False
        if in_pipeline():
            return True
        try:
            return self.emit(items)
        except Exception:
            _logger.exception("exporting %s failed", what)
            return False

    def flush(self, timeout_millis: int) -> bool:
        """Flush the client in use; ``False`` after shutdown."""
        if self.closed:
            return False
        client = self.current()
        return True if client is None else client.flush(timeout_millis / 1000)

    def shutdown(self) -> bool:
        """Stop mapping; shut down an owned client, flush a shared one."""
        if self.closed:
            return True
        self.closed = True
        if self.ref.owned is not None:
            return self.ref.close()
        client = self.current()
        if client is None or client.closed:
            return True
        return client.flush(client.config.exit_timeout)

    def _resolve(self) -> Client | None:
        try:
            client = self.ref.get()
        except (TypeError, ValueError) as error:
            if not self._warned_unavailable:
                self._warned_unavailable = True
                _logger.error("OpenTelemetry data not sent: no usable client: %s", error)  # noqa: TRY400
            return None
        if client.closed:
            if not self._warned_closed:  # once: a provider may outlive its client
                self._warned_closed = True
                _logger.warning("OpenTelemetry data not sent: the client was shut down")
            return None
        return client

    def _pairs(self, item: _T) -> Pairs | Exception:
        """The item's ``(type, fields)`` pairs, or the error that kept it from mapping."""
        try:
            if self._mapper is None:
                return self._default(item)
            return self._mapped(item, self._mapper(item))
        except Exception as error:  # noqa: BLE001 - a mapping bug costs the item, no more
            return error

    def _mapped(self, item: _T, result: MapperResult) -> Pairs:
        if result is None:
            return []
        entries = [result] if isinstance(result, Mapping) else list(result)
        trace = self._trace_of(item)
        pairs: Pairs = []
        for entry in entries:
            if not isinstance(entry, Mapping):
                raise TypeError(f"a mapper must return mappings, got {type(entry).__name__}")
            fields = dict(entry)
            kind = fields.pop("type", "track")
            context = fields.get("context") or {}
            if trace is not None and isinstance(context, Mapping) and "trace" not in context:
                fields["context"] = merge_context({"trace": trace}, context)
            pairs.append((kind, fields))
        return pairs


def _send(client: Client, pairs: Pairs) -> bool:
    """Send each ``(type, fields)``; count the invalid ones; ``False`` once the client closed."""
    for kind, fields in pairs:
        if kind not in MESSAGE_TYPES:
            client.reject(
                ValueError(f"type must be one of {', '.join(MESSAGE_TYPES)}, got {kind!r}")
            )
            continue
        try:
            client.message(str(kind), **fields)
        except ClientClosedError:
            return False
        except (TypeError, ValueError) as error:  # counted as rejected by the client
            _logger.warning("OpenTelemetry %s message not sent: %s", kind, error)
    return True
