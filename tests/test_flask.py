"""Tests for otel_segment.integrations.flask: Flask's test client, with Flask-Login."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import flask_login
import pytest
from _helpers import delivered
from flask import Flask, abort, jsonify
from opentelemetry import trace
from opentelemetry.instrumentation.flask import FlaskInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

import otel_segment
from otel_segment.integrations.flask import init_app

if TYPE_CHECKING:
    from collections.abc import Callable

    from _helpers import Clients
    from _server import ScriptedServer
    from flask.typing import ResponseReturnValue

COOKIE = ("ajs_anonymous_id", "%22anon-7%22")


class User(flask_login.UserMixin):  # type: ignore[misc] # Flask-Login has no types
    """A user Flask-Login loads by id."""

    def __init__(self, user_id: str) -> None:
        self.id = user_id


def create_app(**options: Any) -> Flask:
    """An app with Flask-Login and the integration; *options* are init_app's."""
    app = Flask("shop")
    app.secret_key = "test-only"  # noqa: S105 - a test app's
    logins = flask_login.LoginManager(app)
    logins.user_loader(User)

    @app.get("/items/<int:item_id>")
    def item(item_id: int) -> ResponseReturnValue:
        del item_id
        current = otel_segment.current_identity()
        if current is None:
            return jsonify(None)
        return jsonify(
            {
                "user_id": current.user_id,
                "anonymous_id": current.anonymous_id,
                "context": dict(current.context),
            }
        )

    @app.post("/login/<user_id>")
    def login(user_id: str) -> ResponseReturnValue:
        flask_login.login_user(User(user_id))
        return "", 204

    @app.get("/gone")
    def gone() -> ResponseReturnValue:
        abort(410)

    init_app(app, **options)
    return app


def get(app: Flask, path: str = "/items/1", **headers: str) -> Any:
    """GET *path* through Flask's test client, with the analytics.js cookie."""
    browser = app.test_client()
    browser.set_cookie(*COOKIE)
    return browser.get(path, headers=headers).get_json()


class TestScope:
    """Each request runs in an identity scope; the user comes from Flask-Login."""

    def test_anonymous_visitor(self) -> None:
        """No login: the cookie's anonymous id and the request's context."""
        seen = get(create_app(), "/items/1?x=1", **{"Accept-Language": "nl-BE"})

        expected = {
            "user_id": None,
            "anonymous_id": "anon-7",
            "context": {
                "page": {
                    "path": "/items/1",
                    "search": "?x=1",
                    "referrer": "",
                    "url": "http://localhost/items/1?x=1",
                },
                "ip": "127.0.0.1",
                "userAgent": seen["context"]["userAgent"],  # Werkzeug's own
                "locale": "nl-BE",
            },
        }
        assert expected == seen
        assert seen["context"]["userAgent"].startswith("Werkzeug/")

    def test_logged_in_user(self) -> None:
        """Flask-Login's current_user is the user id, read once the request context exists."""
        browser = create_app().test_client()
        browser.post("/login/u1")
        assert "u1" == browser.get("/items/1").get_json()["user_id"]

    @pytest.mark.parametrize(
        ("identify", "expected"),
        [
            (lambda: "u9", "u9"),
            (lambda: 1 / 0, None),
            (lambda: ["junk"], None),
        ],
    )
    def test_identify(self, identify: Callable[[], object], expected: str | None) -> None:
        """identify() is called in the request's context; if it fails, no user id."""
        assert expected == get(create_app(identify=identify))["user_id"]

    def test_app_without_flask_login(self) -> None:
        """An app with no login manager: no user id, and no error."""
        app = Flask("plain")
        app.get("/")(lambda: jsonify(otel_segment.current_identity() is not None))
        init_app(app)
        assert get(app, "/") is True


class TestPages:
    """page=True: one page per request, named for its URL rule."""

    def test_pages(self, clients: Clients, segment_server: ScriptedServer) -> None:
        """The rule names the page; a login during the request makes it the user's."""
        client = clients()
        browser = create_app(page=True, client=client).test_client()
        browser.set_cookie(*COOKIE)
        requests = [("GET", "/items/5"), ("POST", "/login/u1"), ("GET", "/gone"), ("GET", "/no")]
        for method, path in requests:
            with browser.open(path, method=method):  # the page is sent when it is closed
                pass

        sent = delivered(client, segment_server, 4)
        expected = [
            ("/items/<int:item_id>", None, 200),
            ("/login/<user_id>", "u1", 204),
            ("/gone", "u1", 410),
            ("/no", "u1", 404),
        ]
        assert expected == [
            (page["name"], page.get("userId"), page["properties"]["status"]) for page in sent
        ]
        assert {"anon-7"} == {page["anonymousId"] for page in sent}


class TestSampledSpans:
    """Flask's instrumentation at 1 % sampling: markers set in the view still count."""

    def test_every_marked_request_arrives(
        self, clients: Clients, segment_server: ScriptedServer
    ) -> None:
        """100 requests, each marked in its view: 100 events, with the request's user."""
        client = clients()
        sampler = otel_segment.SegmentSampler(ParentBased(TraceIdRatioBased(0.01)))
        provider = TracerProvider(sampler=sampler)
        provider.add_span_processor(otel_segment.SegmentSpanProcessor(client=client))
        app = create_app()

        @app.post("/signup/<user_id>")
        def signup(user_id: str) -> ResponseReturnValue:
            trace.get_current_span().set_attributes(
                {"segment.event": "Signed Up", "enduser.id": user_id}
            )
            return "", 201

        FlaskInstrumentor().instrument_app(app, tracer_provider=provider)  # type: ignore[no-untyped-call]
        try:
            browser = app.test_client()
            for n in range(100):
                browser.post(f"/signup/u{n}")
        finally:
            FlaskInstrumentor().uninstrument_app(app)  # type: ignore[no-untyped-call]
            provider.shutdown()

        events = [m for m in delivered(client, segment_server) if m.get("event") == "Signed Up"]
        assert sorted(f"u{n}" for n in range(100)) == sorted(m["userId"] for m in events)
