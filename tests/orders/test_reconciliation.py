"""Reconciliation with discrepancies (orders/services/discrepancies.py), against the scripted broker.

Each test makes the broker's books differ from ours the way a real broker does (an order placed by
hand at its client, a late trade after our cancel, a deposit we did not record, a record that
vanished), runs a reconciliation and asserts what a person sees: a Discrepancy row with both sides,
one row per difference however often it is seen, fills recorded once through the normal fill
path, positions and cash shown but never overwritten, and no order sent twice.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest

from audit.models import AuditEvent
from audit.services import Actor
from brokers.adapters.scripted import BrokerScript, Reply
from brokers.interface import BrokerOrderStatus, BrokerTrade, OrderRequest
from orders.models import Discrepancy, DiscrepancyKind, DiscrepancyStatus, Fill, Order, OrderStatus
from orders.services import account_reconcile, accounts_reconcile_all, discrepancy_resolve, order_cancel
from tests.conftest import Clock
from tests.orders.test_broker_paths import START, account, age, buy, poll, reload
from tests.orders.test_modify import assert_money_invariants, race
from trading.errors import BrokerUnavailable, Conflict, InvalidOrder
from trading.models import CashLedgerEntry, Position

pytestmark = pytest.mark.django_db(transaction=True)

K = DiscrepancyKind
S = OrderStatus
B = BrokerOrderStatus


def reconcile(actor: Actor | None = None):
    kwargs = {"actor": actor} if actor else {}
    return account_reconcile(account_id=account().pk, **kwargs)


def open_rows() -> dict[tuple[str, str], Discrepancy]:
    return {(d.kind, d.object_ref): d for d in Discrepancy.objects.filter(status=DiscrepancyStatus.OPEN)}


def sides() -> dict[tuple[str, str], tuple[str, str]]:
    return {key: (row.ours, row.theirs) for key, row in open_rows().items()}


def placed_by_hand(script: BrokerScript, quantity: int = 500, price: str = "9.80") -> str:
    """An order entered at the broker's own client, not through us: no client_ref."""
    request = OrderRequest(client_ref="", symbol="600000.SH", side="BUY", order_type="LIMIT", quantity=quantity,
                           price=Decimal(price))
    return script.record(request, B.OPEN, "已报").broker_order_id


def late_trade(script: BrokerScript, broker_order_id: str, quantity: int, price: str) -> BrokerTrade:
    """The broker reports one more trade of an order (after we ended it): its record and cash follow."""
    order = script.orders[broker_order_id]
    at = order.created_at + timedelta(seconds=1)
    trade = BrokerTrade(broker_trade_id=f"LATE{len(script.trades) + 1}", broker_order_id=broker_order_id,
                        symbol=order.symbol, side=order.side, price=Decimal(price), quantity=quantity,
                        amount=Decimal(price) * quantity, filled_at=at, trading_day=order.trading_day)
    script.trades.append(trade)
    script.orders[broker_order_id] = replace(order, filled_quantity=order.filled_quantity + quantity)
    script.cash -= trade.amount
    return trade


# --------------------------------------------------------------------------- nothing differs


def test_an_account_in_line_with_its_broker_has_no_discrepancy(script: BrokerScript) -> None:
    order = buy()
    script.fill(reload(order).broker_order_id, 400, Decimal("9.90"))
    result = reconcile()
    assert (result.orders_changed, result.opened, result.open_total) == (1, 0, 0)
    assert reload(order).filled_quantity == 400  # the fill it found went through the fill path
    assert reconcile().opened == 0  # the position moved in the first run: compared now, and equal
    assert not Discrepancy.objects.exists()
    assert_money_invariants()


# --------------------------------------------------------------------------- each kind, both sides


def test_an_order_the_broker_has_and_we_lack_is_recorded_with_the_broker_s_side(script: BrokerScript) -> None:
    broker_id = placed_by_hand(script)
    result = reconcile()
    assert result.opened == 2
    # The broker holds cash for it that we do not: available differs too (cash does not).
    assert sides()[(K.CASH, "available")] == ("1000000.00", "995100.00")
    row = Discrepancy.objects.get(kind=K.ORDER_ONLY_AT_BROKER)
    assert (row.kind, row.object_ref, row.ours, row.status) == (K.ORDER_ONLY_AT_BROKER, f"broker_order:{broker_id}", "",
                                                                DiscrepancyStatus.OPEN)
    assert row.theirs == f"{broker_id} BUY 500 600000.SH @ 9.8 OPEN, filled 0"
    assert not Order.objects.exists()  # shown, not adopted
    opened = AuditEvent.objects.get(action="discrepancy.opened", object_id=str(row.pk))
    assert (opened.object_id, opened.account, opened.actor) == (str(row.pk), "acc1", "reconciliation")
    assert opened.after["theirs"] == row.theirs


