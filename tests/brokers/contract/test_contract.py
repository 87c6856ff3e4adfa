"""The broker contract: every adapter, against its broker, behaves as brokers.interface promises.

Run against every venue in conftest.TARGET_MODULES (in the spirit of NautilusTrader's execution
test matrix): login, balance, positions, limit and market orders, cancel and a refused cancel,
queries, partial fills, a rejection after acceptance, a timeout with and without effect, duplicate
trade reports, a disconnect and reconnect in the middle of an order.
"""

from __future__ import annotations

from decimal import Decimal
from itertools import count

import pytest

from brokers.interface import (
    BrokerBalance,
    BrokerInterface,
    BrokerOrder,
    BrokerOrderStatus,
    BrokerPosition,
    BrokerTrade,
    OrderAck,
    OrderRequest,
)
from tests.brokers.contract.venue import Venue
from trading.errors import BrokerError, BrokerTimeout, BrokerUnavailable

D = Decimal
_refs = count(9_000_001)


def limit_buy(venue: Venue, quantity: int = 1000, price: str = "9.90") -> OrderRequest:
    return OrderRequest(client_ref=str(next(_refs)), symbol=venue.symbol, side="BUY", order_type="LIMIT",
                        quantity=quantity, price=D(price))


@pytest.fixture
def broker(venue: Venue) -> BrokerInterface:
    venue.fund(D("1000000"))
    adapter = venue.adapter()
    adapter.login()
    return adapter


def listed(broker: BrokerInterface, request: OrderRequest) -> list[BrokerOrder]:
    """The broker's orders that are ``request``: by our reference, or, for an adapter that cannot
    carry one, by what the order says."""
    orders = broker.query_orders()
    if broker.capabilities.client_ref:
        return [o for o in orders if o.client_ref == request.client_ref]
    return [o for o in orders if (o.symbol, o.side, o.quantity, o.price) ==
            (request.symbol, request.side, request.quantity, request.price)]


def placed(broker: BrokerInterface, request: OrderRequest) -> BrokerOrder:
    ack = broker.place_order(request)
    assert isinstance(ack, OrderAck) and ack.broker_order_id
    [order] = listed(broker, request)
    assert order.broker_order_id == ack.broker_order_id
    return order


def test_login_is_idempotent_and_the_balance_is_typed(venue: Venue, broker: BrokerInterface) -> None:
    broker.login()
    balance = broker.get_balance()
    assert isinstance(balance, BrokerBalance)
    assert all(isinstance(v, Decimal) for v in (balance.cash, balance.available, balance.frozen,
                                                balance.market_value, balance.total_assets))
    assert balance.cash == D("1000000") and balance.available == D("1000000") and balance.frozen == 0


def test_positions_are_typed_with_the_sellable_quantity(venue: Venue, broker: BrokerInterface) -> None:
    venue.hold("600036.SH", 2000, D("35.50"))
    [position] = [p for p in broker.get_positions() if p.symbol == "600036.SH"]
    assert isinstance(position, BrokerPosition)
    assert (position.quantity, position.sellable_quantity) == (2000, 2000)
    assert position.avg_cost == D("35.50") and isinstance(position.market_value, Decimal)


def test_a_limit_order_is_listed_as_sent_and_freezes_cash(venue: Venue, broker: BrokerInterface) -> None:
    request = limit_buy(venue)
    order = placed(broker, request)
    assert (order.symbol, order.side, order.order_type, order.quantity, order.price) == (
        venue.symbol, "BUY", "LIMIT", 1000, D("9.90"))
    assert (order.status, order.filled_quantity, order.avg_fill_price) == (BrokerOrderStatus.OPEN, 0, None)
    assert order.created_at.tzinfo is not None
    assert broker.get_balance().available < D("1000000")


def test_a_market_order_is_sent_as_market_or_refused(venue: Venue, broker: BrokerInterface) -> None:
    request = OrderRequest(client_ref=str(next(_refs)), symbol=venue.symbol, side="BUY", order_type="MARKET",
                           quantity=500, protection_price=D("10.50"))
    if not broker.capabilities.market_orders:
        with pytest.raises(BrokerError):
            broker.place_order(request)
        assert listed(broker, request) == []  # never sent as something else
        return
    ack = broker.place_order(request)
    [order] = listed(broker, request)
    assert order.broker_order_id == ack.broker_order_id and order.order_type == "MARKET" and order.quantity == 500


def test_a_sell_of_held_shares_is_listed(venue: Venue, broker: BrokerInterface) -> None:
    venue.hold(venue.symbol, 1000, D("9.50"))
    request = OrderRequest(client_ref=str(next(_refs)), symbol=venue.symbol, side="SELL", order_type="LIMIT",
                           quantity=1000, price=D("10.80"))
    order = placed(broker, request)
    assert (order.side, order.status) == ("SELL", BrokerOrderStatus.OPEN)


def test_cancel_ends_the_order_cancelled(venue: Venue, broker: BrokerInterface) -> None:
    order = placed(broker, limit_buy(venue))
    broker.cancel_order(order.broker_order_id)
    [after] = broker.query_order(order.broker_order_id).orders
    assert after.status == BrokerOrderStatus.CANCELLED
    assert broker.get_balance().available == D("1000000")


