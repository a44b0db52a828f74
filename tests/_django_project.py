"""Django settings for tests/test_django.py: auth and sessions, SQLite in memory."""

from __future__ import annotations

SECRET_KEY = "test-only-not-secret"  # noqa: S105 - a test project's
ALLOWED_HOSTS = ["testserver"]
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "otel_segment.integrations.django.SegmentMiddleware",
]
ROOT_URLCONF = "_django_urls"
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast, for tests
USE_TZ = True
