"""System checks of the trading core: the public demo secret key must not run unnoticed."""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.core import checks

DEMO_SECRET_KEY_PREFIX = "insecure-demo-key"


def secret_key_check(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """A warning when the embedded demo SECRET_KEY is in use outside DEMO_MODE."""
    if getattr(settings, "DEMO_MODE", False) or not settings.SECRET_KEY.startswith(DEMO_SECRET_KEY_PREFIX):
        return []
    derived = "" if getattr(settings, "FIELD_ENCRYPTION_KEY", "") else (
        " It also derives the key that encrypts broker credentials and authenticator seeds at rest"
        " (FIELD_ENCRYPTION_KEY is unset), so anyone with the source can decrypt them.")
    return [checks.Warning(
        "DJANGO_SECRET_KEY is not set: the public default key from the source code is in use; anyone can forge "
        "sessions and password-reset links." + derived,
        hint="Set DJANGO_SECRET_KEY (and FIELD_ENCRYPTION_KEY) in the environment, or DEMO_MODE=1 for the demo.",
        id="trading.W001",
    )]


def log_startup_warnings() -> None:
    """Log secret_key_check's warnings: servers (daphne, gunicorn) do not run system checks."""
    for problem in secret_key_check():
        logging.getLogger("trading.security").warning("%s %s (%s)", problem.msg, problem.hint, problem.id)


def register() -> None:
    checks.register(secret_key_check, checks.Tags.security)