def test_a_refused_cancel_raises_the_brokers_words_and_the_order_rests(venue: Venue, broker: BrokerInterface) -> None:
    order = placed(broker, limit_buy(venue))
    venue.refuse_next_cancel("集合竞价时段不可撤单")
    with pytest.raises(BrokerError) as info:
        broker.cancel_order(order.broker_order_id)
    assert not isinstance(info.value, BrokerTimeout | BrokerUnavailable)
    assert "集合竞价时段不可撤单" in info.value.message
    [after] = broker.query_order(order.broker_order_id).orders
    assert after.status == BrokerOrderStatus.OPEN


def test_query_order_reads_one_order_and_knows_none_it_lacks(venue: Venue, broker: BrokerInterface) -> None:
    order = placed(broker, limit_buy(venue))
    snapshot = broker.query_order(order.broker_order_id)
    assert [o.broker_order_id for o in snapshot.orders] == [order.broker_order_id] and snapshot.trades == []
    assert broker.query_order("no-such-order-0000").orders == []


def test_partial_fills_then_full(venue: Venue, broker: BrokerInterface) -> None:
    order = placed(broker, limit_buy(venue))
    venue.fill(order.broker_order_id, 300, D("9.90"))
    snapshot = broker.query_order(order.broker_order_id)
    [after] = snapshot.orders
    assert (after.status, after.filled_quantity) == (BrokerOrderStatus.PARTIALLY_FILLED, 300)
    [trade] = snapshot.trades
    assert isinstance(trade, BrokerTrade) and trade.broker_trade_id
    assert (trade.broker_order_id, trade.quantity, trade.price, trade.side) == (order.broker_order_id, 300, D("9.90"), "BUY")
    assert trade.amount == D("2970.00") and isinstance(trade.fees, Decimal)
    venue.fill(order.broker_order_id, 700, D("9.80"))
    snapshot = broker.query_order(order.broker_order_id)
    [after] = snapshot.orders
    assert (after.status, after.filled_quantity) == (BrokerOrderStatus.FILLED, 1000)
    assert after.avg_fill_price is not None and abs(after.avg_fill_price - D("9.83")) < D("0.001")
    assert len({t.broker_trade_id for t in snapshot.trades}) == 2
    assert sum(t.quantity for t in broker.query_trades() if t.broker_order_id == order.broker_order_id) == 1000


def test_a_rejection_after_acceptance_is_listed_rejected_with_the_reason(venue: Venue, broker: BrokerInterface) -> None:
    order = placed(broker, limit_buy(venue))
    venue.reject(order.broker_order_id, "证券代码停牌")
    [after] = broker.query_order(order.broker_order_id).orders
    assert after.status == BrokerOrderStatus.REJECTED and "证券代码停牌" in after.message
    assert broker.get_balance().available == D("1000000")


def test_a_timeout_that_took_effect_raises_timeout_and_the_order_is_found(venue: Venue, broker: BrokerInterface) -> None:
    request = limit_buy(venue)
    venue.fail_next_place(took_effect=True)
    with pytest.raises(BrokerTimeout):
        broker.place_order(request)
    [order] = listed(broker, request)  # reconciliation finds it; it must not be sent again
    assert order.status == BrokerOrderStatus.OPEN


def test_a_timeout_without_effect_raises_timeout_and_nothing_is_listed(venue: Venue, broker: BrokerInterface) -> None:
    request = limit_buy(venue)
    venue.fail_next_place(took_effect=False)
    with pytest.raises(BrokerTimeout):
        broker.place_order(request)
    assert listed(broker, request) == []


def test_duplicate_trade_reports_are_listed_once(venue: Venue, broker: BrokerInterface) -> None:
    order = placed(broker, limit_buy(venue))
    venue.fill(order.broker_order_id, 400, D("9.90"))
    venue.repeat_trade_reports()
    venue.fill(order.broker_order_id, 600, D("9.90"))
    trades = [t for t in broker.query_trades() if t.broker_order_id == order.broker_order_id]
    assert sorted(t.quantity for t in trades) == [400, 600]
    assert len({t.broker_trade_id for t in trades}) == 2
    assert len(broker.query_order(order.broker_order_id).trades) == 2


def test_disconnect_and_reconnect_mid_order(venue: Venue, broker: BrokerInterface) -> None:
    order = placed(broker, limit_buy(venue))
    venue.disconnect()
    # While down, every call fails as unreachable (or unanswered): never an empty list that would
    # read as "the broker has no orders".
    with pytest.raises((BrokerUnavailable, BrokerTimeout)):
        broker.query_orders()
    with pytest.raises((BrokerUnavailable, BrokerTimeout)):
        broker.query_order(order.broker_order_id)
    refused = limit_buy(venue, price="9.80")
    with pytest.raises((BrokerUnavailable, BrokerTimeout)) as info:
        broker.place_order(refused)
    venue.fill(order.broker_order_id, 200, D("9.90"))  # the market moves on while we are away
    venue.reconnect()
    snapshot = broker.query_order(order.broker_order_id)  # the same adapter logs in again by itself
    [after] = snapshot.orders
    assert (after.status, after.filled_quantity) == (BrokerOrderStatus.PARTIALLY_FILLED, 200)
    assert sum(t.quantity for t in snapshot.trades) == 200  # the fill made while down is not missed
    again = listed(broker, refused)
    if isinstance(info.value, BrokerUnavailable):
        assert again == []  # unavailable means it never arrived
    assert len(again) <= 1
    assert len([o for o in broker.query_orders() if o.broker_order_id == order.broker_order_id]) == 1
