"""The xtquant (miniQMT) adapter beyond the contract suite: xtconstant's code tables, what is sent
to miniQMT, its answers that only mean "sent", the pushes kept and announced, the connection.

The broker side is the fake miniQMT of tests/brokers/fakes/xtquant_trader.py (xtquant's real
xttype objects); the contract suite (tests/brokers/contract) covers the shared behaviour.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from xtquant import xtconstant as xc
from xtquant.xttype import XtOrder, XtTrade

from brokers.adapters import xtquant
from brokers.adapters.xtquant import XtQuantBroker, to_broker_order, to_broker_trade, xt_tables
from brokers.interface import BrokerOrderStatus, OrderRequest
from brokers.registry import adapter_class
from brokers.signals import broker_update
from tests.brokers.fakes.xtquant_trader import FakeMiniQmt
from trading.errors import BrokerError, BrokerTimeout, BrokerUnavailable

D = Decimal
S = BrokerOrderStatus
ACCOUNT = "8800001234"
PATH = "C:\\miniQMT-unit\\userdata_mini"


@pytest.fixture(autouse=True)
def _without_the_order_path() -> Iterator[None]:
    """The adapter alone: the orders layer's poll on broker_update needs a database (its test is
    tests/orders/test_xtquant_pushes.py)."""
    from orders.receivers import poll_on_broker_update

    assert broker_update.disconnect(dispatch_uid="orders.poll_on_broker_update")
    yield
    broker_update.connect(poll_on_broker_update, dispatch_uid="orders.poll_on_broker_update")


@pytest.fixture
def qmt() -> Iterator[FakeMiniQmt]:
    fake = FakeMiniQmt()
    fake.open_account(ACCOUNT)
    fake.fund(ACCOUNT, 1_000_000)
    previous = xtquant.set_trader_factory(fake.trader)
    yield fake
    fake.close()
    xtquant.set_trader_factory(previous)
    xtquant.sessions_close(PATH)


def make_broker(**overrides: Any) -> XtQuantBroker:
    settings = {"path": PATH, "session_id": 7, "account_id": ACCOUNT, "account_type": "STOCK", "call_timeout": 0.5,
                "reconnect_seconds": 0, "cancel_wait": 2, "error_wait": 1}
    settings.update(overrides)
    return XtQuantBroker("xt1", settings)


@pytest.fixture
def broker(qmt: FakeMiniQmt) -> XtQuantBroker:
    adapter = make_broker()
    adapter.login()
    return adapter


def buy(ref: str = "101", symbol: str = "600000.SH", quantity: int = 1000, price: str = "9.90") -> OrderRequest:
    return OrderRequest(client_ref=ref, symbol=symbol, side="BUY", order_type="LIMIT", quantity=quantity, price=D(price))


def market(ref: str, symbol: str, side: str = "BUY") -> OrderRequest:
    return OrderRequest(client_ref=ref, symbol=symbol, side=side, order_type="MARKET", quantity=500,
                        protection_price=D("10.50"))


def xt_order(status: int, *, traded: int = 0, price_type: int = xc.FIX_PRICE, order_type: int = xc.STOCK_BUY,
             status_msg: str = "", order_time: int = 1_795_000_000) -> XtOrder:
    return XtOrder(ACCOUNT, "000001.SZ", 77, "S77", order_time, order_type, 1000, price_type, 12.34, traded,
                   12.3 if traded else 0.0, status, status_msg, "backoffice", "555", xc.DIRECTION_FLAG_LONG,
                   xc.OFFSET_FLAG_OPEN, "A1", "平安银行")


# --------------------------------------------------------------------------- the code tables


EXPECTED_STATUSES = {
    "ORDER_UNREPORTED": S.OPEN,
    "ORDER_WAIT_REPORTING": S.OPEN,
    "ORDER_REPORTED": S.OPEN,
    "ORDER_REPORTED_CANCEL": S.OPEN,
    "ORDER_PARTSUCC_CANCEL": S.PARTIALLY_FILLED,
    "ORDER_PART_CANCEL": S.CANCELLED,
    "ORDER_CANCELED": S.CANCELLED,
    "ORDER_PART_SUCC": S.PARTIALLY_FILLED,
    "ORDER_SUCCEEDED": S.FILLED,
    "ORDER_JUNK": S.REJECTED,
    "ORDER_UNKNOWN": S.OPEN,
}


def test_every_order_status_of_xtconstant_has_its_meaning() -> None:
    codes = {name: getattr(xc, name) for name in dir(xc)
             if name.startswith("ORDER_") and isinstance(getattr(xc, name), int) and name != "ORDER_TYPE_SET"}
    assert set(codes) == set(EXPECTED_STATUSES)  # a new status in a new wheel must be mapped here
    assert {name: xt_tables().statuses[code] for name, code in codes.items()} == EXPECTED_STATUSES


@pytest.mark.parametrize(("status", "traded", "expected"), [
    (xc.ORDER_REPORTED, 0, S.OPEN),
    (xc.ORDER_REPORTED, 300, S.PARTIALLY_FILLED),  # a fill pushed before the status caught up
    (xc.ORDER_REPORTED_CANCEL, 300, S.PARTIALLY_FILLED),
    (xc.ORDER_PART_CANCEL, 300, S.CANCELLED),
    (xc.ORDER_SUCCEEDED, 1000, S.FILLED),
    (xc.ORDER_UNKNOWN, 0, S.OPEN),
])
def test_an_order_reads_as_its_status_and_fills(status: int, traded: int, expected: BrokerOrderStatus) -> None:
    order = to_broker_order(xt_order(status, traded=traded))
    assert order is not None
    assert (order.status, order.filled_quantity, order.client_ref, order.symbol) == (expected, traded, "555", "000001.SZ")
    assert order.avg_fill_price == (D("12.3000") if traded else None)


def test_a_junk_order_reads_rejected_with_the_counters_reason_or_the_pushed_error() -> None:
    own = to_broker_order(xt_order(xc.ORDER_JUNK, status_msg="证券代码停牌"))
    pushed = to_broker_order(xt_order(xc.ORDER_JUNK), "[COUNTER] 可用资金不足")
    assert own is not None and pushed is not None
    assert (own.status, own.message) == (S.REJECTED, "证券代码停牌")
    assert pushed.message == "[COUNTER] 可用资金不足"


@pytest.mark.parametrize(("price_type", "order_type"), [
    (xc.FIX_PRICE, "LIMIT"),
    (xc.LATEST_PRICE, "LIMIT"),
    (xtquant.BROKER_PRICE_LIMIT, "LIMIT"),  # some builds read back the counter's price type
    (xc.MARKET_SH_CONVERT_5_CANCEL, "MARKET"),
    (xc.MARKET_SH_CONVERT_5_LIMIT, "MARKET"),
    (xc.MARKET_SZ_CONVERT_5_CANCEL, "MARKET"),
    (xc.MARKET_SZ_FULL_OR_CANCEL, "MARKET"),
    (xc.MARKET_PEER_PRICE_FIRST, "MARKET"),
    (xtquant.BROKER_PRICE_ANY, "MARKET"),
])
def test_the_price_type_read_back_says_limit_or_market(price_type: int, order_type: str) -> None:
    order = to_broker_order(xt_order(xc.ORDER_REPORTED, price_type=price_type))
    assert order is not None and order.order_type == order_type
    assert order.price == (D("12.3400") if order_type == "LIMIT" else None)


def test_sides_come_from_the_order_type_and_others_are_skipped() -> None:
    sell = to_broker_order(xt_order(xc.ORDER_REPORTED, order_type=xc.STOCK_SELL))
    assert sell is not None and sell.side == "SELL"
    odd = xt_order(xc.ORDER_REPORTED, order_type=xc.ETF_PURCHASE)
    odd.offset_flag = 0
    assert to_broker_order(odd) is None


def test_order_time_in_seconds_or_milliseconds_is_the_same_moment() -> None:
    seconds = to_broker_order(xt_order(xc.ORDER_REPORTED, order_time=1_795_000_000))
    millis = to_broker_order(xt_order(xc.ORDER_REPORTED, order_time=1_795_000_000_123))
    assert seconds is not None and millis is not None
    assert seconds.created_at.tzinfo is not None and abs((millis.created_at - seconds.created_at).total_seconds()) < 1


def test_a_trade_keeps_its_amount_and_commission_as_decimals() -> None:
    trade = to_broker_trade(XtTrade(ACCOUNT, "600000.SH", xc.STOCK_SELL, "T1", 1_795_000_000, 10.1, 300, 3030.0, 77,
                                    "S77", "backoffice", "555", xc.DIRECTION_FLAG_LONG, xc.OFFSET_FLAG_CLOSE, 5.0,
                                    "A1", "浦发银行"))
    assert trade is not None
    assert (trade.side, trade.price, trade.quantity, trade.amount, trade.fees) == (
        "SELL", D("10.1000"), 300, D("3030.00"), D("5.00"))


@pytest.mark.parametrize(("exchange", "style", "price_type"), [
    ("SH", "best5_cancel", xc.MARKET_SH_CONVERT_5_CANCEL),
    ("SH", "best5_limit", xc.MARKET_SH_CONVERT_5_LIMIT),
    ("SH", "best_opposite", xc.MARKET_PEER_PRICE_FIRST),
    ("SH", "best_own", xc.MARKET_MINE_PRICE_FIRST),
    ("BJ", "best5_cancel", xc.MARKET_SH_CONVERT_5_CANCEL),
    ("SZ", "best5_cancel", xc.MARKET_SZ_CONVERT_5_CANCEL),
    ("SZ", "immediate_cancel", xc.MARKET_SZ_INSTBUSI_RESTCANCEL),
    ("SZ", "fill_or_kill", xc.MARKET_SZ_FULL_OR_CANCEL),
    ("SZ", "best_opposite", xc.MARKET_PEER_PRICE_FIRST),
    ("SH", "fill_or_kill", None),  # SSE has no fill-or-kill market order
    ("SH", "immediate_cancel", None),
    ("SZ", "best5_limit", None),
])
def test_market_price_types_per_exchange(exchange: str, style: str, price_type: int | None) -> None:
    assert xt_tables().market_price_type(exchange, style) == price_type


def test_registered_without_history() -> None:
    assert adapter_class("xtquant") is XtQuantBroker
    assert not XtQuantBroker.capabilities.history and XtQuantBroker.capabilities.client_ref
    with pytest.raises(NotImplementedError):
        make_broker().history_orders(D(0), D(0))  # type: ignore[arg-type]


# --------------------------------------------------------------------------- what is sent


def test_a_limit_order_is_sent_with_our_reference_in_the_remark(qmt: FakeMiniQmt, broker: XtQuantBroker) -> None:
    ack = broker.place_order(buy("4711"))
    [sent] = qmt.sent
    assert sent == {"account_id": ACCOUNT, "stock_code": "600000.SH", "order_type": xc.STOCK_BUY, "order_volume": 1000,
                    "price_type": xc.FIX_PRICE, "price": 9.9, "strategy_name": "backoffice", "order_remark": "4711"}
    [order] = [o for o in broker.query_orders() if o.client_ref == "4711"]
    assert order.broker_order_id == ack.broker_order_id


@pytest.mark.parametrize(("symbol", "style", "price_type"), [
    ("600000.SH", "best5_cancel", xc.MARKET_SH_CONVERT_5_CANCEL),
    ("000001.SZ", "best5_cancel", xc.MARKET_SZ_CONVERT_5_CANCEL),
    ("000001.SZ", "fill_or_kill", xc.MARKET_SZ_FULL_OR_CANCEL),
    ("688981.SH", "best_opposite", xc.MARKET_PEER_PRICE_FIRST),
])
def test_a_market_order_is_sent_with_its_exchanges_price_type(qmt: FakeMiniQmt, symbol: str, style: str,
                                                               price_type: int) -> None:
    adapter = make_broker(market_style=style)
    adapter.place_order(market("12", symbol))
    [sent] = qmt.sent
    assert (sent["stock_code"], sent["price_type"], sent["price"]) == (symbol, price_type, 10.5)
    [order] = [o for o in adapter.query_orders() if o.client_ref == "12"]
    assert order.order_type == "MARKET"


def test_a_market_style_the_exchange_lacks_is_refused_before_sending(qmt: FakeMiniQmt) -> None:
    adapter = make_broker(market_style="fill_or_kill")
    with pytest.raises(BrokerError) as info:
        adapter.place_order(market("13", "600000.SH"))
    assert "fill_or_kill" in info.value.message and qmt.sent == []


def test_a_reference_too_long_for_the_remark_is_refused_before_sending(qmt: FakeMiniQmt, broker: XtQuantBroker) -> None:
    with pytest.raises(BrokerError):
        broker.place_order(buy("9" * 25))
    assert qmt.sent == []
    broker.place_order(buy("9" * 24))
    assert qmt.sent[0]["order_remark"] == "9" * 24


def test_minus_one_is_refused_with_miniqmts_pushed_reason(qmt: FakeMiniQmt, broker: XtQuantBroker) -> None:
    with pytest.raises(BrokerError) as info:
        broker.place_order(buy("21", symbol="600000.XX"))
    assert not isinstance(info.value, BrokerTimeout | BrokerUnavailable)
    assert info.value.message == "证券代码错误"


def test_a_counter_rejection_comes_after_the_id_and_reads_rejected(qmt: FakeMiniQmt, broker: XtQuantBroker) -> None:
    ack = broker.place_order(buy("22", quantity=200_000))  # 1,980,000 CNY with 1,000,000 in the account
    qmt.settle()
    [order] = broker.query_order(ack.broker_order_id).orders
    assert (order.status, order.message) == (S.REJECTED, "可用资金不足")
    assert broker.get_balance().available == D("1000000.00")


def test_a_cancel_of_an_order_miniqmt_does_not_know_is_refused(broker: XtQuantBroker) -> None:
    with pytest.raises(BrokerError):
        broker.cancel_order("424242")
    with pytest.raises(BrokerError):
        broker.cancel_order("not-a-number")


def test_a_cancel_of_a_filled_order_raises_the_pushed_refusal(qmt: FakeMiniQmt, broker: XtQuantBroker) -> None:
    ack = broker.place_order(buy("23"))
    qmt.settle()
    qmt.fill(int(ack.broker_order_id), 1000, 9.9)
    qmt.settle()
    with pytest.raises(BrokerError) as info:
        broker.cancel_order(ack.broker_order_id)
    assert info.value.message == "委托已结束，不能撤单"


def test_a_cancel_after_a_partial_fill_ends_cancelled_keeping_the_fill(qmt: FakeMiniQmt, broker: XtQuantBroker) -> None:
    ack = broker.place_order(buy("24"))
    qmt.settle()
    qmt.fill(int(ack.broker_order_id), 300, 9.9)
    broker.cancel_order(ack.broker_order_id)
    [order] = broker.query_order(ack.broker_order_id).orders
    assert (order.status, order.filled_quantity) == (S.CANCELLED, 300)


# --------------------------------------------------------------------------- pushes and polling


@pytest.fixture
def announced() -> Iterator[list[str]]:
    names: list[str] = []

    def receiver(sender: object, *, account_name: str, **kwargs: object) -> None:
        names.append(account_name)

    broker_update.connect(receiver, dispatch_uid="test-xtquant-announced")
    yield names
    broker_update.disconnect(dispatch_uid="test-xtquant-announced")


def test_pushes_are_announced_by_account_name_and_reads_are_not(qmt: FakeMiniQmt, broker: XtQuantBroker,
                                                                announced: list[str]) -> None:
    ack = broker.place_order(buy("31"))
    qmt.settle()
    assert announced and set(announced) == {"xt1"}  # 未报, then 已报
    announced.clear()
    broker.query_orders()
    broker.query_trades()
    assert announced == []
    qmt.fill(int(ack.broker_order_id), 100, 9.9)
    qmt.settle()
    assert announced == ["xt1", "xt1"]  # the trade, then the order's new state


def test_query_changes_answers_what_the_pushes_changed_after_a_full_read(qmt: FakeMiniQmt, broker: XtQuantBroker) -> None:
    first = broker.place_order(buy("41"))
    second = broker.place_order(buy("42"))
    qmt.settle()
    full = broker.query_changes(None)
    assert full.complete and {o.client_ref for o in full.orders} == {"41", "42"}
    quiet = broker.query_changes(full.cursor)
    assert (quiet.complete, quiet.orders, quiet.trades) == (False, [], [])
    qmt.fill(int(second.broker_order_id), 400, 9.9)
    qmt.settle()
    changed = broker.query_changes(quiet.cursor)
    assert not changed.complete
    assert [(o.broker_order_id, o.status, o.filled_quantity) for o in changed.orders] == [
        (second.broker_order_id, S.PARTIALLY_FILLED, 400)]
    assert [t.quantity for t in changed.trades] == [400]
    assert first.broker_order_id not in {o.broker_order_id for o in changed.orders}
    assert broker.query_changes(changed.cursor).orders == []


def test_a_full_read_comes_back_every_full_read_seconds(qmt: FakeMiniQmt) -> None:
    adapter = make_broker(full_read_seconds=0.2)
    adapter.place_order(buy("43"))
    qmt.settle()
    cursor = adapter.query_changes(None).cursor
    assert not adapter.query_changes(cursor).complete
    time.sleep(0.25)
    again = adapter.query_changes(cursor)
    assert again.complete and [o.client_ref for o in again.orders] == ["43"]


def test_a_foreign_or_stale_cursor_gets_a_full_read(broker: XtQuantBroker) -> None:
    broker.place_order(buy("44"))
    assert broker.query_changes("someone-else:3").complete
    assert broker.query_changes("garbage").complete


def test_a_read_older_than_a_push_does_not_take_the_order_back(qmt: FakeMiniQmt, broker: XtQuantBroker,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    ack = broker.place_order(buy("45"))
    qmt.settle()
    [trader] = qmt.traders
    stale = trader.query_stock_orders(broker._account())  # miniQMT's list, read just before the fill
    qmt.fill(int(ack.broker_order_id), 1000, 9.9)
    qmt.settle()  # the push of the fill arrived first
    monkeypatch.setattr(trader, "query_stock_orders", lambda account, cancelable_only=False: stale)
    [order] = broker.query_orders()
    assert (order.status, order.filled_quantity) == (S.FILLED, 1000)


def test_trades_are_kept_per_order_and_traded_id(qmt: FakeMiniQmt, broker: XtQuantBroker) -> None:
    """miniQMT's traded_id is the exchange's 成交编号, unique per market only: the same number on
    two orders is two trades; the same trade reported again is one."""
    one = int(broker.place_order(buy("51")).broker_order_id)
    two = int(broker.place_order(buy("52", symbol="000001.SZ")).broker_order_id)
    qmt.settle()
    qmt.fill(one, 100, 9.9)
    qmt.fill(two, 100, 9.9)
    qmt.settle()
    account = qmt.accounts[ACCOUNT]
    account.trades[1].traded_id = account.trades[0].traded_id
    account.trades.append(account.trades[0])  # and one reported twice
    trades = broker.query_trades()
    assert sorted((t.broker_order_id, t.broker_trade_id) for t in trades) == sorted(
        [(str(one), account.trades[0].traded_id), (str(two), account.trades[0].traded_id)])


# --------------------------------------------------------------------------- the connection


def test_while_down_miniqmts_empty_answers_are_not_believed(qmt: FakeMiniQmt, broker: XtQuantBroker) -> None:
    broker.place_order(buy("61"))
    qmt.settle()
    dead = qmt.traders[0]
    qmt.go_down()
    qmt.settle()
    assert dead.query_stock_orders(broker._account()) == []  # what a lost link answers
    for call in (broker.query_orders, broker.query_trades, broker.get_balance, broker.get_positions):
        with pytest.raises(BrokerUnavailable):
            call()
    with pytest.raises(BrokerUnavailable):
        broker.query_changes(None)


def test_an_answer_that_raced_the_drop_is_not_believed(qmt: FakeMiniQmt, broker: XtQuantBroker,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    broker.place_order(buy("63"))
    qmt.settle()
    [trader] = qmt.traders

    def dropping(account: Any, cancelable_only: bool = False) -> list[Any]:
        qmt.go_down()  # the link goes while the query is out; on_disconnected arrives before the answer
        qmt.settle()
        return []

    monkeypatch.setattr(trader, "query_stock_orders", dropping)
    with pytest.raises(BrokerUnavailable):
        broker.query_orders()


def test_the_next_call_after_a_drop_builds_a_new_trader_and_reads_everything(qmt: FakeMiniQmt,
                                                                             broker: XtQuantBroker) -> None:
    ack = broker.place_order(buy("62"))
    qmt.settle()
    cursor = broker.query_changes(None).cursor
    old = qmt.traders[0]
    qmt.go_down()
    qmt.settle()
    qmt.fill(int(ack.broker_order_id), 500, 9.9)  # while we are away: no push reaches us
    qmt.come_up()
    changes = broker.query_changes(cursor)  # the same adapter connects again by itself
    [new] = qmt.traders
    assert new is not old and new.calls[:3] == ["start", "connect", "subscribe"] and new.relaxed
    assert changes.complete  # the pushes missed while down are read, not waited for
    [order] = changes.orders
    assert (order.status, order.filled_quantity) == (S.PARTIALLY_FILLED, 500)
    assert [t.quantity for t in changes.trades] == [500]
    qmt.settle()  # subscribe replayed the day's trades: one fill still, whatever came first
    after = broker.query_changes(changes.cursor)  # (the order again if the replay beat the read)
    assert [t.quantity for t in after.trades] in ([], [500])
    assert broker.query_changes(after.cursor).orders == []
    assert [t.quantity for t in broker.query_trades()] == [500]


def test_reconnects_wait_reconnect_seconds_between_attempts(qmt: FakeMiniQmt) -> None:
    adapter = make_broker(reconnect_seconds=60)
    adapter.login()
    qmt.go_down()
    qmt.settle()
    with pytest.raises(BrokerUnavailable):
        adapter.query_orders()  # tried, and failed
    qmt.come_up()
    with pytest.raises(BrokerUnavailable) as info:
        adapter.query_orders()  # not tried again so soon
    assert "connect" in info.value.message


def test_an_unknown_account_is_unavailable_not_empty(qmt: FakeMiniQmt) -> None:
    with pytest.raises(BrokerUnavailable) as info:
        make_broker(account_id="0000").query_orders()
    assert "0000" in info.value.message


def test_on_linux_the_real_trader_cannot_be_built_and_says_so(qmt: FakeMiniQmt) -> None:
    xtquant.set_trader_factory(None)
    adapter = make_broker(path="C:\\nowhere\\userdata_mini")
    try:
        with pytest.raises(BrokerUnavailable) as info:
            adapter.login()
    finally:
        xtquant.sessions_close("C:\\nowhere\\userdata_mini")
    assert "xtquant" in info.value.message


@pytest.mark.parametrize("settings", [{"path": ""}, {"session_id": "x"}, {"account_id": ""},
                                      {"account_type": "FUTURE"}, {"market_style": "cheapest"}])
def test_bad_settings_leave_the_broker_unavailable(qmt: FakeMiniQmt, settings: dict[str, str]) -> None:
    with pytest.raises(BrokerUnavailable):
        make_broker(**settings).login()
    assert qmt.traders == []


def test_an_answer_of_the_wrong_shape_is_an_error_not_a_shorter_list(qmt: FakeMiniQmt, broker: XtQuantBroker,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    broker.place_order(buy("72"))
    qmt.settle()
    [trader] = qmt.traders
    broken = trader.query_stock_orders(broker._account())
    broken[0].order_status = None
    monkeypatch.setattr(trader, "query_stock_orders", lambda account, cancelable_only=False: broken)
    with pytest.raises(BrokerError) as info:
        broker.query_orders()
    assert not isinstance(info.value, BrokerUnavailable | BrokerTimeout)


def test_a_call_miniqmt_never_answers_times_out(qmt: FakeMiniQmt, broker: XtQuantBroker) -> None:
    qmt.hang_next_order(took_effect=False)
    started = time.monotonic()
    with pytest.raises(BrokerTimeout):
        broker.place_order(buy("71"))
    assert time.monotonic() - started < 2
