"""Orders held for review: approve (re-check), reject, override, expiry, and two operators at once."""

from __future__ import annotations

import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection

from audit.models import AuditEvent
from audit.services import Actor
from orders.models import Order, OrderStatus
from orders.review import order_approve, order_override, order_reject, orders_expire_reviews
from risk.models import RiskCounter, RiskEvent
from risk.services import trading_state_set
from risk.verdicts import RiskAction
from tests.risk.conftest import Env
from trading.errors import Conflict, InvalidOrder
from trading.models import TradingState

ALICE, BOB = Actor.user("alice"), Actor.user("bob")


def held(env: Env, **kwargs) -> Order:
    env.rule("max_order_amount", {"max_amount": "100000"}, RiskAction.REVIEW)
    order = env.submit(price="10.00", quantity=12000, **kwargs)
    assert order.status == OrderStatus.PENDING_APPROVAL
    return order


def counted_amount(env: Env) -> Decimal:
    return RiskCounter.objects.get(account=env.account, trading_day=env.today, key="").amount


def test_approve_accepts_review_verdicts_and_sends_the_order(env: Env, django_capture_on_commit_callbacks, settings) -> None:
    settings.ORDERS_DISPATCH = "inline"
    order = held(env)
    with django_capture_on_commit_callbacks() as callbacks:
        approved = order_approve(order_id=order.pk, actor=ALICE, reason="客户确认")
    assert approved.status == OrderStatus.NEW and "alice" in approved.status_reason
    # the submission is enqueued after commit (the NEW row is the outbox); the status change is
    # announced after commit too (trading/events.py)
    assert sorted(c.__qualname__.split(".")[0] for c in callbacks) == ["dispatch_on_commit", "publish"]
    assert approved.risk_verdicts[0]["action"] == "REVIEW" and approved.risk_verdicts[0]["passed"] is False
    audit = AuditEvent.objects.get(action="order.approved")
    assert audit.actor == "alice" and audit.after["accepted_verdicts"][0]["rule"] == "max_order_amount"
    assert env.refresh().frozen == approved.frozen_amount > 0  # the freeze of entry stays
    assert counted_amount(env) == Decimal("120000.00")  # counted once, not again on approval


def test_approval_recheck_rejects_when_a_reject_verdict_now_fails(env: Env) -> None:
    order = held(env)
    env.rule("max_daily_amount", {"max_amount": "100000"})  # a REJECT rule the order now breaks
    rejected = order_approve(order_id=order.pk, actor=ALICE)
    assert rejected.status == OrderStatus.REJECTED and "max_daily_amount" in rejected.status_reason
    assert env.refresh().frozen == 0 and rejected.frozen_amount == 0
    assert counted_amount(env) == Decimal("0.00")  # its amount is given back
    assert RiskEvent.objects.filter(order=order, rule="max_daily_amount", level="error").exists()


def test_approval_recheck_leaves_the_order_itself_out_of_the_totals(env: Env) -> None:
    order = held(env)
    env.rule("max_daily_amount", {"max_amount": "120000"})
    env.rule("max_daily_orders", {"max_orders": 1})
    assert order_approve(order_id=order.pk, actor=ALICE).status == OrderStatus.NEW


def test_reject_needs_a_reason_releases_the_freeze_and_gives_the_amount_back(env: Env) -> None:
    order = held(env)
    with pytest.raises(InvalidOrder):
        order_reject(order_id=order.pk, actor=ALICE, reason="  ")
    rejected = order_reject(order_id=order.pk, actor=ALICE, reason="超出授权")
    assert rejected.status == OrderStatus.REJECTED and "超出授权" in rejected.status_reason
    assert env.refresh().frozen == 0
    assert counted_amount(env) == Decimal("0.00")
    assert AuditEvent.objects.filter(action="order.status_changed", object_id=str(order.pk), after__event="OPERATOR_REJECTED").exists()


def test_override_sends_the_order_despite_a_reject_verdict_and_is_audited(env: Env) -> None:
    order = held(env)
    env.rule("max_daily_amount", {"max_amount": "100000"})
    with pytest.raises(InvalidOrder):
        order_override(order_id=order.pk, actor=ALICE, reason="")
    overridden = order_override(order_id=order.pk, actor=ALICE, reason="投资经理书面确认")
    assert overridden.status == OrderStatus.NEW
    audit = AuditEvent.objects.get(action="order.risk_overridden")
    assert {v["rule"] for v in audit.before["verdicts"]} == {"max_order_amount", "max_daily_amount"}
    assert audit.reason == "投资经理书面确认" and audit.actor == "alice"
    assert RiskEvent.objects.get(rule="override").values["actor"] == "alice"


