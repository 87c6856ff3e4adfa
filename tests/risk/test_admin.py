"""The risk desk in admin: rules with validation and history, trading-state switch, review actions."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from orders.models import OrderStatus
from risk.models import RiskControl, RiskRule
from risk.verdicts import RiskAction
from tests.risk.conftest import Env
from tests.staff_helpers import staff_member, verified_client
from trading.models import TradingState


@pytest.fixture
def operator(env: Env) -> Client:
    return verified_client(staff_member("chief", None, superuser=True))


def test_rule_pages_load_and_list_the_catalogue(operator: Client) -> None:
    assert operator.get("/admin/risk/riskrule/").status_code == 200
    page = operator.get("/admin/risk/riskrule/add/")
    assert page.status_code == 200
    assert "max_daily_amount" in page.content.decode() and "max_orders_per_second" in page.content.decode()


def test_adding_a_rule_validates_parameters_and_keeps_history(operator: Client, env: Env) -> None:
    form = {"code": "max_order_amount", "account": "", "enabled": "on", "action": "REJECT", "params": '{"max_amount": 0.5}', "note": ""}
    bad = operator.post("/admin/risk/riskrule/add/", form)
    assert bad.status_code == 200 and "max_amount" in bad.content.decode() and not RiskRule.objects.exists()
    form["params"] = '{"max_amount": "100000"}'
    good = operator.post("/admin/risk/riskrule/add/", form)
    assert good.status_code == 302, good.content.decode()[:2000]
    rule = RiskRule.objects.get()
    assert rule.params == {"max_amount": "100000"}
    history = list(rule.history.all())
    assert len(history) == 1 and history[0].history_user.username == "chief"
    assert operator.get(f"/admin/risk/riskrule/{rule.pk}/history/").status_code == 200
    assert env.submit(price="10.00", quantity=20000).status == OrderStatus.REJECTED  # applies at once


def test_halting_an_account_asks_for_a_reason_then_switches(operator: Client, env: Env) -> None:
    url = "/admin/risk/accounttradingstate/"
    ask = operator.post(url, {"action": "set_halted", "_selected_action": [env.account.pk]})
    assert ask.status_code == 200 and "reason" in ask.content.decode()
    assert env.refresh().trading_state == TradingState.ACTIVE
    done = operator.post(url, {"action": "set_halted", "_selected_action": [env.account.pk], "confirm": "yes",
                               "reason": "一键停机"})
    assert done.status_code == 302
    assert (env.refresh().trading_state, env.account.trading_state_reason) == ("HALTED", "一键停机")


def test_global_switch_in_admin(operator: Client, env: Env) -> None:
    assert operator.get("/admin/risk/riskcontrol/").status_code == 200
    control = RiskControl.objects.get()
    operator.post("/admin/risk/riskcontrol/", {"action": "set_reducing", "_selected_action": [control.pk], "confirm": "yes",
                                               "reason": "市场熔断"})
    assert RiskControl.objects.get().trading_state == TradingState.REDUCING
    assert env.submit().status == OrderStatus.REJECTED


def test_review_page_shows_verdicts_and_approves(operator: Client, env: Env) -> None:
    env.rule("max_order_amount", {"max_amount": "100000"}, RiskAction.REVIEW)
    order = env.submit(price="10.00", quantity=12000)
    listing = operator.get("/admin/risk/revieworder/")
    assert listing.status_code == 200 and f">{order.pk}<" in listing.content.decode()
    detail = operator.get(f"/admin/risk/revieworder/{order.pk}/change/").content.decode()
    assert "单笔金额 120000.00 超过上限 100000.00" in detail
    operator.post("/admin/risk/revieworder/", {"action": "approve", "_selected_action": [order.pk], "confirm": "yes", "reason": ""})
    order.refresh_from_db()
    assert order.status == OrderStatus.NEW


def test_override_needs_its_own_permission(env: Env) -> None:
    env.rule("max_order_amount", {"max_amount": "100000"}, RiskAction.REVIEW)
    order = env.submit(price="10.00", quantity=12000)
    member = staff_member("desk", None)
    member.user.user_permissions.add(*Permission.objects.filter(codename__in=["review_order", "view_revieworder"]))
    client = verified_client(member)
    page = client.get("/admin/risk/revieworder/").content.decode()
    assert 'value="approve"' in page and 'value="override"' not in page
    client.post("/admin/risk/revieworder/", {"action": "override", "_selected_action": [order.pk], "confirm": "yes",
                                             "reason": "试试"})
    order.refresh_from_db()
    assert order.status == OrderStatus.PENDING_APPROVAL


def test_events_and_counters_are_read_only(operator: Client, env: Env) -> None:
    env.rule("max_order_amount", {"max_amount": "1"}, RiskAction.WARN)
    env.submit()
    for model in ("riskevent", "riskcounter"):
        assert operator.get(f"/admin/risk/{model}/").status_code == 200
        assert operator.get(f"/admin/risk/{model}/add/").status_code == 403
