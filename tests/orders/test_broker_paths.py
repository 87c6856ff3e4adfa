"""The broker side of the order path, against a broker whose answers each test scripts.

Every test goes through the public services (intake, the in-process submit and cancel
workers, ``account_poll``, ``orders_expire_day``) and asserts what a user sees: the
order's status and reason, the money held and spent, the position, and the audit trail.
SQLite is enough; tasks run in-process.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db.models import Sum
from django.utils import timezone

from audit.models import ActorType, AuditEvent
from audit.services import Actor
from brokers.adapters.scripted import BrokerScript, Reply
from brokers.interface import BrokerOrderStatus
from orders.models import Fill, Order, OrderStatus
from orders.services import OrderInput, account_poll, order_cancel, order_submit, orders_expire_day
from risk.services import risk_rule_set
from tests import factories
from tests.conftest import Clock
from tests.orders.test_modify import assert_money_invariants
from trading.models import Account, Position

pytestmark = pytest.mark.django_db(transaction=True)

ACTOR = Actor.api_key("broker-path-tests")
START = Decimal("1000000")  # acc1's cash in the ``script`` fixture (tests/conftest.py)
S = OrderStatus


def buy(quantity: int = 1000, price: str = "9.90", client_order_id: str = "b-1") -> Order:
    body = factories.order_body(quantity=quantity, price=price, client_order_id=client_order_id)
    return order_submit(OrderInput(**body), actor=ACTOR).order


def sell(quantity: int, price: str) -> Order:
    body = factories.order_body(side="SELL", quantity=quantity, price=price, client_order_id="s-1")
    return order_submit(OrderInput(**body), actor=ACTOR).order


def hold_shares(quantity: int, *, avg_cost: str) -> None:
    """acc1 holds ``quantity`` settled (sellable) shares of 600000.SH."""
    from brokers.services import opening_positions_load

    opening_positions_load(account_name="acc1", actor=ACTOR, rows=[
        {"symbol": "600000.SH", "quantity": str(quantity), "avg_cost": avg_cost, "acquired": "2020-01-02"}])


def poll() -> int:
    return account_poll(account_id=Account.objects.get(name="acc1").pk)


def reload(order: Order) -> Order:
    return Order.objects.select_related("account", "instrument").get(pk=order.pk)


def account() -> Account:
    return Account.objects.get(name="acc1")


def trail(order: Order) -> list[tuple[str, str, str]]:
    """The order's status changes from its audit events: (before, event, after)."""
    events = AuditEvent.objects.filter(object_type="order", object_id=str(order.pk), action="order.status_changed")
    return [(e.before["status"], e.after["event"], e.after["status"]) for e in events.order_by("id")]


def age(order: Order, seconds: int = 120) -> None:
    """As if nothing had happened to ``order`` for ``seconds`` (past ORDERS_SUBMITTING_STALE_SECONDS)."""
    Order.objects.filter(pk=order.pk).update(updated_at=timezone.now() - timedelta(seconds=seconds))


# --------------------------------------------------------------------------- placing


def test_an_accepted_order_is_submitted_under_the_broker_s_id_and_keeps_its_freeze(script: BrokerScript) -> None:
    order = reload(buy())
    assert order.status == S.SUBMITTED
    at_broker = script.order_of(order.pk)
    assert at_broker is not None and order.broker_order_id == at_broker.broker_order_id
    [sent] = script.placed
    assert (sent.client_ref, sent.symbol, sent.side, sent.order_type, sent.quantity, sent.price) == (
        str(order.pk), "600000.SH", "BUY", "LIMIT", 1000, Decimal("9.90"))
    # 9,900 CNY and the estimated fees are held, nothing is spent yet.
    assert order.frozen_amount > Decimal("9900")
    assert account().frozen == order.frozen_amount and account().cash == START
    assert trail(order) == [("NEW", "SUBMIT_STARTED", "SUBMITTING"), ("SUBMITTING", "BROKER_ACCEPTED", "SUBMITTED")]
    accepted = AuditEvent.objects.filter(object_id=str(order.pk), after__event="BROKER_ACCEPTED").get()
    assert (accepted.actor_type, accepted.actor) == (ActorType.BROKER, "scripted")
    assert accepted.after["broker_order_id"] == order.broker_order_id
    assert_money_invariants()


