"""The risk desk in admin: rules (parameter validation in the form, history), restricted symbols,
read-only events and counters, the global trading state.

Held orders are reviewed on the order desk and accounts' trading states set on
the account page; their tests are in tests/admin (test_orders_admin,
test_accounts_admin, and the role matrix in test_permissions).
"""

from __future__ import annotations

import pytest
from django.contrib.messages import get_messages
from django.test import Client

from audit.models import AuditEvent
from orders.models import OrderStatus
from risk.models import RestrictedSymbol, RiskControl, RiskEvent, RiskRule
from risk.verdicts import RiskAction
from tests.risk.conftest import Env
from tests.staff_helpers import staff_member, verified_client
from trading.models import TradingState

RULES = "/admin/risk/riskrule/"


def rule_form(**overrides: str) -> dict[str, str]:
    return {"code": "max_order_amount", "account": "", "enabled": "on", "action": "REJECT",
            "params": '{"max_amount": "100000"}', "note": "", **overrides}


def texts(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


@pytest.fixture
def manager(env: Env) -> Client:
    return verified_client(staff_member("chief", "Risk manager"))


@pytest.fixture
def compliance(env: Env) -> Client:
    return verified_client(staff_member("auditor", "Compliance"))


# --------------------------------------------------------------------------- rules


def test_rule_pages_load_and_list_the_catalogue(manager: Client) -> None:
    assert manager.get(RULES).status_code == 200
    page = manager.get(f"{RULES}add/")
    assert page.status_code == 200
    assert "max_daily_amount" in page.content.decode() and "max_orders_per_second" in page.content.decode()


@pytest.mark.parametrize(("params", "named"), [
    ('{"max_amount": 0.5}', "max_amount"),  # a float for money
    ("{}", "max_amount"),  # missing
    ('{"max_amount": "100000", "max_amont": "1"}', "max_amont"),  # unknown key (a typo)
    ('{"max_amount": "-1"}', "max_amount"),  # out of range
])
def test_bad_parameters_are_shown_in_the_form_and_nothing_is_saved(manager: Client, params: str, named: str) -> None:
    response = manager.post(f"{RULES}add/", rule_form(params=params))
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert errors and named in str(errors), errors
    assert named in response.content.decode() and "errornote" in response.content.decode()
    assert not RiskRule.objects.exists()


def test_adding_a_rule_keeps_history_and_applies_at_once(manager: Client, env: Env) -> None:
    good = manager.post(f"{RULES}add/", rule_form())
    assert good.status_code == 302, good.content.decode()[:2000]
    rule = RiskRule.objects.get()
    assert rule.params == {"max_amount": "100000"}
    history = list(rule.history.all())
    assert len(history) == 1 and history[0].history_user.username == "chief"
    assert AuditEvent.objects.filter(actor="chief").exists()
    assert env.submit(price="10.00", quantity=20000).status == OrderStatus.REJECTED


def test_changing_a_rule_validates_then_adds_a_version_to_its_history(manager: Client, env: Env) -> None:
    rule = env.rule("max_order_amount", {"max_amount": "100000"})
    bad = manager.post(f"{RULES}{rule.pk}/change/", rule_form(params='{"max_amount": 1.5}'))
    assert bad.status_code == 200 and "max_amount" in str(bad.context["adminform"].form.errors)
    rule.refresh_from_db()
    assert rule.params == {"max_amount": "100000"}
    before = rule.history.count()
    done = manager.post(f"{RULES}{rule.pk}/change/", rule_form(params='{"max_amount": "5000"}', action="REVIEW"))
    assert done.status_code == 302
    rule.refresh_from_db()
    assert (rule.params, rule.action) == ({"max_amount": "5000"}, RiskAction.REVIEW)
    assert rule.history.count() == before + 1 and rule.history.latest("history_date").history_user.username == "chief"
    page = manager.get(f"{RULES}{rule.pk}/history/")
    assert page.status_code == 200 and "chief" in page.content.decode()
    oldest = rule.history.earliest("history_date")
    assert manager.get(f"{RULES}{rule.pk}/history/{oldest.history_id}/").status_code == 200
    assert env.submit(price="10.00", quantity=1000).status == OrderStatus.PENDING_APPROVAL


def test_enable_and_disable_actions_and_delete_go_through_the_service(manager: Client, env: Env) -> None:
    rule = env.rule("max_order_amount", {"max_amount": "1"})
    manager.post(RULES, {"action": "disable_rules", "_selected_action": [rule.pk]})
    rule.refresh_from_db()
    assert not rule.enabled
    assert env.submit().status != OrderStatus.REJECTED
    manager.post(RULES, {"action": "enable_rules", "_selected_action": [rule.pk]})
    rule.refresh_from_db()
    assert rule.enabled
    assert env.submit().status == OrderStatus.REJECTED
    manager.post(f"{RULES}{rule.pk}/delete/", {"post": "yes"})
    assert not RiskRule.objects.filter(pk=rule.pk).exists()
    assert env.submit().status != OrderStatus.REJECTED


def test_compliance_reads_rules_and_their_history_but_changes_nothing(compliance: Client, env: Env) -> None:
    rule = env.rule("max_order_amount", {"max_amount": "100000"})
    listing = compliance.get(RULES)
    assert listing.status_code == 200 and 'value="disable_rules"' not in listing.content.decode()
    page = compliance.get(f"{RULES}{rule.pk}/change/")
    assert page.status_code == 200 and 'name="_save"' not in page.content.decode()
    assert compliance.get(f"{RULES}add/").status_code == 403
    assert compliance.get(f"{RULES}{rule.pk}/history/").status_code == 200
    version = rule.history.latest("history_date")
    assert compliance.post(f"{RULES}{rule.pk}/history/{version.history_id}/",
                           rule_form(params='{"max_amount": "1"}')).status_code == 403
    compliance.post(f"{RULES}{rule.pk}/change/", rule_form(params='{"max_amount": "1"}'))
    compliance.post(RULES, {"action": "disable_rules", "_selected_action": [rule.pk]})
    rule.refresh_from_db()
    assert rule.params == {"max_amount": "100000"} and rule.enabled


# --------------------------------------------------------------------------- restricted symbols


def test_restricted_symbols_are_added_with_history_and_apply_at_once(manager: Client, env: Env) -> None:
    instrument = env.instrument("600000.SH")
    response = manager.post("/admin/risk/restrictedsymbol/add/", {
        "instrument": instrument.pk, "account": "", "side": "BUY", "reason": "内幕信息知情人", "valid_from": "",
        "valid_to": ""})
    assert response.status_code == 302, response.content.decode()[:2000]
    entry = RestrictedSymbol.objects.get()
    assert entry.created_by == "chief" and entry.history.count() == 1
    env.rule("restricted_list")
    assert env.submit().status == OrderStatus.REJECTED
    assert env.submit(symbol="000001.SZ").status != OrderStatus.REJECTED
    listing = manager.get("/admin/risk/restrictedsymbol/")
    assert listing.status_code == 200 and "内幕信息知情人" in listing.content.decode()
    assert manager.get(f"/admin/risk/restrictedsymbol/{entry.pk}/history/").status_code == 200
    manager.post(f"/admin/risk/restrictedsymbol/{entry.pk}/delete/", {"post": "yes"})
    assert not RestrictedSymbol.objects.exists()
    assert env.submit().status != OrderStatus.REJECTED


# --------------------------------------------------------------------------- events and counters


def test_events_and_counters_are_read_only(manager: Client, env: Env) -> None:
    env.rule("max_order_amount", {"max_amount": "1"}, RiskAction.WARN)
    env.submit()
    event = RiskEvent.objects.first()
    assert event is not None
    for model in ("riskevent", "riskcounter"):
        assert manager.get(f"/admin/risk/{model}/").status_code == 200
        assert manager.get(f"/admin/risk/{model}/add/").status_code == 403
    page = manager.get(f"/admin/risk/riskevent/{event.pk}/change/")
    assert page.status_code == 200 and 'name="_save"' not in page.content.decode()
    manager.post(f"/admin/risk/riskevent/{event.pk}/delete/", {"post": "yes"})
    assert RiskEvent.objects.filter(pk=event.pk).exists()


def test_an_events_order_links_to_the_order_desk_which_shows_the_verdicts(manager: Client, env: Env) -> None:
    env.rule("max_order_amount", {"max_amount": "100000"}, RiskAction.REVIEW)
    order = env.submit(price="10.00", quantity=12000)
    assert order.status == OrderStatus.PENDING_APPROVAL
    assert RiskEvent.objects.filter(order=order).exists()
    listing = manager.get("/admin/risk/riskevent/").content.decode()
    desk = f"/admin/orders/order/{order.pk}/change/"
    assert f'href="{desk}"' in listing and "revieworder" not in listing
    page = manager.get(desk)
    assert page.status_code == 200
    html = page.content.decode()
    assert "单笔金额 120000.00 超过上限 100000.00" in html and 'id="risk-verdicts"' in html


# --------------------------------------------------------------------------- global trading state


def test_global_switch_asks_for_a_reason_then_switches(manager: Client, env: Env) -> None:
    assert manager.get("/admin/risk/riskcontrol/").status_code == 200
    control = RiskControl.objects.get()
    select = {"action": "set_global_trading_state", "_selected_action": [control.pk]}
    ask = manager.post("/admin/risk/riskcontrol/", select)
    assert ask.status_code == 200 and 'name="reason"' in ask.content.decode() and 'name="state"' in ask.content.decode()
    refused = manager.post("/admin/risk/riskcontrol/", {**select, "post": "yes", "state": "REDUCING", "reason": ""})
    assert refused.status_code == 200 and refused.context["form"].errors
    assert RiskControl.objects.get().trading_state == TradingState.ACTIVE
    done = manager.post("/admin/risk/riskcontrol/", {**select, "post": "yes", "state": "REDUCING", "reason": "市场熔断"})
    assert done.status_code == 302 and any("REDUCING" in m for m in texts(done))
    control.refresh_from_db()
    assert (control.trading_state, control.trading_state_reason, control.updated_by) == ("REDUCING", "市场熔断", "chief")
    assert AuditEvent.objects.filter(action="risk.trading_state_set", actor="chief", reason="市场熔断").exists()
    assert env.submit().status == OrderStatus.REJECTED
    manager.post("/admin/risk/riskcontrol/", {**select, "post": "yes", "state": "ACTIVE", "reason": "恢复"})
    assert RiskControl.objects.get().trading_state == TradingState.ACTIVE
    assert env.submit().status != OrderStatus.REJECTED


def test_global_switch_needs_trading_set_trading_state(env: Env) -> None:
    operator = verified_client(staff_member("desk", "Operator"))
    listing = operator.get("/admin/risk/riskcontrol/")
    assert listing.status_code == 200 and "set_global_trading_state" not in listing.content.decode()
    control = RiskControl.objects.get()
    operator.post("/admin/risk/riskcontrol/", {"action": "set_global_trading_state", "_selected_action": [control.pk],
                                               "post": "yes", "state": "HALTED", "reason": "x"})
    assert RiskControl.objects.get().trading_state == TradingState.ACTIVE


# --------------------------------------------------------------------------- pages that moved


@pytest.mark.parametrize("page", ["revieworder", "accounttradingstate"])
def test_the_duplicate_pages_are_gone(page: str, env: Env) -> None:
    """Held orders: the order desk (orders/admin.py); account states: the account page (trading/admin.py)."""
    chief = verified_client(staff_member("root", None, superuser=True))
    assert chief.get(f"/admin/risk/{page}/").status_code == 404
    index = chief.get("/admin/risk/").content.decode()
    assert f"/admin/risk/{page}/" not in index and "/admin/risk/riskrule/" in index