def test_an_order_we_have_and_the_broker_lacks_is_recorded_with_our_side(script: BrokerScript) -> None:
    order = reload(buy())
    del script.orders[order.broker_order_id]  # the broker lost its record
    reconcile()
    assert sides() == {(K.ORDER_ONLY_HERE, f"order:{order.pk}"):
                       (f"#{order.pk} ({order.broker_order_id}) BUY 1000 600000.SH @ 9.9 SUBMITTED, filled 0", "")}
    assert Discrepancy.objects.get().order == order
    assert reload(order).status == S.SUBMITTED  # a working order is never re-sent: it may be live
    assert len(script.placed) == 1


def test_an_order_ended_here_but_open_at_the_broker_is_an_order_status_discrepancy(script: BrokerScript) -> None:
    order = reload(buy())
    script.close(order.broker_order_id, B.CANCELLED)
    poll()
    assert reload(order).status == S.CANCELLED
    script.orders[order.broker_order_id] = replace(script.orders[order.broker_order_id], status=B.OPEN)  # it says open again
    reconcile()
    assert sides() == {(K.ORDER_STATUS, f"order:{order.pk}"): ("CANCELLED", "OPEN"),
                       (K.CASH, "available"): ("1000000.00", "990100.00")}  # the broker still holds its cash
    assert reload(order).status == S.CANCELLED  # a terminal order never moves back


def test_a_late_trade_after_our_cancel_shows_filled_quantity_trade_position_and_cash(script: BrokerScript) -> None:
    order = buy()
    broker_id = reload(order).broker_order_id
    script.fill(broker_id, 300, Decimal("9.90"))
    order_cancel(order_id=order.pk, actor=Actor.system("test"), reason="")
    order = reload(order)
    assert (order.status, order.filled_quantity) == (S.CANCELLED, 300)
    cash_before = account().cash
    trade = late_trade(script, broker_id, 200, "9.90")
    reconcile()
    assert sides() == {
        (K.FILLED_QUANTITY, f"order:{order.pk}"): ("300", "500"),
        (K.TRADE_ONLY_AT_BROKER, f"trade:{trade.broker_trade_id}"): ("", f"{trade.broker_trade_id} BUY 200 600000.SH @ 9.9 (order {broker_id})"),
        (K.POSITION_QUANTITY, "position:600000.SH"): ("300", "500"),
        (K.CASH, "cash"): (f"{cash_before:.2f}", f"{cash_before - Decimal('1980'):.2f}"),
        (K.CASH, "available"): (f"{cash_before:.2f}", f"{cash_before - Decimal('1980'):.2f}"),
    }
    # Shown, never applied: the cancelled order took no fill, position and cash are untouched.
    assert reload(order).filled_quantity == 300 and Fill.objects.count() == 1
    assert Position.objects.get().quantity == 300 and account().cash == cash_before
    assert_money_invariants()


def test_a_position_the_broker_holds_and_we_do_not_is_shown_never_written(script: BrokerScript) -> None:
    script.holdings["600000.SH"] = (500, Decimal("9.00"))
    reconcile()
    assert sides() == {(K.POSITION_QUANTITY, "position:600000.SH"): ("0", "500")}
    assert not Position.objects.filter(quantity__gt=0).exists()


def test_cash_we_did_not_record_is_shown_with_both_sides_never_booked(script: BrokerScript) -> None:
    script.cash += Decimal("1000")  # a transfer in at the broker that nobody booked here
    ledger = CashLedgerEntry.objects.count()
    reconcile()
    assert sides() == {(K.CASH, "cash"): ("1000000.00", "1001000.00"), (K.CASH, "available"): ("1000000.00", "1001000.00")}
    assert account().cash == START and CashLedgerEntry.objects.count() == ledger


def test_available_is_not_compared_while_an_order_holds_a_freeze(script: BrokerScript) -> None:
    """Each side holds its own estimate of an open buy's fees: no false difference while one is open."""
    buy()
    assert account().frozen > Decimal("9900")
    reconcile()
    assert not Discrepancy.objects.exists()


