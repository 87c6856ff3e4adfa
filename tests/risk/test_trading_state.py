"""Trading states per account and globally: ACTIVE, REDUCING (only reducing orders), HALTED."""

from __future__ import annotations

import pytest

from audit.models import AuditEvent
from audit.services import Actor
from orders.kill_switch import trading_state_switch
from orders.models import OrderStatus
from risk.models import RiskControl, RiskEvent
from risk.services import trading_state_set
from tests.risk.conftest import ACTOR, Env
from trading.errors import InvalidOrder
from trading.models import TradingState

OPERATOR = Actor.user("operator")


def test_halted_account_refuses_every_new_order_with_a_reason(env: Env) -> None:
    env.position("600000.SH", 1000)
    trading_state_set(account=env.account, state=TradingState.HALTED, reason="策略异常", actor=OPERATOR)
    for side, price in (("BUY", "9.90"), ("SELL", "10.10")):
        order = env.submit(side=side, price=price)
        assert order.status == OrderStatus.REJECTED
        verdict = order.risk_verdicts[0]
        assert verdict["rule"] == "trading_state" and verdict["passed"] is False
        assert "策略异常" in verdict["message"] and "HALTED" in verdict["message"]


def test_reducing_lets_only_sells_through(env: Env) -> None:
    env.position("600000.SH", 1000)
    trading_state_set(account=env.account, state=TradingState.REDUCING, reason="亏损限额", actor=OPERATOR)
    assert env.submit(side="BUY").status == OrderStatus.REJECTED
    sell = env.submit(side="SELL", price="10.10", quantity=500)
    assert sell.status == OrderStatus.NEW and sell.risk_verdicts[0]["passed"] is True


def test_cancels_are_never_blocked(env: Env) -> None:
    from orders.services import order_cancel

    order = env.submit()
    trading_state_set(account=env.account, state=TradingState.HALTED, reason="停机", actor=OPERATOR)
    trading_state_set(state=TradingState.HALTED, reason="全市场停机", actor=OPERATOR)
    assert order_cancel(order_id=order.pk, actor=ACTOR).status == OrderStatus.CANCELLED


def test_global_state_applies_to_every_account_and_the_stricter_state_wins(env: Env) -> None:
    from tests import factories

    factories.account("acc2", cash="1000000")
    env.position("600000.SH", 1000)
    trading_state_set(state=TradingState.REDUCING, reason="市场异常波动", actor=OPERATOR)
    assert env.submit(account="acc2").status == OrderStatus.REJECTED
    assert env.submit(side="SELL", price="10.10").status == OrderStatus.NEW
    trading_state_set(account=env.account, state=TradingState.HALTED, reason="账户暂停", actor=OPERATOR)
    refused = env.submit(side="SELL", price="10.10", quantity=100, client_order_id="s2")
    assert refused.status == OrderStatus.REJECTED and "账户暂停" in refused.risk_verdicts[0]["message"]
    trading_state_set(state=TradingState.ACTIVE, reason="恢复", actor=OPERATOR)
    trading_state_set(account=env.account, state=TradingState.ACTIVE, reason="恢复", actor=OPERATOR)
    assert env.submit().status == OrderStatus.NEW


def test_switching_is_audited_and_raises_an_event(env: Env) -> None:
    previous = trading_state_set(account=env.account, state=TradingState.HALTED, reason="风控经理指令", actor=OPERATOR)
    assert previous == TradingState.ACTIVE
    account = env.refresh()
    assert (account.trading_state, account.trading_state_reason) == ("HALTED", "风控经理指令")
    audit = AuditEvent.objects.get(action="account.trading_state_set")
    assert (audit.actor, audit.before, audit.after, audit.reason) == ("operator", {"state": "ACTIVE"}, {"state": "HALTED"}, "风控经理指令")
    assert RiskEvent.objects.get(rule="trading_state").level == "critical"
    trading_state_set(state=TradingState.HALTED, reason="全局停机", actor=OPERATOR)
    assert RiskControl.objects.get().trading_state == "HALTED"
    assert AuditEvent.objects.filter(action="risk.trading_state_set").count() == 1


@pytest.mark.parametrize(("state", "reason", "field"), [("HALTED", "", "reason"), ("STOPPED", "x", "state")])
def test_switching_needs_a_valid_state_and_a_reason(env: Env, state: str, reason: str, field: str) -> None:
    with pytest.raises(InvalidOrder) as caught:
        trading_state_set(account=env.account, state=state, reason=reason, actor=OPERATOR)
    assert caught.value.problems[0].field == field


def test_halt_can_cancel_every_open_order(env: Env) -> None:
    orders = [env.submit(client_order_id=f"o{i}") for i in range(3)]
    trading_state_switch(account=env.account, state=TradingState.HALTED, reason="一键停机", actor=OPERATOR, cancel_open_orders=True)
    for order in orders:
        order.refresh_from_db()
        assert order.status == OrderStatus.CANCELLED
    assert env.refresh().frozen == 0
