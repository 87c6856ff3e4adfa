"""Operating without admin clicks: `risk_rules` and `trading_state`, each change audited."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from audit.models import AuditEvent
from risk.models import RiskControl, RiskRule
from tests import factories
from trading.models import Account, TradingState

pytestmark = pytest.mark.django_db(transaction=True)


def _run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def _order(api, client_order_id: str, *, side: str = "BUY", price: str = "10.00", quantity: int = 1000):
    return api.post("/orders", {"account": "acc1", "symbol": "600000.SH", "side": side, "order_type": "LIMIT",
                                "price": price, "quantity": quantity, "client_order_id": client_order_id})


@pytest.fixture
def market(api):
    factories.quote("600000.SH", prev_close="10.05", bid="10.00", ask="10.01", bid_volume=50000, ask_volume=50000)
    return api


def test_set_and_list_risk_rules_applies_at_once_and_is_audited(market) -> None:
    assert "no risk rules configured" in _run("risk_rules", "list")
    _run("risk_rules", "set", "max_order_amount", "--global", "--params", '{"max_amount": "5000"}', "--note", "desk limit")
    rule = RiskRule.objects.get(code="max_order_amount", account=None)
    assert rule.enabled and rule.action == "REJECT" and rule.params == {"max_amount": "5000"}
    listing = _run("risk_rules", "list")
    assert "max_order_amount" in listing and "global" in listing and "desk limit" in listing and "codes:" in listing

    refused = _order(market, "big")  # 10,000 CNY > 5,000
    assert refused.json()["status"] == "REJECTED", refused.json()
    # An account's row switches the global rule off for that account.
    _run("risk_rules", "set", "max_order_amount", "--account", "acc1", "--disable", "--params", '{"max_amount": "5000"}')
    assert _order(market, "big-2").json()["status"] != "REJECTED"
    assert "acc1" in _run("risk_rules", "list", "--account", "acc1")

    events = AuditEvent.objects.filter(action="risk.rule_saved").order_by("pk")
    assert events.count() == 2
    assert all(e.actor_type == "system" and e.actor.startswith("manage.py risk_rules") for e in events)
    assert events[0].reason == "desk limit"


def test_risk_rule_input_errors_name_the_problem_and_change_nothing(market) -> None:
    with pytest.raises(CommandError, match="max_amount"):
        _run("risk_rules", "set", "max_order_amount", "--global", "--params", '{"max_amount": "-1"}')
    with pytest.raises(CommandError, match="JSON"):
        _run("risk_rules", "set", "max_order_amount", "--global", "--params", "max_amount=5")
    with pytest.raises(CommandError):
        _run("risk_rules", "set", "no_such_rule", "--global")
    with pytest.raises(CommandError, match="ghost"):
        _run("risk_rules", "set", "max_order_amount", "--account", "ghost", "--params", '{"max_amount": "5"}')
    assert not RiskRule.objects.exists()
    assert not AuditEvent.objects.filter(action="risk.rule_saved").exists()


def test_halt_reduce_resume_an_account(market) -> None:
    assert _run("trading_state", "halt", "--account", "acc1", "--reason", "风控演练").strip() == "acc1: ACTIVE -> HALTED"
    assert Account.objects.get(name="acc1").trading_state == TradingState.HALTED
    assert _order(market, "while-halted").json()["status"] == "REJECTED"
    assert "acc1: HALTED" in _run("trading_state", "show")

    _run("trading_state", "reduce", "--account", "acc1", "--reason", "只减仓")
    assert _order(market, "buy-while-reducing").json()["status"] == "REJECTED"
    _run("trading_state", "resume", "--account", "acc1", "--reason", "演练结束")
    assert _order(market, "after-resume").json()["status"] != "REJECTED"

    events = AuditEvent.objects.filter(action="account.trading_state_set").order_by("pk")
    assert [e.after["state"] for e in events] == ["HALTED", "REDUCING", "ACTIVE"]
    assert all(e.actor.startswith("manage.py trading_state") for e in events)


def test_global_halt_with_cancel_of_open_orders(market) -> None:
    resting = _order(market, "rest", price="9.90")
    assert resting.json()["status"] in ("SUBMITTED", "ACCEPTED", "NEW")
    _run("trading_state", "halt", "--global", "--reason", "交易所故障", "--cancel-open-orders")
    assert RiskControl.objects.get().trading_state == TradingState.HALTED
    assert market.get(f"/orders/{resting.json()['id']}").json()["status"] in ("CANCELLED", "CANCEL_REQUESTED")
    assert _order(market, "while-global-halt").json()["status"] == "REJECTED"
    assert "global: HALTED" in _run("trading_state", "show")
    _run("trading_state", "resume", "--global", "--reason", "恢复")
    assert _order(market, "after-global-resume", price="9.80").json()["status"] != "REJECTED"
    assert AuditEvent.objects.filter(action="risk.trading_state_set").count() == 2


def test_a_switch_needs_a_scope_and_a_reason(market) -> None:
    with pytest.raises(CommandError, match="--account NAME or --global"):
        _run("trading_state", "halt", "--reason", "x")
    with pytest.raises(CommandError, match="reason"):
        _run("trading_state", "halt", "--account", "acc1")
    with pytest.raises(CommandError, match="ghost"):
        _run("trading_state", "halt", "--account", "ghost", "--reason", "x")
    assert Account.objects.get(name="acc1").trading_state == TradingState.ACTIVE