def test_a_trade_we_lack_of_a_working_order_goes_through_the_fill_path_once(script: BrokerScript) -> None:
    order = buy()
    script.repeat_trades = True  # a reconnect replays the day's trades
    script.fill(reload(order).broker_order_id, 600, Decimal("9.90"))
    reconcile()
    reconcile()
    order = reload(order)
    assert (order.status, order.filled_quantity, order.fills.count()) == (S.PARTIALLY_FILLED, 600, 1)
    assert Position.objects.get().quantity == 600
    assert not Discrepancy.objects.exists()
    assert_money_invariants()


# --------------------------------------------------------------------------- seen again, gone, resolved


def test_the_same_difference_seen_again_updates_its_row_and_never_adds_one(script: BrokerScript, clock: Clock) -> None:
    script.cash += Decimal("1000")
    reconcile()
    first = open_rows()[(K.CASH, "cash")]
    clock.advance(300)
    script.cash += Decimal("500")  # still differs, by more now
    result = reconcile()
    assert (result.opened, result.seen_again) == (0, 2)
    assert Discrepancy.objects.count() == 2
    row = open_rows()[(K.CASH, "cash")]
    assert row.pk == first.pk and row.times_seen == 2
    assert (row.first_seen_at, row.last_seen_at) == (first.first_seen_at, first.last_seen_at + timedelta(seconds=300))
    assert row.theirs == "1001500.00"
    assert AuditEvent.objects.filter(action="discrepancy.opened").count() == 2  # not once per sighting


def test_a_difference_that_disappears_is_closed_by_reconciliation_with_a_note(script: BrokerScript) -> None:
    script.cash += Decimal("1000")
    reconcile()
    script.cash -= Decimal("1000")  # the broker corrected its books
    result = reconcile()
    assert (result.closed, result.open_total) == (2, 0)
    row = Discrepancy.objects.get(object_ref="cash")
    assert (row.status, row.resolved_by) == (DiscrepancyStatus.RESOLVED, "reconciliation")
    assert "both sides agree now" in row.resolution and "1000000.00" in row.resolution
    closed = AuditEvent.objects.get(action="discrepancy.auto_closed", object_id=str(row.pk))
    assert closed.before["status"] == "OPEN" and closed.after["status"] == "RESOLVED"
    script.cash += Decimal("1000")  # it comes back: a new row, the closed one stays as it was
    reconcile()
    assert Discrepancy.objects.filter(object_ref="cash").count() == 2


def test_a_difference_no_longer_compared_stays_open_for_a_person(script: BrokerScript) -> None:
    broker_id = placed_by_hand(script)
    reconcile()
    del script.orders[broker_id]  # the next day the broker lists only that day's orders
    reconcile()
    assert open_rows()[(K.ORDER_ONLY_AT_BROKER, f"broker_order:{broker_id}")].times_seen == 1
    assert (K.CASH, "available") not in open_rows()  # compared again and agreeing: closed


def test_a_person_resolves_with_a_reason_audited_and_only_once(script: BrokerScript) -> None:
    script.holdings["600000.SH"] = (500, Decimal("9.00"))
    reconcile()
    row = Discrepancy.objects.get()
    with pytest.raises(InvalidOrder):
        discrepancy_resolve(discrepancy_id=row.pk, actor=Actor.user("rm"), reason="  ")
    resolved = discrepancy_resolve(discrepancy_id=row.pk, actor=Actor.user("rm"), reason="开户前持仓, 已导入")
    assert (resolved.status, resolved.resolved_by, resolved.resolution) == (DiscrepancyStatus.RESOLVED, "rm", "开户前持仓, 已导入")
    event = AuditEvent.objects.get(action="discrepancy.resolved")
    assert (event.actor, event.reason, event.object_id) == ("rm", "开户前持仓, 已导入", str(row.pk))
    with pytest.raises(Conflict):
        discrepancy_resolve(discrepancy_id=row.pk, actor=Actor.user("rm2"), reason="again")
    assert not Position.objects.filter(quantity__gt=0).exists()  # resolving writes nothing else
    reconcile()  # still differs: a new row, for a person again
    assert open_rows()[(K.POSITION_QUANTITY, "position:600000.SH")].pk != row.pk


# --------------------------------------------------------------------------- UNKNOWN orders, never twice