def test_a_refused_order_is_rejected_with_the_broker_s_reason_and_its_cash_back(script: BrokerScript) -> None:
    script.on_place(Reply.REFUSE, "委托价格超出价格笼子范围")
    order = reload(buy())
    assert order.status == S.REJECTED
    assert order.status_reason == "委托价格超出价格笼子范围"
    assert order.frozen_amount == 0
    assert (account().cash, account().frozen, account().available) == (START, 0, START)
    freezes = account().ledger.filter(order=order).aggregate(s=Sum("amount"))["s"]
    assert freezes == 0  # held, then given back in full
    assert trail(order)[-1] == ("SUBMITTING", "BROKER_REJECTED", "REJECTED")
    assert len(script.placed) == 1
    assert_money_invariants()


def test_a_timed_out_order_is_unknown_until_the_poll_finds_it_at_the_broker(script: BrokerScript) -> None:
    script.on_place(Reply.TIMEOUT, "券商应答超时")
    order = reload(buy())
    assert order.status == S.UNKNOWN and order.broker_order_id == ""
    assert account().frozen == order.frozen_amount > 0  # still held: the order may be live
    assert poll() == 1
    order = reload(order)
    assert order.status == S.SUBMITTED
    at_broker = script.order_of(order.pk)
    assert at_broker is not None and order.broker_order_id == at_broker.broker_order_id
    assert len(script.placed) == 1  # found, never sent twice
    assert [event for _, event, _ in trail(order)][-2:] == ["BROKER_TIMED_OUT", "RECONCILED_OPEN"]
    assert_money_invariants()


def test_a_timed_out_order_filled_meanwhile_is_reconciled_as_filled_with_its_fill(script: BrokerScript) -> None:
    script.on_place(Reply.TIMEOUT)
    order = buy()
    at_broker = script.order_of(order.pk)
    assert at_broker is not None
    script.fill(at_broker.broker_order_id, 1000, Decimal("9.89"), commission=Decimal("5.00"))
    assert poll() == 1
    order = reload(order)
    assert order.status == S.FILLED and order.filled_quantity == 1000
    assert trail(order)[-1] == ("UNKNOWN", "RECONCILED_FILLED", "FILLED")
    assert account().cash == START - Decimal("9890.00") - Decimal("5.00")
    assert account().frozen == 0
    assert Position.objects.get(account=account(), instrument=order.instrument).quantity == 1000
    assert_money_invariants()


def test_an_unknown_order_the_broker_never_received_is_sent_again_once_stale(script: BrokerScript) -> None:
    script.on_place(Reply.TIMEOUT, reaches_broker=False)
    order = buy()
    assert reload(order).status == S.UNKNOWN and script.orders == {}
    assert poll() == 0  # too recent: its answer may still come
    assert reload(order).status == S.UNKNOWN and len(script.placed) == 1
    age(order)
    assert poll() == 1
    order = reload(order)
    assert order.status == S.SUBMITTED
    assert len(script.placed) == 2 and len(script.orders) == 1  # the broker holds it once
    assert [event for _, event, _ in trail(order)][-3:] == ["BROKER_TIMED_OUT", "RECONCILED_MISSING", "BROKER_ACCEPTED"]


@pytest.mark.parametrize(("reached", "placements"), [(False, 2), (True, 1)], ids=["broker-lacks-it", "broker-has-it"])
def test_a_stale_submitting_order_is_sent_again_only_if_the_broker_lacks_it(
        script: BrokerScript, reached: bool, placements: int) -> None:
    """A worker died during the call: the order is left SUBMITTING. Once stale, the poll looks it
    up at the broker; it is placed again only when the broker has no record of it."""
    script.on_place(Reply.CRASH, reaches_broker=reached)
    order = buy()
    assert reload(order).status == S.SUBMITTING
    assert poll() == 0 and reload(order).status == S.SUBMITTING  # its worker may still be on it
    age(order)
    assert poll() == 1
    order = reload(order)
    assert order.status == S.SUBMITTED
    assert len(script.placed) == placements
    assert [o.client_ref for o in script.orders.values()] == [str(order.pk)]
    assert order.broker_order_id == next(iter(script.orders))
    assert_money_invariants()


