"""DEBUG off by default, secrets masked on debug pages, a loud warning about the public key (issue 8, item 11)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client, override_settings

ROOT = Path(__file__).resolve().parents[2]
DB_PASSWORD = "pg-Pa55-word-91c"
REDIS_PASSWORD = "redis-Pa55-77d"


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DJANGO_", "DEMO_MODE", "FIELD_ENCRYPTION_KEY", "DATABASE_URL", "REDIS_URL"))}
    env.update(extra)
    return env


def _python(code: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


SHOW_DEBUG = "import django, os; os.environ['DJANGO_SETTINGS_MODULE']='trading.settings'; django.setup(); " \
             "from django.conf import settings; print('DEBUG', settings.DEBUG)"


def test_debug_is_off_without_django_debug() -> None:
    result = _python(SHOW_DEBUG, _env())
    assert result.returncode == 0, result.stderr
    assert "DEBUG False" in result.stdout


def test_django_debug_1_turns_it_on() -> None:
    assert "DEBUG True" in _python(SHOW_DEBUG, _env(DJANGO_DEBUG="1")).stdout


def test_make_run_does_not_force_debug() -> None:
    makefile = (ROOT / "Makefile").read_text()
    command = (ROOT / "trading" / "management" / "commands" / "run_system.py").read_text()
    assert "DJANGO_DEBUG" not in makefile and "DJANGO_DEBUG" not in command


@pytest.mark.django_db
def test_an_unknown_host_gets_a_plain_400() -> None:
    response = Client().get("/admin/", HTTP_HOST="evil.example.com")
    assert response.status_code == 400
    body = response.content.decode()
    assert "Traceback" not in body and "DATABASE" not in body and "SECRET" not in body and len(body) < 500


@pytest.mark.django_db
def test_debug_pages_mask_passwords_in_urls_and_secret_settings() -> None:
    database_url = f"postgres://trader:{DB_PASSWORD}@db.internal:5432/trading"
    redis_url = f"redis://:{REDIS_PASSWORD}@cache.internal:6379/0"
    layers = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer", "CONFIG": {"hosts": [redis_url]}}}
    with override_settings(DEBUG=True, DATABASE_URL=database_url, REDIS_URL=redis_url, CELERY_BROKER_URL=redis_url,
                           SENTRY_DSN=f"https://abc:{DB_PASSWORD}@sentry.example.com/1", CHANNEL_LAYERS=layers):
        response = Client().get("/admin/", HTTP_HOST="evil.example.com")
    body = response.content.decode()
    assert response.status_code == 400
    assert "DisallowedHost" in body and "REDIS_URL" in body  # it is the debug page, listing settings
    assert DB_PASSWORD not in body and REDIS_PASSWORD not in body


def test_the_reporter_masks_credentials_in_local_variables() -> None:
    from django.views.debug import get_exception_reporter_class

    dsn = f"postgres://trader:{DB_PASSWORD}@db.internal/trading"
    try:
        raise RuntimeError(f"cannot connect to {dsn}")
    except RuntimeError:
        info = sys.exc_info()
    with override_settings(DEBUG=True):
        reporter = get_exception_reporter_class(None)(None, *info)
        html, text = reporter.get_traceback_html(), reporter.get_traceback_text()
    assert "db.internal" in text  # the report is real
    assert DB_PASSWORD not in html and DB_PASSWORD not in text


def test_mask_url_credentials() -> None:
    from trading.debug import mask_url_credentials

    assert mask_url_credentials("redis://:pw@h:6379/0") == "redis://:********@h:6379/0"
    assert mask_url_credentials("x postgres://u:p@ss@h/db") .count("p@ss") == 0
    assert mask_url_credentials("postgres://u@h/db") == "postgres://u@h/db"
    assert mask_url_credentials("http://127.0.0.1:8000/admin/") == "http://127.0.0.1:8000/admin/"


def test_a_non_demo_start_without_a_secret_key_warns(caplog) -> None:
    from trading import checks

    with override_settings(DEMO_MODE=False, SECRET_KEY="insecure-demo-key-change-me-" + "x" * 24, FIELD_ENCRYPTION_KEY=""):
        problems = checks.secret_key_check()
        with caplog.at_level(logging.WARNING, logger="trading.security"):
            checks.log_startup_warnings()
    assert [p.id for p in problems] == ["trading.W001"]
    assert "DJANGO_SECRET_KEY" in caplog.text and "public default key" in caplog.text
    with override_settings(DEMO_MODE=True):
        assert checks.secret_key_check() == []
    with override_settings(DEMO_MODE=False, SECRET_KEY="a-real-key-" + "k" * 50):
        assert checks.secret_key_check() == []


def test_manage_py_check_shows_the_warning_outside_demo_mode() -> None:
    result = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=_env(), capture_output=True,
                            text=True, timeout=120)
    assert "trading.W001" in result.stdout + result.stderr
    demo = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=_env(DEMO_MODE="1"),
                          capture_output=True, text=True, timeout=120)
    assert "trading.W001" not in demo.stdout + demo.stderr