def test_a_trading_state_cannot_be_overridden(env: Env) -> None:
    order = held(env)
    trading_state_set(account=env.account, state=TradingState.HALTED, reason="停机", actor=ALICE)
    with pytest.raises(Conflict):
        order_override(order_id=order.pk, actor=ALICE, reason="试图越权")
    order.refresh_from_db()
    assert order.status == OrderStatus.PENDING_APPROVAL
    # Approving refuses it: nothing new passes a halt.
    assert order_approve(order_id=order.pk, actor=ALICE).status == OrderStatus.REJECTED


def test_a_second_decision_on_the_same_order_is_a_conflict(env: Env) -> None:
    order = held(env)
    order_approve(order_id=order.pk, actor=ALICE)
    for act in (lambda: order_approve(order_id=order.pk, actor=BOB),
                lambda: order_reject(order_id=order.pk, actor=BOB, reason="晚了"),
                lambda: order_override(order_id=order.pk, actor=BOB, reason="晚了")):
        with pytest.raises(Conflict) as caught:
            act()
        assert "PENDING_APPROVAL" in caught.value.message and "another operator" in caught.value.message


def test_held_orders_expire_after_the_timeout(env: Env, settings) -> None:
    settings.RISK_REVIEW_TIMEOUT_SECONDS = 600
    old = held(env)
    young = env.submit(price="10.00", quantity=12000, client_order_id="young")
    # Expiry reads the clock (frozen here); created_at is stamped by Django's own clock: align it.
    Order.objects.filter(pk=old.pk).update(created_at=env.clock() - timedelta(seconds=601))
    Order.objects.filter(pk=young.pk).update(created_at=env.clock())
    assert orders_expire_reviews() == 1
    old.refresh_from_db()
    young.refresh_from_db()
    assert (old.status, young.status) == (OrderStatus.EXPIRED, OrderStatus.PENDING_APPROVAL)
    assert old.frozen_amount == 0 and env.refresh().frozen == young.frozen_amount
    assert counted_amount(env) == Decimal("120000.00")  # only the young one still counts
    assert orders_expire_reviews(at=env.clock() + timedelta(seconds=601)) == 1


def test_the_expiry_task_calls_the_service(env: Env, settings) -> None:
    from risk.tasks import expire_reviews

    settings.RISK_REVIEW_TIMEOUT_SECONDS = 0
    order = held(env)
    # Expiry reads the clock (frozen here); created_at is stamped by Django's own clock: align it.
    Order.objects.filter(pk=order.pk).update(created_at=env.clock() - timedelta(seconds=1))
    assert expire_reviews.apply().get() == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("require_postgres")
@pytest.mark.parametrize("second", ["reject", "approve", "override"])
def test_two_operators_at_once_one_wins_the_other_gets_a_conflict(live_env: Env, second: str, settings) -> None:
    settings.ORDERS_DISPATCH = "relay"  # no broker in this test: approved orders wait in the outbox
    order = held(live_env)
    barrier = threading.Barrier(2)
    results: dict[str, object] = {}

    def run(name: str, act) -> None:
        try:
            barrier.wait(5)
            results[name] = act().status
        except Exception as exc:  # noqa: BLE001 - recorded and asserted below
            results[name] = exc
        finally:
            connection.close()

    acts = {
        "reject": lambda: order_reject(order_id=order.pk, actor=BOB, reason="不同意"),
        "approve": lambda: order_approve(order_id=order.pk, actor=BOB),
        "override": lambda: order_override(order_id=order.pk, actor=BOB, reason="越权"),
    }
    threads = [threading.Thread(target=run, args=("alice", lambda: order_approve(order_id=order.pk, actor=ALICE))),
               threading.Thread(target=run, args=("bob", acts[second]))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    outcomes = list(results.values())
    conflicts = [o for o in outcomes if isinstance(o, Conflict)]
    successes = [o for o in outcomes if not isinstance(o, Exception)]
    assert len(conflicts) == 1 and len(successes) == 1, results
    order.refresh_from_db()
    assert order.status == successes[0]
    transitions = AuditEvent.objects.filter(action="order.status_changed", object_id=str(order.pk))
    assert transitions.count() == 2  # RISK_HELD at entry, then exactly one decision