def test_an_incremental_poll_reads_only_what_changed_and_finds_a_lost_answer_there(script: BrokerScript) -> None:
    script.incremental = True  # the broker can tell what changed since a cursor, as the paper broker does
    first = buy(client_order_id="first")
    assert poll() == 0 and script.full_reads == 1  # the first poll reads everything: nothing new
    script.on_place(Reply.TIMEOUT)
    lost = buy(client_order_id="lost")
    assert reload(lost).status == S.UNKNOWN
    assert poll() == 1 and script.full_reads == 1  # the lost order changed at the broker: in the changes
    assert reload(lost).status == S.SUBMITTED
    script.fill(reload(first).broker_order_id, 1000, Decimal("9.90"))
    assert poll() == 1 and script.full_reads == 1
    assert (reload(first).status, reload(lost).status) == (S.FILLED, S.SUBMITTED)
    assert len(script.placed) == 2
    assert_money_invariants()


def test_a_stale_order_missing_from_the_changes_makes_the_poll_read_everything(script: BrokerScript) -> None:
    script.incremental = True
    buy(client_order_id="first")
    poll()
    script.on_place(Reply.TIMEOUT, reaches_broker=False)
    lost = buy(client_order_id="lost")
    assert poll() == 0 and script.full_reads == 1  # not stale yet: the changes are enough
    age(lost)
    assert poll() == 1 and script.full_reads == 2  # whether the broker has it needs its full list
    lost = reload(lost)
    assert lost.status == S.SUBMITTED and len(script.placed) == 3
    assert [o.client_ref for o in script.orders.values()].count(str(lost.pk)) == 1


# --------------------------------------------------------------------------- fills


def test_partial_fills_then_the_last_one_move_cash_position_and_freeze(script: BrokerScript) -> None:
    order = buy(quantity=1000, price="9.90")
    held = reload(order).frozen_amount
    broker_order_id = reload(order).broker_order_id
    script.fill(broker_order_id, 300, Decimal("9.88"), commission=Decimal("5.00"))
    assert poll() == 1
    order = reload(order)
    position = Position.objects.get(account=account(), instrument=order.instrument)
    assert (order.status, order.filled_quantity, position.quantity) == (S.PARTIALLY_FILLED, 300, 300)
    assert account().cash == START - Decimal("2964.00") - Decimal("5.00")
    assert 0 < order.frozen_amount < held and account().frozen == order.frozen_amount  # 70 % still held
    assert_money_invariants()

    assert poll() == 0  # nothing new at the broker: no second fill
    assert Fill.objects.filter(order=order).count() == 1

    script.fill(broker_order_id, 700, Decimal("9.90"), commission=Decimal("5.00"))
    assert poll() == 1
    order = reload(order)
    position = Position.objects.get(account=account(), instrument=order.instrument)
    assert (order.status, order.filled_quantity, order.filled_amount) == (S.FILLED, 1000, Decimal("9894.00"))
    assert (position.quantity, position.cost_amount) == (1000, Decimal("9904.00"))  # fees are part of the cost
    assert position.sellable_quantity(order.trading_day) == 0  # bought today: T+1
    assert account().cash == START - Decimal("9894.00") - Decimal("10.00")
    assert account().frozen == 0 and order.frozen_amount == 0
    assert sorted(Fill.objects.filter(order=order).values_list("broker_trade_id", flat=True)) == [
        t.broker_trade_id for t in script.trades]
    assert [event for _, event, _ in trail(order)][-2:] == ["PARTIALLY_FILLED", "FILLED"]
    assert AuditEvent.objects.filter(object_id=str(order.pk), action="order.filled").count() == 2
    assert_money_invariants()


def test_a_trade_reported_twice_in_one_answer_is_one_fill(script: BrokerScript) -> None:
    """A reconnect that replays the day's trades may list one trade twice: one fill, not two."""
    from orders.services import order_sync

    order = buy(quantity=1000, price="9.90")
    broker_order_id = reload(order).broker_order_id
    trade = script.fill(broker_order_id, 400, Decimal("9.90"))
    order_sync(order_id=order.pk, broker_order=script.orders[broker_order_id], trades=[trade, trade])
    order = reload(order)
    assert (order.status, order.filled_quantity) == (S.PARTIALLY_FILLED, 400)
    assert Fill.objects.filter(order=order).count() == 1
    assert Position.objects.get(account=account(), instrument=order.instrument).quantity == 400
    assert_money_invariants()


