"""
A Flask app with Flask-Login whose requests are attributed to the signed-in user.

``init_app`` runs each request in an identity scope: the anonymous id of analytics.js's
``ajs_anonymous_id`` cookie and, once Flask-Login knows who is signed in,
``current_user.get_id()``; ``login_user()`` during a request makes the new user that of
the messages after it. ``page=True`` sends a ``page`` per request, named for the URL rule.

It opens no socket of its own: Flask's test client makes two requests, and the messages
go to a local sink. An app needs the ``flask`` extra (and Flask-Login if it uses it).

Run::

    python -m pip install 'otel-segment[examples]'
    python examples/web_flask.py
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import flask_login
from flask import Flask

import otel_segment
from otel_segment.integrations.flask import init_app
from otel_segment.sink import Sink, format_message

if TYPE_CHECKING:
    from flask.typing import ResponseReturnValue


class User(flask_login.UserMixin):  # type: ignore[misc] # Flask-Login has no types
    """A user Flask-Login loads by id."""

    def __init__(self, user_id: str) -> None:
        self.id = user_id


def create_app(client: otel_segment.Client) -> Flask:
    """The app: a sign-in view, and a view that tracks an event."""
    app = Flask("shop")
    app.secret_key = "example-only"  # noqa: S105
    flask_login.LoginManager(app).user_loader(User)

    @app.post("/login/<user_id>")
    def login(user_id: str) -> ResponseReturnValue:
        flask_login.login_user(User(user_id))
        return "", 204

    @app.post("/projects")
    def create_project() -> ResponseReturnValue:
        current = otel_segment.current_identity() or otel_segment.Identity()
        client.track(
            current.user_id,
            "Project Created",
            {"template": "blank"},
            anonymous_id=current.anonymous_id,
            context=dict(current.context),
        )
        return {"user": current.user_id}, 201

    init_app(app, page=True, client=client)
    return app


def main() -> None:
    """Sign in, create a project, and print what Segment got."""
    with Sink() as sink, otel_segment.Client("demo-key", host=sink.url) as client:
        browser = create_app(client).test_client()
        browser.set_cookie("ajs_anonymous_id", "%22anon-7%22")  # as analytics.js sets it
        for path in ("/login/u1", "/projects"):
            with browser.post(path) as response:
                print(f"POST {path} -> {response.status_code}")

        client.flush()
        for message in sink.messages:
            print(format_message(message))


if __name__ == "__main__":
    main()
