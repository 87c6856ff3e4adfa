"""The scripted broker answers as queued, in the shapes BrokerInterface promises."""

from __future__ import annotations

from decimal import Decimal

import pytest

from brokers.adapters.scripted import BrokerScript, Reply, ScriptedBroker, WorkerCrashed
from brokers.interface import (
    BrokerChanges,
    BrokerOrder,
    BrokerOrderStatus,
    BrokerSnapshot,
    BrokerTrade,
    OrderAck,
    OrderRequest,
)
from brokers.registry import adapter_class
from trading.errors import BrokerError, BrokerTimeout

D = Decimal


@pytest.fixture
def broker() -> ScriptedBroker:
    ScriptedBroker.open_account("s1", D("100000"))
    return ScriptedBroker("s1")


@pytest.fixture
def book(broker: ScriptedBroker) -> BrokerScript:
    return ScriptedBroker.script("s1")


def request(ref: str = "1", quantity: int = 1000) -> OrderRequest:
    return OrderRequest(client_ref=ref, symbol="600000.SH", side="BUY", order_type="LIMIT", quantity=quantity, price=D("9.90"))


def test_registered_by_name() -> None:
    assert adapter_class("scripted") is ScriptedBroker
    assert ScriptedBroker.capabilities.client_ref


def test_an_unscripted_call_is_accepted_and_listed_with_our_reference(broker: ScriptedBroker) -> None:
    ack = broker.place_order(request("7"))
    assert isinstance(ack, OrderAck) and ack.broker_order_id
    [order] = broker.query_orders()
    assert isinstance(order, BrokerOrder)
    assert (order.broker_order_id, order.client_ref, order.status, order.filled_quantity) == (
        ack.broker_order_id, "7", BrokerOrderStatus.OPEN, 0)
    assert order.created_at.tzinfo is not None


def test_refusal_raises_broker_error_and_lists_the_order_rejected(broker: ScriptedBroker, book: BrokerScript) -> None:
    book.on_place(Reply.REFUSE, "可用资金不足")
    with pytest.raises(BrokerError) as info:
        broker.place_order(request("8"))
    assert not isinstance(info.value, BrokerTimeout) and info.value.message == "可用资金不足"
    order = book.order_of("8")
    assert order is not None and (order.status, order.message) == (BrokerOrderStatus.REJECTED, "可用资金不足")


@pytest.mark.parametrize("reached", [True, False])
def test_a_timeout_raises_and_leaves_the_order_there_only_if_it_reached(
        broker: ScriptedBroker, book: BrokerScript, reached: bool) -> None:
    book.on_place(Reply.TIMEOUT, reaches_broker=reached)
    with pytest.raises(BrokerTimeout):
        broker.place_order(request("9"))
    assert (book.order_of("9") is not None) is reached
    broker.place_order(request("10"))  # the queue is used up: the next call is accepted
    assert book.order_of("10") is not None and len(book.placed) == 2


def test_a_crash_is_not_a_broker_answer(broker: ScriptedBroker, book: BrokerScript) -> None:
    book.on_place(Reply.CRASH)
    with pytest.raises(WorkerCrashed):
        broker.place_order(request())
    assert not issubclass(WorkerCrashed, BrokerError)


def test_fills_make_trades_and_move_the_order_to_filled(broker: ScriptedBroker, book: BrokerScript) -> None:
    ack = broker.place_order(request("11"))
    first = book.fill(ack.broker_order_id, 400, D("9.88"), commission=D("5"))
    assert isinstance(first, BrokerTrade) and (first.amount, first.fees) == (D("3952.00"), D("5"))
    assert book.orders[ack.broker_order_id].status == BrokerOrderStatus.PARTIALLY_FILLED
    book.fill(ack.broker_order_id, 600, D("9.90"))
    snapshot = broker.query_order(ack.broker_order_id)
    assert isinstance(snapshot, BrokerSnapshot)
    [order] = snapshot.orders
    assert (order.status, order.filled_quantity, order.avg_fill_price) == (BrokerOrderStatus.FILLED, 1000, D("9.8920"))
    assert [t.quantity for t in snapshot.trades] == [400, 600]
    with pytest.raises(ValueError):
        book.fill(ack.broker_order_id, 1, D("9.90"))  # nothing left to fill
    assert broker.get_balance().cash == D("100000") - D("9892.00") - D("5")
    [position] = broker.get_positions()
    assert (position.symbol, position.quantity) == ("600000.SH", 1000)


def test_cancels_as_queued(broker: ScriptedBroker, book: BrokerScript) -> None:
    ack = broker.place_order(request("12"))
    book.on_cancel(Reply.REFUSE, "集合竞价时段不可撤单")
    with pytest.raises(BrokerError, match="集合竞价"):
        broker.cancel_order(ack.broker_order_id)
    assert book.orders[ack.broker_order_id].status == BrokerOrderStatus.OPEN
    broker.cancel_order(ack.broker_order_id)
    assert book.orders[ack.broker_order_id].status == BrokerOrderStatus.CANCELLED
    with pytest.raises(BrokerError):
        broker.cancel_order(ack.broker_order_id)  # no longer open
    assert book.cancels == [ack.broker_order_id] * 3


def test_changes_are_a_complete_read_and_unknown_orders_an_empty_snapshot(broker: ScriptedBroker) -> None:
    broker.place_order(request("13"))
    changes = broker.query_changes(None)
    assert isinstance(changes, BrokerChanges) and changes.complete and changes.cursor is None
    assert [o.client_ref for o in changes.orders] == ["13"]
    assert broker.query_order("nope") == BrokerSnapshot()


def test_an_account_without_a_script_is_refused() -> None:
    with pytest.raises(BrokerError):
        ScriptedBroker("nobody").login()


def test_incremental_changes_list_only_orders_changed_after_the_cursor(broker: ScriptedBroker, book: BrokerScript) -> None:
    book.incremental = True
    first = broker.place_order(request("14"))
    full = broker.query_changes(None)
    assert full.complete and full.cursor is not None and len(full.orders) == 1
    assert broker.query_changes(full.cursor) == BrokerChanges([], [], cursor=full.cursor, complete=False)
    broker.place_order(request("15"))
    trade = book.fill(first.broker_order_id, 100, D("9.90"))
    later = broker.query_changes(full.cursor)
    assert not later.complete and sorted(o.client_ref for o in later.orders) == ["14", "15"]
    assert later.trades == [trade]
    assert broker.query_changes("999").complete  # a cursor from the future: read everything