def test_an_order_the_broker_expires_ends_expired_with_its_cash_back(script: BrokerScript) -> None:
    order = buy()
    script.close(reload(order).broker_order_id, BrokerOrderStatus.EXPIRED, "当日有效委托已过期")
    assert poll() == 1
    order = reload(order)
    assert order.status == S.EXPIRED and order.status_reason == "当日有效委托已过期"
    assert (account().cash, account().frozen) == (START, 0)
    assert_money_invariants()


def test_a_sell_filled_credits_the_proceeds_less_fees_and_takes_the_shares(script: BrokerScript) -> None:
    hold_shares(2000, avg_cost="9.50")
    order = reload(sell(1000, "10.10"))
    position = Position.objects.get(account=account(), instrument=order.instrument)
    assert order.status == S.SUBMITTED and order.frozen_quantity == position.frozen_quantity == 1000
    assert order.frozen_amount == 0 and account().frozen == 0  # a sell holds shares, not cash
    script.fill(order.broker_order_id, 1000, Decimal("10.10"), commission=Decimal("5.00"), stamp_duty=Decimal("5.05"))
    assert poll() == 1
    order = reload(order)
    position = Position.objects.get(account=account(), instrument=order.instrument)
    assert (order.status, order.frozen_quantity) == (S.FILLED, 0)
    assert (position.quantity, position.frozen_quantity, position.sellable_quantity(order.trading_day)) == (1000, 0, 1000)
    assert position.realized_pnl == Decimal("10100.00") - Decimal("10.05") - Decimal("9500.00")
    assert account().cash == START + Decimal("10100.00") - Decimal("10.05")
    assert_money_invariants()


def test_a_refused_sell_gives_the_shares_back(script: BrokerScript) -> None:
    hold_shares(2000, avg_cost="9.50")
    script.on_place(Reply.REFUSE, "可卖股份不足")
    order = reload(sell(1000, "10.10"))
    position = Position.objects.get(account=account(), instrument=order.instrument)
    assert (order.status, order.status_reason, order.frozen_quantity) == (S.REJECTED, "可卖股份不足", 0)
    assert (position.quantity, position.frozen_quantity, position.sellable_quantity(order.trading_day)) == (2000, 0, 2000)
    assert account().cash == START


# --------------------------------------------------------------------------- cancels


@pytest.mark.parametrize(
    ("filled", "seen", "working"),
    [(0, True, S.SUBMITTED), (300, True, S.PARTIALLY_FILLED), (300, False, S.PARTIALLY_FILLED)],
    ids=["unfilled", "fill-polled", "fill-not-yet-polled"],
)
def test_a_refused_cancel_returns_the_order_to_work_and_says_why(
        script: BrokerScript, filled: int, seen: bool, working: str) -> None:
    order = buy()
    broker_order_id, held_at_first = reload(order).broker_order_id, reload(order).frozen_amount
    if filled:
        script.fill(broker_order_id, filled, Decimal("9.90"))
    if seen:
        poll()
    script.on_cancel(Reply.REFUSE, "集合竞价时段不可撤单")
    order = order_cancel(order_id=order.pk, actor=ACTOR, reason="operator")
    assert order.status == working and "集合竞价时段不可撤单" in order.status_reason
    assert script.cancels == [broker_order_id]
    # One status change, straight back to its working status: a partly filled order never shows as
    # SUBMITTED on its way back (the audit trail and the live pages saw that before).
    refused_event = "CANCEL_REJECTED_PARTIALLY_FILLED" if filled else "CANCEL_REJECTED"
    changes = trail(order)
    assert [change for change in changes if change[1].startswith("CANCEL_REJECTED")] == [
        ("CANCEL_REQUESTED", refused_event, working)]
    assert changes[-1] == ("CANCEL_REQUESTED", refused_event, working)  # nothing after it on the way back
    event = AuditEvent.objects.get(object_id=str(order.pk), after__event=refused_event)
    assert event.actor_type == ActorType.BROKER and "集合竞价时段不可撤单" in event.reason
    assert AuditEvent.objects.filter(object_id=str(order.pk), action="order.cancel_refused").count() == 1
    order = reload(order)
    assert order.filled_quantity == filled
    assert account().frozen == order.frozen_amount > 0  # still working: what its rest may cost is still held
    assert (order.frozen_amount < held_at_first) is bool(filled)

    # It still works at the broker, so a later cancel goes through and gives the rest back.
    order = order_cancel(order_id=order.pk, actor=ACTOR)
    assert order.status == S.CANCELLED
    assert account().frozen == 0 and account().cash == START - Decimal("9.90") * filled
    assert_money_invariants()


