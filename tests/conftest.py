"""Shared fixtures. Factories live in tests/factories.py."""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

REQUIRE_SERVICES = os.environ.get("REQUIRE_SERVICES") == "1"
# Where the `clock` fixture starts: a Monday and a trading day, in the continuous session.
CLOCK_START = datetime(2026, 11, 23, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))


class Clock:
    """The test clock: ``trading.clock.now()`` answers ``at`` until a test sets or advances it."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at

    def advance(self, seconds: float) -> None:
        self.at += timedelta(seconds=seconds)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """Freeze the one clock (trading/clock.py) at CLOCK_START for the test: every part of the back
    office (orders, risk, market rules, the paper broker) reads it; move it with ``clock.at = ...``
    or ``clock.advance(seconds)``."""
    from trading import clock as trading_clock

    fake = Clock(CLOCK_START)
    monkeypatch.setattr(trading_clock, "_source", fake)
    return fake


def _using_postgres() -> bool:
    from django.conf import settings

    return settings.DATABASES["default"]["ENGINE"].endswith("postgresql")


@pytest.fixture
def require_postgres() -> None:
    """Skip (or fail under REQUIRE_SERVICES=1) unless the tests run on PostgreSQL."""
    if not _using_postgres():
        if REQUIRE_SERVICES:
            pytest.fail("this test needs PostgreSQL: set DATABASE_URL")
        pytest.skip("needs PostgreSQL (set DATABASE_URL)")


@pytest.fixture
def require_redis() -> str:
    """The Redis URL, or skip (fail under REQUIRE_SERVICES=1) when there is none."""
    from django.conf import settings

    url = settings.REDIS_URL
    if not url:
        if REQUIRE_SERVICES:
            pytest.fail("this test needs Redis: set REDIS_URL")
        pytest.skip("needs Redis (set REDIS_URL)")
    import redis

    try:
        redis.Redis.from_url(url).ping()
    except redis.RedisError as exc:
        if REQUIRE_SERVICES:
            pytest.fail(f"Redis at {url} is not reachable: {exc}")
        pytest.skip(f"Redis not reachable: {exc}")
    return url


def _allow_test_flush() -> None:
    """Django empties a PostgreSQL test database with TRUNCATE between transactional tests; the
    audit tables refuse it (audit/migrations/0003_append_only.py) unless the session allows it."""
    from django.db.backends.postgresql.operations import DatabaseOperations

    original = DatabaseOperations.sql_flush
    if getattr(original, "allows_audit_truncate", False):
        return

    def sql_flush(self, style, tables, *, reset_sequences=False, allow_cascade=False):  # type: ignore[no-untyped-def]
        statements = original(self, style, tables, reset_sequences=reset_sequences, allow_cascade=allow_cascade)
        return ["SET LOCAL audit.allow_truncate = 'on'", *statements] if statements else statements

    sql_flush.allows_audit_truncate = True  # type: ignore[attr-defined]
    DatabaseOperations.sql_flush = sql_flush  # type: ignore[method-assign]


_allow_test_flush()


@pytest.fixture(autouse=True)
def _fresh_process_caches() -> None:
    """Process-level caches (instruments, API keys) must not leak rows across tests."""
    from brokers.adapters import paper
    from brokers.connection import breakers_forget
    from orders.services import intake, locks, reconcile
    from trading import auth
    from trading.selectors import instrument_cache_clear, quote_cache_clear

    instrument_cache_clear()
    locks._ACCOUNT_IDS.clear()
    intake._ACCOUNT_SEEN.clear()
    reconcile._POLL_CURSORS.clear()
    reconcile._SKIPPED_IN_FLIGHT.clear()
    quote_cache_clear()
    paper._EXPIRY_DONE.clear()
    paper._FAULT_CALLS.clear()  # fault draws count attempts per process
    breakers_forget()
    from conditions.services import _bands_forget

    _bands_forget()  # per-symbol thresholds of conditional orders
    auth._cache.clear()
    auth._last_used_written.clear()
    auth._buckets.clear()  # rate limits: failed logins of 127.0.0.1 must not carry over between tests
    from django.conf import settings

    if settings.REDIS_URL:
        try:
            client = auth._redis()
            for key in client.scan_iter("tbo:bucket:authfail:*"):
                client.delete(key)
        except Exception:  # noqa: S110 - no Redis: nothing shared to reset
            pass


@pytest.fixture(autouse=True)
def _tasks_in_process(request: pytest.FixtureRequest):
    """Run Celery tasks in-process unless a test starts real workers (marked `slow`)."""
    from django.test import override_settings

    from trading.celery import app

    if request.node.get_closest_marker("slow"):
        yield
        return
    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    with override_settings(ORDERS_DISPATCH="inline"):
        yield
    app.conf.task_always_eager = previous


@pytest.fixture
def script(db):
    """Account acc1 at the scripted broker (brokers/adapters/scripted.py) with 1,000,000 CNY,
    600000.SH closed at 10.00; returns the account's BrokerScript, to queue the broker's answers."""
    from brokers.adapters.scripted import ScriptedBroker
    from risk.controller import config_cache_clear
    from tests import factories

    config_cache_clear()
    factories.instrument("600000.SH")
    factories.quote("600000.SH", prev_close="10.00")
    account = factories.account("acc1", cash="1000000", broker_kind=ScriptedBroker.kind)
    yield ScriptedBroker.script(account.name)
    config_cache_clear()  # a test may have set risk rules


@pytest.fixture
def api(transactional_db):
    """An HTTP client for the REST API with a trading key for account `acc1`."""
    from django.test import Client

    from tests import factories

    factories.account("acc1")
    key = factories.api_key("key1", accounts=["acc1"])
    return ApiClient(Client(), key)


class ApiClient:
    """Thin JSON helper over Django's test client."""

    def __init__(self, client, key: str) -> None:
        self.client = client
        self.key = key

    def _headers(self, key: str | None) -> dict[str, str]:
        key = self.key if key is None else key
        return {"HTTP_AUTHORIZATION": f"Bearer {key}"} if key else {}

    def get(self, path: str, key: str | None = None, **params):
        return self.client.get(f"/api/v1{path}", params, **self._headers(key))

    def post(self, path: str, body=None, key: str | None = None, raw: str | None = None):
        import json

        data = raw if raw is not None else json.dumps(body if body is not None else {})
        return self.client.post(f"/api/v1{path}", data, content_type="application/json", **self._headers(key))

    def patch(self, path: str, body, key: str | None = None):
        import json

        return self.client.patch(f"/api/v1{path}", json.dumps(body), content_type="application/json", **self._headers(key))


@pytest.fixture
def admin_client(db, admin_user):
    """pytest-django's admin client, with the second factor staff logins require."""
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from tests.staff_helpers import StaffMember, verified_client

    device = TOTPDevice.objects.create(user=admin_user, name="test", confirmed=True)
    return verified_client(StaffMember(admin_user, device))


@pytest.fixture
def admin_user(admin_user):
    """pytest-django's superuser, having acknowledged the risk disclosure (``staff.sites`` sends a
    staff member who has not to the disclosure page first)."""
    from django.utils import timezone

    from staff.models import StaffProfile
    from trading.suitability import RISK_DISCLOSURE_VERSION

    StaffProfile.objects.update_or_create(user=admin_user, defaults={"disclosure_version": RISK_DISCLOSURE_VERSION,
                                                                     "disclosure_acknowledged_at": timezone.now()})
    return admin_user