def test_an_unknown_order_is_resolved_as_today_and_never_sent_twice(script: BrokerScript) -> None:
    script.on_place(Reply.TIMEOUT, reaches_broker=False)
    order = buy()
    assert reload(order).status == S.UNKNOWN
    reconcile()  # too recent: its answer may still come
    assert (reload(order).status, len(script.placed)) == (S.UNKNOWN, 1)
    age(order)
    assert reconcile().orders_changed == 1
    assert (reload(order).status, len(script.placed)) == (S.SUBMITTED, 2)
    reconcile()
    reconcile()
    assert len(script.placed) == 2 and [o.client_ref for o in script.orders.values()] == [str(order.pk)]
    assert not Discrepancy.objects.filter(status=DiscrepancyStatus.OPEN).exists()


def test_an_unknown_order_the_broker_has_is_found_not_sent(script: BrokerScript) -> None:
    script.on_place(Reply.TIMEOUT)
    order = buy()
    age(order)
    reconcile()
    assert (reload(order).status, len(script.placed)) == (S.SUBMITTED, 1)


def test_a_second_copy_of_our_order_at_the_broker_is_a_discrepancy(script: BrokerScript) -> None:
    order = reload(buy())
    sent = script.placed[0]
    copy = script.record(sent, B.OPEN, "已报")  # the broker holds our order twice
    reconcile()
    assert set(sides()) == {(K.ORDER_ONLY_AT_BROKER, f"broker_order:{copy.broker_order_id}")}
    assert sides()[(K.ORDER_ONLY_AT_BROKER, f"broker_order:{copy.broker_order_id}")][1].endswith(f"ref {order.pk}")


# --------------------------------------------------------------------------- broker down, all accounts


def test_a_broker_that_cannot_be_read_records_nothing_and_the_periodic_run_goes_on(script: BrokerScript) -> None:
    from brokers.adapters.scripted import ScriptedBroker
    from tests import factories

    other = factories.account("acc2", cash="500000", broker_kind=ScriptedBroker.kind)
    ScriptedBroker.script("acc2").cash += Decimal("1")
    script.connected = False
    with pytest.raises(BrokerUnavailable):
        reconcile()
    assert not Discrepancy.objects.exists()
    results = accounts_reconcile_all()
    assert [r.account for r in results] == ["acc2"]
    assert {d.account_id for d in Discrepancy.objects.all()} == {other.pk}


# --------------------------------------------------------------------------- concurrency (PostgreSQL)


@pytest.mark.usefixtures("require_postgres")
@pytest.mark.parametrize("runs", [2, 4])
def test_concurrent_reconciliations_of_one_account_double_no_row_fill_or_order(script: BrokerScript, runs: int) -> None:
    working = buy(client_order_id="working")
    script.fill(reload(working).broker_order_id, 300, Decimal("9.90"))  # a fill we lack
    script.on_place(Reply.TIMEOUT, reaches_broker=False)
    lost = buy(client_order_id="lost")  # UNKNOWN, and the broker never got it
    age(lost)
    placed_by_hand(script)
    script.holdings["600000.SH"] = (1000, Decimal("9.00"))
    account_id = account().pk
    results = race([lambda: account_reconcile(account_id=account_id) for _ in range(runs)])
    assert not [r for r in results if isinstance(r, Exception)], results
    assert len(script.placed) == 3  # working, lost, and lost once more: never twice
    assert [o.client_ref for o in script.orders.values()].count(str(lost.pk)) == 1
    assert reload(lost).status == S.SUBMITTED
    assert reload(working).filled_quantity == 300 and Fill.objects.count() == 1
    assert Position.objects.get().quantity == 300
    rows = list(Discrepancy.objects.values_list("kind", "object_ref", "status"))
    assert len(rows) == len(set(rows))
    kinds = {kind for kind, _, status in rows if status == DiscrepancyStatus.OPEN}
    assert K.ORDER_ONLY_AT_BROKER in kinds
    assert AuditEvent.objects.filter(action="discrepancy.opened").count() == Discrepancy.objects.count()
    reconcile()  # a quiet run afterwards: nothing placed, exactly the two real differences open
    assert len(script.placed) == 3
    assert {key: value for key, value in sides().items() if key[0] != K.ORDER_ONLY_AT_BROKER} == {
        (K.POSITION_QUANTITY, "position:600000.SH"): ("300", "1300")}
    assert [k for k, _ in sides()].count(K.ORDER_ONLY_AT_BROKER) == 1
    assert_money_invariants()