def test_a_cancel_refused_because_the_order_filled_records_the_fill(script: BrokerScript) -> None:
    order = buy()
    script.fill(reload(order).broker_order_id, 1000, Decimal("9.90"))
    script.on_cancel(Reply.REFUSE, "委托已成交, 不能撤单")
    order = order_cancel(order_id=order.pk, actor=ACTOR)
    assert order.status == S.FILLED and order.filled_quantity == 1000
    assert "CANCEL_REJECTED" not in [event for _, event, _ in trail(order)]
    assert Position.objects.get(account=account(), instrument=order.instrument).quantity == 1000
    assert (account().cash, account().frozen) == (START - Decimal("9900.00"), 0)
    assert_money_invariants()


# --------------------------------------------------------------------------- end of day


def test_orders_that_never_reached_the_broker_expire_after_their_day(script: BrokerScript, settings) -> None:
    sent = buy(client_order_id="sent")
    settings.ORDERS_DISPATCH = "relay"  # nobody relays: the next order stays NEW (owed, never sent)
    owed = buy(client_order_id="owed")
    assert reload(owed).status == S.NEW and reload(owed).frozen_amount > 0
    risk_rule_set(code="max_order_amount", params={"max_amount": "5000"}, action="REVIEW")
    held = buy(client_order_id="held")  # waits for an operator
    assert reload(held).status == S.PENDING_APPROVAL and reload(held).frozen_amount > 0

    assert orders_expire_day(at=timezone.now()) == 0  # their day is not over
    assert (reload(owed).status, reload(held).status) == (S.NEW, S.PENDING_APPROVAL)

    assert orders_expire_day(at=timezone.now() + timedelta(days=1)) == 2
    owed, held, sent = reload(owed), reload(held), reload(sent)
    assert owed.status == held.status == S.EXPIRED and owed.frozen_amount == held.frozen_amount == 0
    assert sent.status == S.SUBMITTED  # at the broker: it expires when the broker says so
    assert account().frozen == sent.frozen_amount
    expired = AuditEvent.objects.get(object_id=str(owed.pk), after__event="EXPIRED")
    assert (expired.actor_type, expired.actor, expired.before) == (ActorType.SYSTEM, "expiry", {"status": "NEW"})
    assert [request.client_ref for request in script.placed] == [str(sent.pk)]
    assert_money_invariants()


@pytest.mark.parametrize(("reached", "placements"), [(False, 2), (True, 1)], ids=["broker-lacks-it", "broker-has-it"])
def test_a_redelivered_submission_looks_the_order_up_before_sending_it_again(
        script: BrokerScript, reached: bool, placements: int) -> None:
    """The queue delivers the submit task again after its worker died (acks_late): the new worker
    finds the stale SUBMITTING order and sends it only if the broker has no record of it."""
    from orders import tasks

    script.on_place(Reply.CRASH, reaches_broker=reached)
    order = buy()
    age(order)
    tasks.submit_order(order.pk)
    order = reload(order)
    assert order.status == S.SUBMITTED and len(script.placed) == placements
    assert [o.client_ref for o in script.orders.values()] == [str(order.pk)]


def test_an_order_refused_at_the_broker_whose_answer_was_lost_is_reconciled_as_rejected(script: BrokerScript) -> None:
    script.on_place(Reply.TIMEOUT)
    order = buy()
    at_broker = script.order_of(order.pk)
    assert at_broker is not None
    script.close(at_broker.broker_order_id, BrokerOrderStatus.REJECTED, "可用资金不足")
    assert poll() == 1
    order = reload(order)
    assert (order.status, order.status_reason) == (S.REJECTED, "可用资金不足")
    assert trail(order)[-1] == ("UNKNOWN", "RECONCILED_REJECTED", "REJECTED")
    assert (account().cash, account().frozen) == (START, 0)
    assert_money_invariants()


def test_a_cancel_whose_answer_was_lost_is_settled_by_the_poll(script: BrokerScript) -> None:
    order = buy()
    script.on_cancel(Reply.TIMEOUT)  # the broker cancelled it; the answer never came back
    order = order_cancel(order_id=order.pk, actor=ACTOR)
    assert order.status == S.CANCEL_REQUESTED and account().frozen > 0
    assert poll() == 1
    assert reload(order).status == S.CANCELLED
    assert (account().cash, account().frozen) == (START, 0)
    assert_money_invariants()


