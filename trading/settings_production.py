"""Production settings: the defaults of trading.settings, hardened.

Use with ``DJANGO_SETTINGS_MODULE=trading.settings_production``. Refuses to
start without a real secret key and field-encryption key from the environment;
`manage.py check --deploy` is clean with it (tests/admin/test_security.py).

Behind a TLS-terminating proxy, set ``DJANGO_SECURE_PROXY_SSL_HEADER=1`` so
Django trusts its ``X-Forwarded-Proto`` header.
"""

from __future__ import annotations

import os

from django.core.exceptions import ImproperlyConfigured

from trading.settings import *  # noqa: F403
from trading.settings import env_bool


def _required(name: str) -> str:
    value = os.environ.get(name, "").strip()
    if not value:
        raise ImproperlyConfigured(f"{name} must be set in the environment for production")
    return value


DEBUG = False
SECRET_KEY = _required("DJANGO_SECRET_KEY")
if SECRET_KEY.startswith("insecure-demo-key") or len(SECRET_KEY) < 50:
    raise ImproperlyConfigured("DJANGO_SECRET_KEY must be a random value of at least 50 characters")
FIELD_ENCRYPTION_KEY = _required("FIELD_ENCRYPTION_KEY")
AUDIT_HMAC_KEY = _required("AUDIT_HMAC_KEY")
if len(AUDIT_HMAC_KEY) < 32 or AUDIT_HMAC_KEY in (SECRET_KEY, FIELD_ENCRYPTION_KEY):
    raise ImproperlyConfigured("AUDIT_HMAC_KEY must be a random value of at least 32 characters of its own")
ALLOWED_HOSTS = [host for host in _required("DJANGO_ALLOWED_HOSTS").split(",") if host and host != "testserver"]
CSRF_TRUSTED_ORIGINS = [o for o in os.environ.get("DJANGO_CSRF_TRUSTED_ORIGINS", "").split(",") if o]

# Staff log in with a one-time password; no demo shortcuts (the exempt usernames apply only in DEMO_MODE).
DEMO_MODE = False
STAFF_REQUIRE_2FA = True

# HTTPS only, cookies only over HTTPS, no framing, HSTS for a year.
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", True)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]  # the load balancer's plain-HTTP probes
if env_bool("DJANGO_SECURE_PROXY_SSL_HEADER", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_HSTS_SECONDS = int(os.environ.get("DJANGO_SECURE_HSTS_SECONDS", str(365 * 24 * 3600)))
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
SESSION_COOKIE_SECURE = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SECURE = True
CSRF_COOKIE_HTTPONLY = True
LANGUAGE_COOKIE_SECURE = True
X_FRAME_OPTIONS = "DENY"

# /metrics: staff or the bearer token, never anyone (monitoring/metrics.py, docs/metrics.md).
METRICS_PUBLIC = False
METRICS_TOKEN = os.environ.get("METRICS_TOKEN", "").strip()
if METRICS_TOKEN and len(METRICS_TOKEN) < 32:
    raise ImproperlyConfigured("METRICS_TOKEN must be a random value of at least 32 characters")
