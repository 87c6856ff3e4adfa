"""Accounts, trading state, API keys and the language switch in admin."""

from __future__ import annotations

import pytest
from django.contrib.messages import get_messages

from audit.models import AuditEvent
from tests import factories
from trading.auth import hash_key
from trading.models import Account, ApiKey, TradingState

pytestmark = pytest.mark.django_db(transaction=True)


def texts(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


@pytest.fixture
def account():
    return factories.account("acc1", cash="500000")


def test_account_page_shows_balances_positions_with_sellable_and_the_ledger(role_client, account) -> None:
    from decimal import Decimal

    from trading.models import Position

    instrument = factories.instrument("600000.SH")
    factories.quote("600000.SH", prev_close="10.00", last="10.50")
    Position.objects.create(account=account, instrument=instrument, quantity=3000, frozen_quantity=500,
                            cost_amount=Decimal("30000"))
    response = role_client("Operator").get(f"/admin/trading/account/{account.pk}/change/")
    assert response.status_code == 200
    html = response.content.decode()
    for text in ("资金余额", "可用资金", "总资产", "资金流水", "可卖数量", "初始资金"):
        assert text in html, text
    assert "500000.00" in html
    assert ">2500<" in html  # sellable: 3000 held - 500 frozen by an open sell
    assert "31500.00" in html  # market value at the last price


def test_accounts_money_is_read_only_even_for_administrators(role_client, account) -> None:
    admin = role_client("Administrator")
    assert admin.get("/admin/trading/account/add/").status_code == 403
    admin.post(f"/admin/trading/account/{account.pk}/change/", {"cash": "99999999", "trading_state": "HALTED"})
    account.refresh_from_db()
    assert str(account.cash) == "500000.00" and account.trading_state == TradingState.ACTIVE


@pytest.mark.parametrize(("which", "state"), [("halt", "HALTED"), ("reduce", "REDUCING")])
def test_trading_state_needs_a_confirmed_reason_and_goes_through_the_service(role_client, account, which, state) -> None:
    manager = role_client("Risk manager")
    url = f"/admin/trading/account/{account.pk}/trading-state/{which}/"
    form = manager.get(url)
    assert form.status_code == 200 and 'name="reason"' in form.content.decode()
    assert manager.post(url, {"state": state, "reason": ""}).context["form"].errors
    account.refresh_from_db()
    assert account.trading_state == TradingState.ACTIVE
    manager.post(url, {"state": state, "reason": "盘中异常"})
    account.refresh_from_db()
    assert account.trading_state == state and "盘中异常" in account.trading_state_reason
    assert AuditEvent.objects.filter(actor="risk_manager", reason__contains="盘中异常").exists()
    manager.post(f"/admin/trading/account/{account.pk}/trading-state/resume/", {"state": "ACTIVE", "reason": "恢复"})
    account.refresh_from_db()
    assert account.trading_state == TradingState.ACTIVE


def test_operators_cannot_switch_the_trading_state(role_client, account) -> None:
    operator = role_client("Operator")
    html = operator.get(f"/admin/trading/account/{account.pk}/change/").content.decode()
    assert 'id="state-halt"' not in html
    response = operator.post(f"/admin/trading/account/{account.pk}/trading-state/halt/",
                             {"state": "HALTED", "reason": "x"})
    assert any("权限" in m for m in texts(response))
    account.refresh_from_db()
    assert account.trading_state == TradingState.ACTIVE


def test_bulk_halt_of_several_accounts(role_client, account) -> None:
    other = factories.account("acc2")
    manager = role_client("Risk manager")
    ids = [account.pk, other.pk]
    confirm = manager.post("/admin/trading/account/", {"action": "set_trading_state_selected", "_selected_action": ids})
    assert confirm.status_code == 200
    manager.post("/admin/trading/account/", {"action": "set_trading_state_selected", "_selected_action": ids,
                                             "post": "yes", "state": "HALTED", "reason": "系统故障, 全部暂停"})
    assert set(Account.objects.values_list("trading_state", flat=True)) == {"HALTED"}


# ---------------------------------------------------------------------- API keys


def test_issuing_a_key_shows_it_once_stores_only_its_hash_and_it_works(role_client, account) -> None:
    admin = role_client("Administrator")
    assert admin.get("/admin/trading/apikey/add/").status_code == 200
    response = admin.post("/admin/trading/apikey/add/", {
        "name": "strategy-7", "accounts": [account.pk], "scope": "read_only", "rate_limit_per_second": "20",
        "disclosure_acknowledged_by": "Zhao Liu"})
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    raw = response.context["raw_key"]
    assert raw.startswith("tbo_") and raw in response.content.decode()
    key = ApiKey.objects.get(name="strategy-7")
    assert key.key_hash == hash_key(raw) and raw not in str(ApiKey.objects.filter(pk=key.pk).values().first())
    assert not key.can_trade and key.rate_limit_per_second == 20
    assert list(key.accounts.values_list("name", flat=True)) == ["acc1"]
    # never again: not on the key's page, not in a message stored for the next page
    assert raw not in admin.get(f"/admin/trading/apikey/{key.pk}/change/").content.decode()
    assert raw not in admin.get("/admin/trading/apikey/").content.decode()
    assert not texts(response)
    ok = admin.get("/api/v1/accounts/acc1/balance", HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert ok.status_code == 200
    assert AuditEvent.objects.filter(action="api_key.created", actor="administrator").exists()
    acknowledged = AuditEvent.objects.get(action="disclosure.acknowledged", object_id=str(key.pk))
    assert (acknowledged.actor, acknowledged.after["acknowledged_by"]) == ("administrator", "Zhao Liu")


def test_a_key_issued_without_the_owners_acknowledgement_waits_for_it(role_client, account) -> None:
    admin = role_client("Administrator")
    response = admin.post("/admin/trading/apikey/add/", {
        "name": "strategy-8", "accounts": [account.pk], "scope": "read_only", "rate_limit_per_second": "20"})
    raw = response.context["raw_key"]
    assert "403 disclosure_required" in response.content.decode()
    refused = admin.get("/api/v1/accounts/acc1/balance", HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert refused.status_code == 403 and refused.json()["code"] == "disclosure_required"


def test_revoking_a_key_stops_it_at_once(role_client, account) -> None:
    raw = factories.api_key("k1", accounts=["acc1"])
    key = ApiKey.objects.get(name="k1")
    admin = role_client("Administrator")
    assert admin.get("/api/v1/accounts/acc1/balance", HTTP_AUTHORIZATION=f"Bearer {raw}").status_code == 200
    confirm = admin.post("/admin/trading/apikey/", {"action": "revoke_selected", "_selected_action": [key.pk]})
    assert confirm.status_code == 200 and 'name="reason"' in confirm.content.decode()
    admin.post("/admin/trading/apikey/", {"action": "revoke_selected", "_selected_action": [key.pk], "post": "yes",
                                          "reason": "密钥泄露"})
    key.refresh_from_db()
    assert not key.is_active
    assert admin.get("/api/v1/accounts/acc1/balance", HTTP_AUTHORIZATION=f"Bearer {raw}").status_code == 401
    assert AuditEvent.objects.filter(action="api_key.revoked", reason="密钥泄露").exists()


def test_changing_a_keys_scope_is_audited_and_keys_are_never_deleted(role_client, account) -> None:
    factories.api_key("k1", accounts=["acc1"])
    key = ApiKey.objects.get(name="k1")
    admin = role_client("Administrator")
    admin.post(f"/admin/trading/apikey/{key.pk}/change/", {
        "accounts": [account.pk], "can_trade": "", "market_data": "on", "rate_limit_per_second": "5"})
    key.refresh_from_db()
    assert not key.can_trade and key.market_data and key.rate_limit_per_second == 5
    event = AuditEvent.objects.get(action="api_key.changed")
    assert event.before["can_trade"] is True and event.after["can_trade"] is False
    assert admin.post(f"/admin/trading/apikey/{key.pk}/delete/", {"post": "yes"}).status_code == 403
    assert ApiKey.objects.filter(pk=key.pk).exists()


def test_key_list_shows_scope_rate_limit_and_last_use(role_client, account) -> None:
    factories.api_key("trader", accounts=["acc1"])
    factories.api_key("feeder", accounts=["acc1"], can_trade=False, market_data=True)
    html = role_client("Operator").get("/admin/trading/apikey/").content.decode()
    for text in ("trader", "feeder", "可交易", "只读 + 行情", "每秒请求上限", "最近使用"):
        assert text in html, text
    assert "key_hash" not in html


# ---------------------------------------------------------------------- language


def test_language_switch_is_per_user_and_defaults_to_chinese(role_client) -> None:
    operator = role_client("Operator")
    other = role_client("Compliance")
    assert "待审批" in operator.get("/admin/").content.decode() or "站点管理" in operator.get("/admin/").content.decode()
    response = operator.post("/staff/language/", {"language": "en", "next": "/admin/"})
    assert response.status_code == 302 and response["Location"] == "/admin/"
    english = operator.get("/admin/")
    assert english["Content-Language"] == "en"
    html = english.content.decode()
    assert "Site administration" in html or "Trading day" in html
    assert "Orders pending approval" in html or "Pending approval" in html
    # the choice is the user's, kept in the profile: a fresh session of the same user is English too
    from staff.models import StaffProfile

    assert StaffProfile.objects.get(user__username="operator").language == "en"
    assert other.get("/admin/")["Content-Language"] == "zh-hans"


def test_english_admin_translates_model_labels(role_client, account) -> None:
    operator = role_client("Operator")
    operator.post("/staff/language/", {"language": "en"})
    html = operator.get(f"/admin/trading/account/{account.pk}/change/").content.decode()
    assert "Total assets" in html and "Cash ledger" in html
    assert "Trading state" in html or "trading state" in html
    html = operator.get("/admin/orders/order/").content.decode()
    assert "pending approval" in html.lower()


def test_language_switch_refuses_unknown_languages_and_foreign_redirects(role_client) -> None:
    operator = role_client("Operator")
    assert operator.post("/staff/language/", {"language": "fr"}).status_code == 400
    response = operator.post("/staff/language/", {"language": "en", "next": "https://evil.example/"})
    assert response["Location"] == "/admin/"
