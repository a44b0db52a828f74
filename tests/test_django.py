"""Tests for otel_segment.integrations.django: Django's test client and a settings module."""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any

import django
import pytest
from _helpers import FAST_RETRY, WRITE_KEY, delivered

# Load the settings module, then take the variable away again: the subprocesses other
# tests start (Celery's, in particular) must not find a Django project.
os.environ["DJANGO_SETTINGS_MODULE"] = "_django_project"
try:
    django.setup()
finally:
    del os.environ["DJANGO_SETTINGS_MODULE"]

from django.contrib.auth import get_user_model  # these need django.setup() first
from django.core.management import call_command
from django.test import Client as DjangoClient
from django.test import override_settings

import otel_segment
from otel_segment import _default

if TYPE_CHECKING:
    from collections.abc import Iterator

    from _server import ScriptedServer

COOKIES = {"ajs_anonymous_id": "%22anon-7%22"}


@pytest.fixture(scope="module", autouse=True)
def database() -> None:
    """The auth and session tables, in SQLite's memory, and one user."""
    call_command("migrate", verbosity=0)
    get_user_model().objects.get_or_create(username="ada")


@pytest.fixture
def browser() -> DjangoClient:
    """Django's test client with the analytics.js cookie."""
    client = DjangoClient(raise_request_exception=False)
    client.cookies.load(COOKIES)
    return client


@pytest.fixture
def pages(segment_server: ScriptedServer, no_write_key: None) -> Iterator[None]:
    """OTEL_SEGMENT builds the default client (shut down afterwards); pages are on."""
    del no_write_key
    options = {
        "write_key": WRITE_KEY,
        "host": segment_server.url,
        "flush_interval": 0.05,
        "retry": FAST_RETRY,
    }
    with override_settings(OTEL_SEGMENT=options, OTEL_SEGMENT_MIDDLEWARE={"page": True}):
        yield
    _default.shutdown()


def sent(server: ScriptedServer, n: int) -> list[dict[str, Any]]:
    """What *server* received from the default client the middleware built, once flushed."""
    client = _default.current()
    assert client is not None, "the middleware built no default client"
    return delivered(client, server, n)


def user_pk() -> str:
    """The test user's primary key, as a user id."""
    return str(get_user_model().objects.get(username="ada").pk)


class TestScope:
    """Each request runs in an identity scope: the cookie, request.user, the headers."""

    def test_anonymous_visitor(self, browser: DjangoClient) -> None:
        """No login: the cookie's anonymous id, and the request's context."""
        seen = browser.get("/items/3/?color=red", HTTP_USER_AGENT="Mozilla/5.0").json()

        expected = {
            "user_id": None,
            "anonymous_id": "anon-7",
            "context": {
                "page": {
                    "path": "/items/3/",
                    "search": "?color=red",
                    "referrer": "",
                    "url": "http://testserver/items/3/?color=red",
                },
                "ip": "127.0.0.1",
                "userAgent": "Mozilla/5.0",
            },
        }
        assert expected == seen

    def test_authenticated_user(self, browser: DjangoClient) -> None:
        """After AuthenticationMiddleware: request.user.pk is the user id."""
        browser.force_login(get_user_model().objects.get(username="ada"))
        seen = browser.get("/items/3/").json()
        assert (user_pk(), "anon-7") == (seen["user_id"], seen["anonymous_id"])

    def test_identify_setting(self, browser: DjangoClient) -> None:
        """OTEL_SEGMENT_MIDDLEWARE["identify"]: a dotted path, or a callable."""
        with override_settings(OTEL_SEGMENT_MIDDLEWARE={"identify": "_django_urls.header_user"}):
            assert "u-42" == browser.get("/items/3/", HTTP_X_USER="u-42").json()["user_id"]
        # Django builds the middleware once per handler: a new test client for new settings.
        with override_settings(OTEL_SEGMENT_MIDDLEWARE={"identify": lambda _request: 42}):
            assert "42" == DjangoClient().get("/items/3/").json()["user_id"]

    def test_identify_that_raises(self, browser: DjangoClient) -> None:
        """An identify that raises: the request is served, with no user id."""
        with override_settings(OTEL_SEGMENT_MIDDLEWARE={"identify": lambda _request: 1 / 0}):
            seen = browser.get("/items/3/").json()
        assert (None, "anon-7") == (seen["user_id"], seen["anonymous_id"])

    def test_unknown_option(self, browser: DjangoClient) -> None:
        """A misspelt option fails loudly, naming it."""
        with (
            override_settings(OTEL_SEGMENT_MIDDLEWARE={"pages": True}),
            pytest.raises(ValueError, match="unknown options \\['pages'\\]"),
        ):
            browser.get("/items/3/")


class TestPages:
    """OTEL_SEGMENT_MIDDLEWARE = {"page": True}: one page per request, via the default client."""

    @pytest.mark.usefixtures("pages")
    def test_page_named_for_the_url_pattern(
        self, browser: DjangoClient, segment_server: ScriptedServer
    ) -> None:
        """The URL pattern names the page; the default client was built from OTEL_SEGMENT."""
        browser.get("/items/3/?color=red")
        DjangoClient().get("/items/4/")  # a second handler reuses the same default client

        pages = sent(segment_server, 2)
        assert ["/items/<int:pk>/"] * 2 == [page["name"] for page in pages]
        assert ["anon-7", 200, "?color=red"] == [
            pages[0]["anonymousId"],
            pages[0]["properties"]["status"],
            pages[0]["properties"]["search"],
        ]
        assert segment_server.url == otel_segment.default_client.host  # type: ignore[union-attr]

    @pytest.mark.usefixtures("pages")
    def test_login_during_the_request(
        self, browser: DjangoClient, segment_server: ScriptedServer
    ) -> None:
        """django.contrib.auth.login() in the view: the page is the new user's."""
        browser.get("/login/ada/")

        [page] = sent(segment_server, 1)
        assert (user_pk(), "anon-7", 204) == (
            page["userId"],
            page["anonymousId"],
            page["properties"]["status"],
        )

    @pytest.mark.usefixtures("pages")
    def test_view_that_raises(
        self,
        browser: DjangoClient,
        segment_server: ScriptedServer,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        """Django answers 500 as usual, and the page says so."""
        with caplog.at_level(logging.CRITICAL, logger="django.request"):
            assert 500 == browser.get("/broken/").status_code

        [page] = sent(segment_server, 1)
        assert ("/broken/", 500) == (page["name"], page["properties"]["status"])
