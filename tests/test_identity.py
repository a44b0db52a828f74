"""Tests for otel_segment.identity: scopes over contextvars, nesting, set_identity."""

from __future__ import annotations

import asyncio
import threading

import pytest
from opentelemetry import baggage

from otel_segment import Identity, current_identity, identity, set_identity
from otel_segment.identity import close_scope, open_lazy_scope, scope_is_open


class TestIdentityScopes:
    """identity(...) opens a scope; current_identity() reads the merged view."""

    def test_outside_every_scope(self) -> None:
        """No scope: None."""
        assert current_identity() is None

    def test_scope_sets_and_restores(self) -> None:
        """Inside the block the identity is in force; after it, gone."""
        with identity(user_id="u1", context={"ip": "203.0.113.9"}) as merged:
            assert Identity("u1", None, {"ip": "203.0.113.9"}) == merged
            assert merged == current_identity()
        assert current_identity() is None

    def test_nested_scopes_merge(self) -> None:
        """Inner fields win; contexts merge one level deep; the outer scope comes back."""
        with identity(user_id="u1", anonymous_id="a1", context={"page": {"path": "/"}}):
            with identity(user_id=7, context={"page": {"url": "http://x/"}, "ip": "1.2.3.4"}):
                inner = current_identity()
                assert inner is not None
                assert ("7", "a1") == (inner.user_id, inner.anonymous_id)
                assert {"page": {"path": "/", "url": "http://x/"}, "ip": "1.2.3.4"} == dict(
                    inner.context
                )
            outer = current_identity()
            assert outer is not None
            assert "u1" == outer.user_id

    def test_set_identity_changes_the_innermost_scope(self) -> None:
        """A login mid-request: later reads see the new user, the outer scope is untouched."""
        with identity(anonymous_id="a1"):
            with identity(context={"ip": "1.2.3.4"}):
                set_identity(user_id="u2", context={"locale": "de-DE"})
                now = current_identity()
                assert now is not None
                assert ("u2", "a1") == (now.user_id, now.anonymous_id)
                assert {"ip": "1.2.3.4", "locale": "de-DE"} == dict(now.context)
            outer = current_identity()
            assert outer is not None
            assert outer.user_id is None

    def test_set_identity_outside_a_scope_is_an_error(self) -> None:
        """Nothing to change: a clear error."""
        with pytest.raises(RuntimeError, match="identity"):
            set_identity(user_id="u1")

    @pytest.mark.parametrize(
        ("kwargs", "field"),
        [({"user_id": 1.5}, "user_id"), ({"anonymous_id": True}, "anonymous_id")],
    )
    def test_bad_ids(self, kwargs: dict[str, object], field: str) -> None:
        """An id that is not a string or an int is named."""
        with pytest.raises(TypeError, match=field), identity(**kwargs):  # type: ignore[arg-type]
            pass

    def test_bad_context(self) -> None:
        """A context that is not a mapping is named."""
        with pytest.raises(TypeError, match="context"), identity(context=["ip"]):  # type: ignore[arg-type]
            pass


class TestIdentityIsolation:
    """Scopes are per thread and per asyncio task."""

    def test_other_threads_do_not_see_the_scope(self) -> None:
        """A thread started inside a scope has its own (empty) context."""
        seen: list[Identity | None] = []
        with identity(user_id="u1"):
            thread = threading.Thread(target=lambda: seen.append(current_identity()))
            thread.start()
            thread.join()
        assert [None] == seen

    def test_tasks_keep_their_own_scopes(self) -> None:
        """Two concurrent tasks each see their own identity."""

        async def request(user: str, started: asyncio.Event, go: asyncio.Event) -> str | None:
            with identity(user_id=user):
                started.set()
                await go.wait()
                found = current_identity()
                return None if found is None else found.user_id

        async def main() -> list[str | None]:
            go = asyncio.Event()
            first, second = asyncio.Event(), asyncio.Event()
            tasks = [
                asyncio.create_task(request("u1", first, go)),
                asyncio.create_task(request("u2", second, go)),
            ]
            await first.wait()
            await second.wait()
            go.set()
            return list(await asyncio.gather(*tasks))

        assert ["u1", "u2"] == asyncio.run(main())


class TestLazyScope:
    """open_lazy_scope: the anonymous id and context are made when the scope is first read."""

    def test_loaded_once_when_first_read(self) -> None:
        """Opening does not load; the first read does, once; closing restores."""
        loads: list[int] = []

        def load() -> tuple[str | None, dict[str, object]]:
            loads.append(1)
            return "a1", {"ip": "203.0.113.9"}

        token = open_lazy_scope("u1", load)
        try:
            assert scope_is_open()
            assert [] == loads
            assert Identity("u1", "a1", {"ip": "203.0.113.9"}) == current_identity()
            assert current_identity() == current_identity()
            assert [1] == loads
        finally:
            close_scope(token)
        assert not scope_is_open()

    def test_set_identity_before_the_first_read_wins(self) -> None:
        """set_identity() on an unread lazy scope loads it first; its own fields win."""
        token = open_lazy_scope(None, lambda: ("a1", {"page": {"path": "/"}, "ip": "1.2.3.4"}))
        try:
            set_identity(anonymous_id="a2", context={"page": {"url": "http://x/"}})
            expected = Identity(
                None, "a2", {"page": {"path": "/", "url": "http://x/"}, "ip": "1.2.3.4"}
            )
            assert expected == current_identity()
        finally:
            close_scope(token)

    def test_inner_scope_reads_the_lazy_outer_one(self) -> None:
        """A scope nested in a lazy one merges over what the lazy one loads."""
        token = open_lazy_scope("u1", lambda: ("a1", {"ip": "1.2.3.4"}))
        try:
            with identity(user_id="u2", context={"locale": "en-US"}) as merged:
                assert Identity("u2", "a1", {"ip": "1.2.3.4", "locale": "en-US"}) == merged
        finally:
            close_scope(token)


class TestIdentityBaggage:
    """baggage=True puts the ids into OpenTelemetry Baggage, for the block only."""

    def test_baggage_set_and_removed(self) -> None:
        """enduser.id / enduser.pseudo.id are in Baggage inside the block only."""
        with identity(user_id="u1", anonymous_id="a1", baggage=True):
            assert {"enduser.id": "u1", "enduser.pseudo.id": "a1"} == dict(baggage.get_all())
        assert {} == dict(baggage.get_all())

    def test_baggage_off_by_default(self) -> None:
        """Without baggage=True nothing leaves the process."""
        with identity(user_id="u1"):
            assert {} == dict(baggage.get_all())
