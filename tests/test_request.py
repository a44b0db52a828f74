"""Tests for otel_segment.integrations._request: a request's sender, read without a framework."""

from __future__ import annotations

import logging
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from otel_segment import Client
from otel_segment.integrations._request import (
    MAX_FIELD_CHARS,
    RequestFacts,
    Settings,
    anonymous_id,
    as_user_id,
    call_identify,
    scope_fields,
)

FACTS = RequestFacts(
    scheme="https",
    host="shop.example:8443",
    path="/caf%C3%A9/cart",
    query="utm_source=news&x=1",
    remote_addr="10.0.0.7",
    cookie="theme=dark; ajs_anonymous_id=%22a-17%22; ajs_user_id=null",
    user_agent="Mozilla/5.0 (X11)",
    accept_language="de-CH,de;q=0.9,en;q=0.8",
    referer="https://news.example/today",
    forwarded_for="203.0.113.9, 10.0.0.1",
)


class TestAnonymousId:
    """The anonymous id of analytics.js's ajs_anonymous_id cookie."""

    @pytest.mark.parametrize(
        ("cookie", "expected"),
        [
            ("ajs_anonymous_id=%22a-17%22", "a-17"),  # analytics.js classic: JSON, encoded
            ('ajs_anonymous_id="a-17"', "a-17"),  # JSON, as is
            ("ajs_anonymous_id=a-17", "a-17"),  # analytics.js 2.0: plain
            ("x=1;ajs_anonymous_id=a-17 ; y=2", "a-17"),
            ("xajs_anonymous_id=a-17", None),  # another cookie's name ends the same
            ("ajs_anonymous_id=", None),
            ('ajs_anonymous_id=""', None),
            ("ajs_anonymous_id=%22a%0A17%22", None),  # a control character
            ('ajs_anonymous_id="a"b"', None),
            ("ajs_anonymous_id=%E2%28%A1", None),  # not UTF-8
            ("ajs_anonymous_id", None),
            (None, None),
        ],
    )
    def test_cookie_forms(self, cookie: str | None, expected: str | None) -> None:
        """Both ways analytics.js writes the cookie are read; malformed values are none."""
        assert expected == anonymous_id(cookie)

    def test_too_long(self) -> None:
        """An id longer than MAX_FIELD_CHARS is not an id."""
        assert anonymous_id("ajs_anonymous_id=" + "a" * (MAX_FIELD_CHARS + 1)) is None

    @given(st.text())
    def test_any_header_is_safe(self, cookie: str) -> None:
        """Whatever the header holds: no exception, and an id is printable text."""
        found = anonymous_id(cookie)
        assert found is None or (found.isprintable() and 0 < len(found) <= MAX_FIELD_CHARS)


