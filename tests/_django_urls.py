"""URLs and views of the test Django project (see _django_project.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.contrib.auth import get_user_model, login
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path

import otel_segment

if TYPE_CHECKING:
    from django.urls import URLPattern


def whoami(request: HttpRequest, pk: int) -> HttpResponse:
    """Answer with the identity in force while the view runs."""
    del request, pk
    current = otel_segment.current_identity()
    if current is None:
        return JsonResponse(None, safe=False)
    return JsonResponse(
        {
            "user_id": current.user_id,
            "anonymous_id": current.anonymous_id,
            "context": dict(current.context),
        }
    )


def header_user(request: HttpRequest) -> str | None:
    """An identify callback: the ``X-User`` header."""
    user = request.headers.get("X-User")
    return None if user is None else str(user)


def sign_in(request: HttpRequest, username: str) -> HttpResponse:
    """Log *username* in, as a login form would after checking the password."""
    user = get_user_model().objects.get(username=username)
    login(request, user)
    return HttpResponse(status=204)


def broken(request: HttpRequest) -> HttpResponse:
    """Fail."""
    raise LookupError(request.path)


urlpatterns: list[URLPattern] = [
    path("items/<int:pk>/", whoami),
    path("login/<str:username>/", sign_in),
    path("broken/", broken),
]
