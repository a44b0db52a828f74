"""
How a source finds its client: the one given, one built from options and owned, or the default.

Every source (the logging handler, the OpenTelemetry processor and exporters, the
decorators, the metrics) takes ``client=`` and, where it can own one, client keyword
arguments. :class:`ClientRef` holds that choice once, so the sources agree on it:

- ``client=`` given: that client, always; the source never shuts it down.
- client options given: a :class:`~otel_segment.Client` built from them at once (so a
  wrong option fails the source's construction), owned: :meth:`ClientRef.close` shuts
  it down.
- neither: the process-wide default client, looked up at each use, so a source made
  before ``otel_segment.configure(...)`` feeds the client configured later.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from otel_segment import _default
from otel_segment.pipeline.client import Client

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

__all__ = ["ClientRef"]


class ClientRef:
    """
    A source's way to its client: given, owned, or the process-wide default.

    Args:
        client: The client to use, or ``None``.
        client_kwargs: :class:`~otel_segment.Client` arguments: build and own a client.

    Raises:
        TypeError: *client* is not a Client, both *client* and *client_kwargs* are
            given, or a client argument has the wrong type.
        ValueError: A client argument is out of range.
    """

    __slots__ = ("_fixed", "_owned")

    def __init__(
        self, client: Client | None = None, client_kwargs: Mapping[str, Any] | None = None
    ) -> None:
        if client is not None and not isinstance(client, Client):
            raise TypeError(f"client must be an otel_segment.Client, got {type(client).__name__}")
        if client is not None and client_kwargs:
            names = ", ".join(sorted(client_kwargs))
            raise TypeError(f"pass client= or client keyword arguments ({names}), not both")
        self._owned = Client(**client_kwargs) if client_kwargs else None
        self._fixed = client if client is not None else self._owned

    def __repr__(self) -> str:
        """Which client is used (never the write key)."""
        return "default client" if self._fixed is None else repr(self._fixed)

    @property
    def fixed(self) -> Client | None:
        """The given or owned client; ``None`` when the default client is followed."""
        return self._fixed

    @property
    def owned(self) -> Client | None:
        """The client built from options, which :meth:`close` shuts down; else ``None``."""
        return self._owned

    def get(self) -> Client:
        """
        The client to use now, building the default client if needed.

        Raises:
            TypeError: The default client cannot be built from the settings.
            ValueError: Ditto.
        """
        return self._fixed if self._fixed is not None else _default.get_client()

    def current(self) -> Client | None:
        """The client to use now, if there is one; never builds the default client."""
        return self._fixed if self._fixed is not None else _default.current()

    def follow(self, callback: Callable[[Client], object]) -> None:
        """
        Call *callback* with the client, now; when following the default, with each one.

        For sources that set something up on the client itself (``@snapshot``
        registers on its timer) rather than per call.
        """
        if self._fixed is None:
            _default.on_client(callback)
        else:
            callback(self._fixed)

    def close(self, timeout: float | None = None) -> bool:
        """
        Shut an owned client down (default: within its ``exit_timeout``); else do nothing.

        Returns:
            Whether everything queued was delivered (``True`` when nothing is owned).
        """
        owned = self._owned
        if owned is None:
            return True
        return owned.shutdown(owned.config.exit_timeout if timeout is None else timeout)