class TestScopeFields:
    """The context a request's scope carries, as analytics.js fills it."""

    def test_everything(self) -> None:
        """ip, userAgent, locale and page from the request."""
        expected = (
            "a-17",
            {
                "page": {
                    "path": "/caf%C3%A9/cart",
                    "url": "https://shop.example:8443/caf%C3%A9/cart?utm_source=news&x=1",
                    "search": "?utm_source=news&x=1",
                    "referrer": "https://news.example/today",
                },
                "ip": "10.0.0.7",
                "userAgent": "Mozilla/5.0 (X11)",
                "locale": "de-CH",
            },
        )
        assert expected == scope_fields(FACTS, collect_ip=True, trust_forwarded=False)

    def test_trust_forwarded(self) -> None:
        """Behind a proxy, the first X-Forwarded-For hop is the sender."""
        _, context = scope_fields(FACTS, collect_ip=True, trust_forwarded=True)
        assert "203.0.113.9" == context["ip"]

    def test_no_ip(self) -> None:
        """collect_ip=False: no ip at all."""
        _, context = scope_fields(FACTS, collect_ip=False, trust_forwarded=True)
        assert "ip" not in context

    def test_bare_request(self) -> None:
        """A request with no headers: a page with empty search and referrer, nothing else."""
        bare = RequestFacts(scheme="http", host=None, path="/", query="")
        expected = (None, {"page": {"path": "/", "search": "", "referrer": ""}})
        assert expected == scope_fields(bare, collect_ip=True, trust_forwarded=True)

    @pytest.mark.parametrize(
        ("field", "value", "missing"),
        [
            ("forwarded_for", "unknown, 10.0.0.1", "ip"),
            ("forwarded_for", "203.0.113.9:443", "ip"),
            ("accept_language", "*", "locale"),
            ("accept_language", "en US", "locale"),
            ("user_agent", "x" * (MAX_FIELD_CHARS + 1), "userAgent"),
            ("user_agent", "bot\x00", "userAgent"),
            ("host", "evil.example/<script>", "url"),
        ],
    )
    def test_malformed_values_are_left_out(self, field: str, value: str, missing: str) -> None:
        """A malformed header drops its own field, and only that one."""
        facts = FACTS._replace(**{field: value})
        _, context = scope_fields(facts, collect_ip=True, trust_forwarded=True)
        assert missing not in {**context, **context["page"]}
        assert "/caf%C3%A9/cart" == context["page"]["path"]

    def test_latin1_header_bytes_read_as_utf8(self) -> None:
        """A server hands UTF-8 header bytes over as Latin-1 text; the context has the text."""
        facts = RequestFacts(
            scheme="http",
            host="x",
            path="/",
            query="",
            user_agent="Café/1".encode().decode("latin-1"),
        )
        _, context = scope_fields(facts, collect_ip=False, trust_forwarded=False)
        assert "Café/1" == context["userAgent"]

    @given(
        st.builds(
            RequestFacts,
            scheme=st.sampled_from(["http", "https"]),
            host=st.none() | st.text(max_size=40),
            path=st.text(min_size=1, max_size=40),
            query=st.text(max_size=40),
            remote_addr=st.none() | st.text(max_size=40),
            cookie=st.none() | st.text(max_size=80),
            user_agent=st.none() | st.text(max_size=40),
            accept_language=st.none() | st.text(max_size=40),
            referer=st.none() | st.text(max_size=40),
            forwarded_for=st.none() | st.text(max_size=40),
        ),
        st.booleans(),
    )
    def test_any_request_is_safe(self, facts: RequestFacts, trust: bool) -> None:
        """Whatever the headers hold: no exception, and a page with the path."""
        _, context = scope_fields(facts, collect_ip=True, trust_forwarded=trust)
        assert facts.path == context["page"]["path"]


class TestUserIds:
    """What an identify callback returns, as a user id."""

    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            ("u1", "u1"),
            (42, "42"),
            (uuid.UUID(int=7), "00000000-0000-0000-0000-000000000007"),
            (None, None),
            ("", None),
        ],
    )
    def test_ids(self, value: object, expected: str | None) -> None:
        """Strings, ints and UUIDs are ids; None and "" mean none."""
        assert expected == as_user_id(value, "test")

    @pytest.mark.parametrize("junk", [True, 3.5, object(), ["u1"], "x" * (MAX_FIELD_CHARS + 1)])
    def test_junk_is_ignored_with_a_warning(
        self, junk: object, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Anything else is no id, and a warning says where it came from."""
        with caplog.at_level(logging.WARNING, logger="otel_segment"):
            assert as_user_id(junk, "my_identify") is None
        assert "'my_identify' returned" in caplog.text

    def test_callback_that_raises(self, caplog: pytest.LogCaptureFixture) -> None:
        """A callback's exception stays here: no id, a warning with the traceback."""

        def identify() -> str:
            raise LookupError("no session")

        with caplog.at_level(logging.WARNING, logger="otel_segment"):
            assert call_identify(identify) is None
        assert "LookupError: no session" in caplog.text


class TestSettings:
    """The middlewares' options are checked when the middleware is built."""

    @pytest.mark.parametrize(
        ("options", "message"),
        [
            ({"client": "key"}, "client must be an otel_segment.Client"),
            ({"identify": "user.id"}, "identify must be callable"),
            ({"page": 1}, "page must be a bool"),
            ({"collect_ip": None}, "collect_ip must be a bool"),
            ({"trust_forwarded": "yes"}, "trust_forwarded must be a bool"),
        ],
    )
    def test_wrong_types(self, options: dict[str, object], message: str) -> None:
        """A TypeError names the option."""
        with pytest.raises(TypeError, match=message):
            Settings(**options)  # type: ignore[arg-type]

    def test_a_client(self) -> None:
        """A Client is accepted."""
        client = Client("k", send=False)
        try:
            assert client is Settings(client).client
        finally:
            client.shutdown()
