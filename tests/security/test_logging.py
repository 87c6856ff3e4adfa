"""No log line contains an API key, password or secret (issue 8, item 12)."""

from __future__ import annotations

import base64
import logging

import pytest
from django.test import Client, override_settings

from tests import factories


@pytest.fixture
def raw_key(transactional_db) -> str:
    factories.account("acc1")
    return factories.api_key("k1", accounts=["acc1"])


class _Raw(logging.Handler):
    """Records as their logger emits them, before any handler's filter rewrites them."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.mark.parametrize("debug", [False, True])
@pytest.mark.parametrize("scheme", ["Token", "Basic", "bearer-ish", ""])
def test_an_unexpected_authorization_scheme_never_logs_the_key(raw_key, caplog, scheme: str, debug: bool) -> None:
    secret = raw_key.split("_", 2)[2]
    value = {"Basic": "Basic " + base64.b64encode(f"user:{raw_key}".encode()).decode(),
             "": raw_key}.get(scheme, f"{scheme} {raw_key}")
    raw = _Raw()
    loggers = [logging.getLogger(name) for name in ("django", "ninja", "trading")]
    for logger in loggers:
        logger.addHandler(raw)
    try:
        with override_settings(DEBUG=debug), caplog.at_level(logging.DEBUG):
            response = Client().get("/api/v1/accounts/acc1/balance", HTTP_AUTHORIZATION=value)
    finally:
        for logger in loggers:
            logger.removeHandler(raw)
    assert response.status_code == 401
    logged = "\n".join([*raw.lines, *(r.getMessage() for r in caplog.records)])
    assert secret not in logged and raw_key not in logged
    assert value.split(" ")[-1] not in logged


def test_a_bearer_key_still_authenticates(raw_key) -> None:
    response = Client().get("/api/v1/accounts/acc1/balance", HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    assert response.status_code == 200


def test_the_console_handler_redacts_keys_and_url_passwords() -> None:
    from trading.log_filters import RedactSecrets

    key = "tbo_0a1b2c3d_Zm9vYmFyYmF6cXV4cXV1eA-_abc"
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "Unexpected auth - '%s' db=%s", ("Token " + key,
                               "postgres://u:hunter2@db/x"), None)
    RedactSecrets().filter(record)
    line = record.getMessage()
    assert key not in line and "Zm9vYmFy" not in line and "hunter2" not in line
    assert "postgres://u:********@db/x" in line


def test_the_settings_install_the_redaction_filter() -> None:
    root = logging.getLogger()
    filters = [f for h in root.handlers for f in h.filters]
    assert any(type(f).__name__ == "RedactSecrets" for f in filters)


def test_django_records_go_through_the_redaction_filter() -> None:
    """Django's default console handler (DEBUG) would print "django" records unfiltered."""
    django_logger = logging.getLogger("django")
    assert django_logger.handlers == [] and django_logger.propagate