def test_a_cancel_that_never_reached_the_broker_is_asked_again_by_the_sweep(script: BrokerScript, settings) -> None:
    from orders.services import outbox_sweep

    order = buy()
    script.on_cancel(Reply.TIMEOUT, reaches_broker=False)
    order = order_cancel(order_id=order.pk, actor=ACTOR)
    assert order.status == S.CANCEL_REQUESTED
    assert poll() == 0 and reload(order).status == S.CANCEL_REQUESTED  # still resting at the broker
    settings.ORDERS_OUTBOX_GRACE_SECONDS = 0
    age(order, 1)
    assert outbox_sweep() == 1
    assert reload(order).status == S.CANCELLED
    assert script.cancels == [order.broker_order_id] * 2
    assert (account().cash, account().frozen) == (START, 0)
    assert_money_invariants()


def test_a_cancel_after_a_partial_fill_keeps_the_shares_and_gives_back_the_rest(script: BrokerScript) -> None:
    order = buy(quantity=1000, price="9.90")
    script.fill(reload(order).broker_order_id, 400, Decimal("9.90"), commission=Decimal("5.00"))
    order = order_cancel(order_id=order.pk, actor=ACTOR)  # the cancel's read-back picks up the fill
    assert (order.status, order.filled_quantity, order.frozen_amount) == (S.CANCELLED, 400, 0)
    assert Position.objects.get(account=account(), instrument=order.instrument).quantity == 400
    assert (account().cash, account().frozen) == (START - Decimal("3960.00") - Decimal("5.00"), 0)
    assert_money_invariants()


@pytest.mark.parametrize("left_by", [Reply.TIMEOUT, Reply.CRASH], ids=["unknown", "submitting"])
def test_an_order_lost_on_its_way_is_never_sent_after_its_trading_day(
        script: BrokerScript, clock: Clock, left_by: Reply) -> None:
    clock.at = timezone.now()  # staleness compares with updated_at, which auto_now stamps from the real time
    script.on_place(left_by, reaches_broker=False)
    order = buy()
    assert reload(order).status in (S.UNKNOWN, S.SUBMITTING)
    clock.advance(24 * 3600)
    next_day = clock.at
    orders_expire_day(at=next_day)
    poll()
    assert len(script.placed) == 1, f"day order of {order.trading_day} sent again on {next_day.date()}"
    expired = reload(order)
    assert expired.status == S.EXPIRED and expired.frozen_amount == 0
    assert "trading day is over" in expired.status_reason


# --------------------------------------------------------------------------- a broker without our reference


@pytest.fixture
def noref(script: BrokerScript) -> BrokerScript:
    """acc1 at a broker that cannot carry our order id (as easytrader's GUI clients)."""
    Account.objects.filter(name="acc1").update(broker_kind="scripted_noref")
    return script


def test_a_lost_answer_at_a_broker_without_our_reference_is_recognised_not_resent(noref: BrokerScript) -> None:
    noref.on_place(Reply.TIMEOUT, reaches_broker=True)
    order = buy()
    assert reload(order).status == S.UNKNOWN and not reload(order).broker_order_id
    age(order)
    poll()
    order = reload(order)
    assert order.status == S.SUBMITTED and order.broker_order_id == noref.order_of(order.pk).broker_order_id
    assert len(noref.placed) == 1  # recognised by what it says, not sent again


def test_two_alike_orders_lost_at_such_a_broker_are_matched_one_each(noref: BrokerScript) -> None:
    noref.on_place(Reply.TIMEOUT, reaches_broker=True).on_place(Reply.TIMEOUT, reaches_broker=True)
    first, second = buy(client_order_id="a-1"), buy(client_order_id="a-2")
    for order in (first, second):
        age(order)
    poll()
    first, second = reload(first), reload(second)
    assert (first.status, second.status) == (S.SUBMITTED, S.SUBMITTED)
    assert {first.broker_order_id, second.broker_order_id} == set(noref.orders) and len(noref.placed) == 2


def test_an_order_that_never_reached_such_a_broker_is_sent_again(noref: BrokerScript) -> None:
    noref.on_place(Reply.TIMEOUT, reaches_broker=False)
    order = buy()
    age(order)
    poll()
    assert reload(order).status == S.SUBMITTED and len(noref.placed) == 2 and len(noref.orders) == 1
