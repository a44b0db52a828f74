"""
A Django app whose requests are attributed to the visitor analytics.js saw.

``SegmentMiddleware`` runs each request in an identity scope: the anonymous id of the
``ajs_anonymous_id`` cookie, the user of ``request.user``, and a context with the ip,
user agent, locale and page. ``OTEL_SEGMENT`` builds the default client, and
``OTEL_SEGMENT_MIDDLEWARE = {"page": True}`` sends a ``page`` per request, named for the
URL pattern.

It opens no socket of its own: Django's test client makes one request, and the messages
go to a local sink. An app needs only the ``django`` extra; the example, the ``examples`` one.

Run::

    python -m pip install 'otel-segment[examples]'
    python examples/web_django.py
"""

from __future__ import annotations

import django
from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.urls import path

import otel_segment
from otel_segment.sink import Sink, format_message


def checkout(request: HttpRequest, plan: str) -> JsonResponse:
    """Track ``Checkout Started`` for whoever the request's scope says this is."""
    current = otel_segment.current_identity() or otel_segment.Identity()
    otel_segment.track(
        current.user_id,
        "Checkout Started",
        {"plan": plan, "coupon": request.GET.get("coupon")},
        anonymous_id=current.anonymous_id,
        context=dict(current.context),
    )
    return JsonResponse({"plan": plan, "locale": current.context.get("locale")})


urlpatterns = [path("checkout/<str:plan>/", checkout)]


def main() -> None:
    """Serve one request through the middleware and print what Segment got."""
    with Sink() as sink:
        settings.configure(
            ROOT_URLCONF=__name__,
            ALLOWED_HOSTS=["testserver"],
            SECRET_KEY="example-only",  # noqa: S106
            MIDDLEWARE=["otel_segment.integrations.django.SegmentMiddleware"],
            OTEL_SEGMENT={"write_key": "demo-key", "host": sink.url},
            OTEL_SEGMENT_MIDDLEWARE={"page": True},
        )
        django.setup()
        from django.test import Client  # noqa: PLC0415 - needs the settings above

        browser = Client(HTTP_ACCEPT_LANGUAGE="fr-FR")
        browser.cookies.load({"ajs_anonymous_id": "%22anon-7%22"})  # as analytics.js sets it
        response = browser.get("/checkout/pro/?coupon=SPRING")
        print(f"GET /checkout/pro/ -> {response.status_code} {response.json()}")

        otel_segment.shutdown()  # flushes the default client
        for message in sink.messages:
            print(format_message(message))


if __name__ == "__main__":
    main()