def test_a_position_difference_gone_on_both_sides_is_closed(script: BrokerScript) -> None:
    script.holdings["600000.SH"] = (500, Decimal("9.00"))
    reconcile()
    del script.holdings["600000.SH"]  # the broker no longer lists it, and we hold none
    assert reconcile().closed == 1
    row = Discrepancy.objects.get()
    assert (row.status, row.resolved_by) == (DiscrepancyStatus.RESOLVED, "reconciliation")


def test_an_adapter_fault_on_one_account_does_not_stop_the_periodic_run(script: BrokerScript, monkeypatch) -> None:
    from brokers.adapters.scripted import ScriptedBroker
    from tests import factories

    factories.account("acc2", cash="500000", broker_kind=ScriptedBroker.kind)
    ScriptedBroker.script("acc2").cash += Decimal("1")
    real = ScriptedBroker.get_balance

    def faulty(self):
        if self.account_name == "acc1":
            raise KeyError("资金余额")  # an answer of the wrong shape, unforeseen by the adapter
        return real(self)

    monkeypatch.setattr(ScriptedBroker, "get_balance", faulty)
    assert [r.account for r in accounts_reconcile_all()] == ["acc2"]
    assert set(Discrepancy.objects.values_list("account__name", flat=True)) == {"acc2"}


@pytest.mark.usefixtures("require_postgres")
def test_a_reconciliation_and_a_poll_at_once_send_a_lost_order_once(script: BrokerScript) -> None:
    from orders.services import account_poll

    script.on_place(Reply.TIMEOUT, reaches_broker=False)
    lost = buy(client_order_id="lost")
    age(lost)
    account_id = account().pk
    results = race([lambda: account_reconcile(account_id=account_id), lambda: account_poll(account_id=account_id),
                    lambda: account_reconcile(account_id=account_id)])
    assert not [r for r in results if isinstance(r, Exception)], results
    assert len(script.placed) == 2 and len(script.orders) == 1
    assert reload(lost).status == S.SUBMITTED
    assert_money_invariants()


# --------------------------------------------------------------------------- events, brokers without our reference


def test_a_discrepancy_opened_closed_and_resolved_is_announced_after_commit(script: BrokerScript) -> None:
    from trading.events import DomainEvent, EventKind, domain_event

    heard: list[DomainEvent] = []

    def listen(sender: object, *, event: DomainEvent, **kwargs: object) -> None:
        if event.kind == EventKind.DISCREPANCY:
            heard.append(event)

    domain_event.connect(listen, dispatch_uid="test-discrepancy-events")
    try:
        script.cash += Decimal("1000")
        script.holdings["600000.SH"] = (500, Decimal("9.00"))
        reconcile()
        script.cash -= Decimal("1000")
        reconcile()
        discrepancy_resolve(discrepancy_id=Discrepancy.objects.get(kind=K.POSITION_QUANTITY).pk,
                            actor=Actor.user("rm"), reason="已核实")
    finally:
        domain_event.disconnect(dispatch_uid="test-discrepancy-events")
    assert [(e.account, e.data["object_ref"], e.data["status"], e.data["resolved_by"]) for e in heard] == [
        ("acc1", "position:600000.SH", "OPEN", ""), ("acc1", "cash", "OPEN", ""), ("acc1", "available", "OPEN", ""),
        ("acc1", "cash", "RESOLVED", "reconciliation"), ("acc1", "available", "RESOLVED", "reconciliation"),
        ("acc1", "position:600000.SH", "RESOLVED", "rm")]
    assert heard[0].data["ours"] == "0" and heard[0].data["theirs"] == "500"


def test_a_broker_without_our_reference_has_our_refused_order_recognised_by_content(
        script: BrokerScript, monkeypatch) -> None:
    """easytrader's GUI clients report no reference of ours: a refused order (no broker id here)
    is recognised by what it says, not reported as an order we lack."""
    from brokers.adapters.scripted import ScriptedBroker
    from brokers.interface import Capabilities

    monkeypatch.setattr(ScriptedBroker, "capabilities", Capabilities(client_ref=False))
    script.on_place(Reply.REFUSE, "资金不足")
    order = reload(buy())
    assert (order.status, order.broker_order_id) == (S.REJECTED, "")
    [(broker_id, record)] = script.orders.items()
    script.orders[broker_id] = replace(record, client_ref="")
    placed_by_hand(script, quantity=300)  # and one that is really not ours
    reconcile()
    assert [ref for kind, ref in sides() if kind == K.ORDER_ONLY_AT_BROKER] == ["broker_order:S000002"]
