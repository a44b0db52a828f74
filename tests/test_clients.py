"""Tests of ClientRef: how a source finds its client."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

import otel_segment
from otel_segment import Client
from otel_segment.sources.clients import ClientRef

if TYPE_CHECKING:
    from _server import ScriptedServer


class TestClientRef:
    """Given, owned, or the process-wide default: one rule for every source."""

    def test_given_client_is_used_and_never_closed(self, client: Client) -> None:
        """A given client is what get() and current() return; close() leaves it running."""
        ref = ClientRef(client)
        assert (client, client, client, None) == (ref.get(), ref.current(), ref.fixed, ref.owned)
        assert ref.close()
        assert not client.closed

    def test_options_build_an_owned_client_closed_with_the_ref(
        self, segment_server: ScriptedServer
    ) -> None:
        """Client options build a client at once, which close() shuts down."""
        ref = ClientRef(None, {"write_key": "k", "host": segment_server.url})
        owned = ref.owned
        assert owned is not None
        assert owned is ref.get()
        assert ref.close(5)
        assert owned.closed

    @pytest.mark.usefixtures("no_write_key")
    def test_default_client_is_followed(self) -> None:
        """Without a client or options, the default is looked up at each use, never early."""
        ref = ClientRef()
        assert ref.current() is None
        assert "default client" == repr(ref)
        seen: list[Client] = []
        ref.follow(seen.append)
        default = otel_segment.configure(write_key="k", send=False)
        try:
            assert (default, default, [default]) == (ref.get(), ref.current(), seen)
        finally:
            otel_segment.shutdown()

    @pytest.mark.usefixtures("no_write_key")
    def test_no_default_client_can_be_built(self) -> None:
        """get() says why when the default client cannot be built."""
        with pytest.raises(ValueError, match="write_key"):
            ClientRef().get()

    @pytest.mark.parametrize(
        ("client", "options", "match"),
        [
            ("not a client", None, "client must be an otel_segment.Client, got str"),
            (None, {"write_key": "k", "flush_at": -1}, "flush_at"),
        ],
    )
    def test_bad_arguments_fail_at_construction(
        self, client: object, options: dict[str, object] | None, match: str
    ) -> None:
        """A wrong client or option fails when the source is made, naming it."""
        with pytest.raises((TypeError, ValueError), match=match):
            ClientRef(client, options)  # type: ignore[arg-type]

    def test_both_a_client_and_options_is_refused(self, client: Client) -> None:
        """A client and options together are ambiguous: refused, naming the options."""
        with pytest.raises(TypeError, match=r"\(host\), not both"):
            ClientRef(client, {"host": "http://127.0.0.1:1"})
