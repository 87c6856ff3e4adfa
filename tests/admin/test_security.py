"""Security properties: secrets encrypted at rest, keys hashed, per-key rate limits, deploy checks."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.db import connection

from tests import factories
from trading.models import Account, ApiKey

ROOT = Path(__file__).resolve().parents[2]
SECRET = "broker-pass-S3cr3t-9f1c"
WEBHOOK = "whsec-7d1e0c55aa"


def _dump(table: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {table}")
        return "\n".join(repr(row) for row in cursor.fetchall())


@pytest.mark.django_db
def test_broker_credentials_and_webhook_secrets_are_not_in_a_raw_dump_of_the_account_table() -> None:
    factories.account("acc1", broker_settings={"user": "u1", "password": SECRET, "webhook_secret": WEBHOOK})
    dump = _dump(Account._meta.db_table)
    assert "acc1" in dump  # the dump is real
    assert SECRET not in dump and WEBHOOK not in dump
    assert "password" not in dump  # not even the names of the settings
    assert Account.objects.get(name="acc1").broker_settings["password"] == SECRET  # yet the app reads them


@pytest.mark.django_db
def test_api_keys_are_stored_only_as_hashes() -> None:
    factories.account("acc1")
    raw = factories.api_key("k1", accounts=["acc1"])
    for table in (ApiKey._meta.db_table, "trading_historicalapikey", "audit_auditevent"):
        assert raw not in _dump(table)
        assert raw.split("_", 2)[2] not in _dump(table)


@pytest.mark.django_db
def test_the_admin_shows_broker_settings_masked(admin_member_client) -> None:
    account = factories.account("acc1", broker_settings={"password": SECRET})
    html = admin_member_client.get(f"/admin/trading/account/{account.pk}/change/").content.decode()
    assert "password=••••••" in html and SECRET not in html


# ---------------------------------------------------------------------- rate limit


@pytest.fixture
def limited(transactional_db):
    from tests.conftest import ApiClient

    factories.account("acc1")
    raw = factories.api_key("slow", accounts=["acc1"], can_trade=False)
    ApiKey.objects.filter(name="slow").update(rate_limit_per_second=3)
    from django.test import Client

    return ApiClient(Client(), raw)


def test_a_key_over_its_rate_limit_gets_429_with_retry_after(limited) -> None:
    statuses = [limited.get("/accounts/acc1/balance").status_code for _ in range(8)]
    assert statuses[:3] == [200, 200, 200], statuses
    assert 429 in statuses[3:], statuses
    refused = limited.get("/accounts/acc1/balance")
    assert refused.status_code == 429
    assert int(refused["Retry-After"]) >= 1
    assert refused.json()["code"] == "rate_limited" and refused.json()["detail"]


def test_rate_limits_are_per_key(limited) -> None:
    other = factories.api_key("fast", accounts=["acc1"], can_trade=False)
    for _ in range(8):
        limited.get("/accounts/acc1/balance")
    assert limited.get("/accounts/acc1/balance").status_code == 429
    assert limited.get("/accounts/acc1/balance", key=other).status_code == 200


def test_zero_means_no_limit(limited) -> None:
    ApiKey.objects.filter(name="slow").update(rate_limit_per_second=0)
    from trading import auth

    auth._cache.clear()
    assert all(limited.get("/accounts/acc1/balance").status_code == 200 for _ in range(20))


def test_in_process_bucket_refills_over_time(monkeypatch) -> None:
    from trading import auth

    clock = [1000.0]
    monkeypatch.setattr(auth.time, "monotonic", lambda: clock[0])
    client = auth.ApiClient(key_id=1, name="k", accounts=frozenset(), can_trade=False, market_data=False,
                            rate_limit_per_second=2, prefix=secrets.token_hex(4))
    monkeypatch.setattr(auth.settings, "REDIS_URL", "")
    auth.rate_limit_check(client)
    auth.rate_limit_check(client)
    with pytest.raises(auth.RateLimited) as refused:
        auth.rate_limit_check(client)
    assert refused.value.retry_after == 1
    clock[0] += 0.5  # one token back at 2/s
    auth.rate_limit_check(client)


def test_shared_limit_through_redis(require_redis, monkeypatch) -> None:
    from trading import auth

    monkeypatch.setattr(auth.settings, "REDIS_URL", require_redis)
    client = auth.ApiClient(key_id=1, name="k", accounts=frozenset(), can_trade=False, market_data=False,
                            rate_limit_per_second=5, prefix=secrets.token_hex(4))
    outcomes = []
    for _ in range(12):
        try:
            auth.rate_limit_check(client)
            outcomes.append("ok")
        except auth.RateLimited:
            outcomes.append("429")
    assert outcomes[:5] == ["ok"] * 5 and outcomes.count("ok") <= 6 and "429" in outcomes  # a burst of one second
    assert auth._redis().exists(f"tbo:bucket:key:{client.prefix}")


def test_unreachable_redis_falls_back_to_the_in_process_limit(monkeypatch) -> None:
    from trading import auth

    monkeypatch.setattr(auth.settings, "REDIS_URL", "redis://127.0.0.1:1/0")
    monkeypatch.setattr(auth, "_redis_failed_until", 0.0)
    client = auth.ApiClient(key_id=1, name="k", accounts=frozenset(), can_trade=False, market_data=False,
                            rate_limit_per_second=1, prefix=secrets.token_hex(4))
    auth.rate_limit_check(client)
    with pytest.raises(auth.RateLimited):
        auth.rate_limit_check(client)


# ---------------------------------------------------------------------- production settings


def _production_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DEMO_MODE", "STAFF_REQUIRE_2FA"))}
    env.update({
        "DJANGO_SETTINGS_MODULE": "trading.settings_production",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(64),
        "FIELD_ENCRYPTION_KEY": Fernet.generate_key().decode(),
        "AUDIT_HMAC_KEY": secrets.token_urlsafe(48),
        "DJANGO_ALLOWED_HOSTS": "backoffice.example.com",
    })
    env.update(extra)
    return env


def _manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)


def test_check_deploy_is_clean_under_production_settings() -> None:
    result = _manage("check", "--deploy", "--fail-level", "DEBUG", env=_production_env())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout, result.stdout + result.stderr


@pytest.mark.parametrize("missing", ["DJANGO_SECRET_KEY", "FIELD_ENCRYPTION_KEY", "AUDIT_HMAC_KEY", "DJANGO_ALLOWED_HOSTS"])
def test_production_settings_refuse_to_start_without_their_secrets(missing: str) -> None:
    env = _production_env()
    env.pop(missing)
    result = _manage("check", env=env)
    assert result.returncode != 0
    assert missing in result.stderr


def test_production_settings_refuse_an_audit_key_that_is_another_key() -> None:
    env = _production_env()
    result = _manage("check", env={**env, "AUDIT_HMAC_KEY": env["FIELD_ENCRYPTION_KEY"]})
    assert result.returncode != 0 and "AUDIT_HMAC_KEY" in result.stderr


def test_production_settings_refuse_the_demo_secret_key() -> None:
    result = _manage("check", env=_production_env(DJANGO_SECRET_KEY="insecure-demo-key-change-me-" + "x" * 40))
    assert result.returncode != 0 and "DJANGO_SECRET_KEY" in result.stderr


def test_deploy_check_flags_demo_mode_and_disabled_two_factor_in_development_settings() -> None:
    env = _production_env(DJANGO_SETTINGS_MODULE="trading.settings", DEMO_MODE="1", STAFF_REQUIRE_2FA="0")
    result = _manage("check", "--deploy", env=env)
    assert "staff.W001" in result.stdout + result.stderr and "staff.W002" in result.stdout + result.stderr
