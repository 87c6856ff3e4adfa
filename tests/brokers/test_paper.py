"""The paper broker: validation, matching, books, sessions and simulated network faults."""

from __future__ import annotations

import re
import threading
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.db import connection

from brokers.adapters.paper import PaperBroker
from brokers.interface import BrokerOrderStatus, OrderRequest
from brokers.models import PaperAccount, PaperOrder, PaperPosition, PaperTrade
from brokers.registry import adapter_class
from brokers.services import QuoteIn, account_create, paper_reset_account, quotes_publish
from tests.conftest import CLOCK_START, Clock
from trading.errors import BrokerError, BrokerTimeout, InvalidOrder
from trading.models import Instrument, Quote

pytestmark = pytest.mark.django_db

SH = ZoneInfo("Asia/Shanghai")
MONDAY = CLOCK_START  # 2026-11-23 10:00, a trading day: where the `clock` fixture starts
TUESDAY = datetime(2026, 11, 24, 10, 0, tzinfo=SH)
D = Decimal
START_CASH = D("1000000.00")


@pytest.fixture
def instruments() -> dict[str, Instrument]:
    rows = [
        ("SZ", "000001", "平安银行", "MAIN", {}),
        ("SH", "600000", "浦发银行", "MAIN", {}),
        ("SZ", "300750", "宁德时代", "CHINEXT", {}),
        ("SH", "688981", "中芯国际", "STAR", {}),
        ("SH", "113050", "南银转债", "CONVERTIBLE_BOND", {}),
        ("SH", "518880", "黄金ETF", "FUND", {"t0": True}),
        ("SZ", "000002", "万科A", "MAIN", {"is_active": False}),
    ]
    result = {}
    for exchange, code, name, board, extra in rows:
        inst = Instrument.objects.create(exchange=exchange, code=code, name=name, board=board, **extra)
        result[inst.symbol] = inst
    return result


def open_account(name: str = "alpha", cash: str | Decimal = START_CASH, **kwargs: Any) -> PaperBroker:
    account = account_create(name=name, broker_kind="paper", cash=D(cash), **kwargs)
    return PaperBroker(account.name, account.broker_settings)


def publish(symbol: str, **fields: Any) -> Any:
    values = {"prev_close": "10.00", "last": "10.00", "bid": None, "ask": None, "bid_volume": 0, "ask_volume": 0}
    values.update(fields)
    return quotes_publish([{"symbol": symbol, **values}])


def limit(symbol: str, side: str, quantity: int, price: str, ref: str = "c1") -> OrderRequest:
    return OrderRequest(client_ref=ref, symbol=symbol, side=side, order_type="LIMIT", quantity=quantity, price=D(price))


def market(symbol: str, side: str, quantity: int, ref: str = "m1", protection: str | None = None) -> OrderRequest:
    return OrderRequest(
        client_ref=ref,
        symbol=symbol,
        side=side,
        order_type="MARKET",
        quantity=quantity,
        protection_price=D(protection) if protection else None,
    )


def order_of(broker_order_id: str) -> PaperOrder:
    return PaperOrder.objects.get(broker_order_id=broker_order_id)


def paper_account(name: str = "alpha") -> PaperAccount:
    return PaperAccount.objects.get(account_name=name)


def refused(broker: PaperBroker, request: OrderRequest) -> str:
    with pytest.raises(BrokerError) as info:
        broker.place_order(request)
    assert not isinstance(info.value, BrokerTimeout)
    return info.value.message


def buy_and_settle(broker: PaperBroker, clock: Clock, symbol: str = "000001.SZ", quantity: int = 1000) -> None:
    """Buy on Monday at 10.00, then move the clock to Tuesday (shares settled)."""
    publish(symbol, bid="9.99", ask="10.00", bid_volume=100000, ask_volume=100000)
    ack = broker.place_order(limit(symbol, "BUY", quantity, "10.00", ref="setup-buy"))
    assert order_of(ack.broker_order_id).status == BrokerOrderStatus.FILLED
    clock.at = TUESDAY


# ---------------------------------------------------------------------------
# Registration and accounts
# ---------------------------------------------------------------------------


def test_registered_with_capabilities() -> None:
    cls = adapter_class("paper")
    assert cls is PaperBroker
    assert cls.label == "模拟券商"
    assert cls.capabilities.market_orders and cls.capabilities.client_ref and cls.capabilities.history


def test_account_create_opens_paper_account_idempotently(clock: Clock) -> None:
    broker = open_account(cash="50000")
    assert paper_account().cash == D("50000.00")
    assert paper_account().frozen == D("0")
    PaperBroker.open_account("alpha", D("1"))  # second call: no error, books unchanged
    assert paper_account().cash == D("50000.00")
    broker.login()
    balance = broker.get_balance()
    assert (balance.cash, balance.available, balance.frozen, balance.market_value, balance.total_assets) == (
        D("50000.00"),
        D("50000.00"),
        D("0.00"),
        D("0"),
        D("50000.00"),
    )


def test_login_without_broker_account_fails() -> None:
    with pytest.raises(BrokerError, match="资金账号不存在"):
        PaperBroker("nobody").login()


# ---------------------------------------------------------------------------
# Matching
# ---------------------------------------------------------------------------


def test_limit_buy_fills_at_the_ask(clock: Clock, instruments: dict[str, Instrument]) -> None:
    broker = open_account()
    publish("000001.SZ", bid="10.00", ask="10.01", bid_volume=5000, ask_volume=5000)
    ack = broker.place_order(limit("000001.SZ", "BUY", 1000, "10.05", ref="our-1"))

    assert re.fullmatch(r"P-20261123-\d{6}", ack.broker_order_id)
    [order] = broker.query_orders()
    assert order.client_ref == "our-1"
    assert order.status == BrokerOrderStatus.FILLED
    assert order.filled_quantity == 1000
    assert order.avg_fill_price == D("10.01")
    [trade] = broker.query_trades()
    assert re.fullmatch(r"T-20261123-\d{6}", trade.broker_trade_id)
    assert (trade.price, trade.quantity, trade.amount) == (D("10.01"), 1000, D("10010.00"))
    assert trade.broker_order_id == ack.broker_order_id
    # 10,010 x 0.025% = 2.50 -> minimum 5; transfer fee 10,010 x 0.001% = 0.10
    assert (trade.commission, trade.transfer_fee, trade.stamp_duty) == (D("5.00"), D("0.10"), D("0.00"))
    assert paper_account().cash == START_CASH - D("10015.10")
    assert paper_account().frozen == D("0.00")
    [position] = broker.get_positions()
    assert (position.symbol, position.quantity, position.sellable_quantity) == ("000001.SZ", 1000, 0)
    assert Quote.objects.get(instrument=instruments["000001.SZ"]).ask_volume == 4000


def test_limit_sell_fills_at_the_bid(clock: Clock, instruments: dict[str, Instrument]) -> None:
    broker = open_account()
    buy_and_settle(broker, clock)
    publish("000001.SZ", bid="10.20", ask="10.21", bid_volume=5000, ask_volume=5000)
    ack = broker.place_order(limit("000001.SZ", "SELL", 1000, "10.10", ref="s1"))
    order = order_of(ack.broker_order_id)
    assert order.status == BrokerOrderStatus.FILLED
    assert order.avg_fill_price == D("10.20")
    assert not PaperPosition.objects.get(account_name="alpha", symbol="000001.SZ").quantity


def test_no_fill_until_the_price_is_reached(clock: Clock, instruments: dict[str, Instrument]) -> None:
    broker = open_account()
    publish("000001.SZ", bid="10.00", ask="10.01", bid_volume=5000, ask_volume=5000)
    ack = broker.place_order(limit("000001.SZ", "BUY", 1000, "10.00"))
    order = order_of(ack.broker_order_id)
    assert order.status == BrokerOrderStatus.OPEN
    assert not PaperTrade.objects.exists()
    assert order.frozen_amount == D("10005.10")  # 10,000 + commission 5.00 + transfer 0.10
    assert paper_account().frozen == D("10005.10")

    result = publish("000001.SZ", bid="10.01", ask="10.02", bid_volume=5000, ask_volume=5000)
    assert result.accounts_with_fills == set()
    assert order_of(ack.broker_order_id).status == BrokerOrderStatus.OPEN

    result = publish("000001.SZ", bid="9.99", ask="10.00", bid_volume=5000, ask_volume=5000)
    assert result.accounts_with_fills == {"alpha"}
    order = order_of(ack.broker_order_id)
    assert order.status == BrokerOrderStatus.FILLED
    assert order.avg_fill_price == D("10.00")
    assert paper_account().frozen == D("0.00")
    assert result.quotes[0].ask_volume == 4000


def test_partial_fill_capped_by_volume_then_completed(clock: Clock, instruments: dict[str, Instrument]) -> None:
    broker = open_account()
    publish("000001.SZ", bid="10.00", ask="10.01", bid_volume=5000, ask_volume=300)
    ack = broker.place_order(limit("000001.SZ", "BUY", 1000, "10.01"))
    order = order_of(ack.broker_order_id)
    assert (order.status, order.filled_quantity) == (BrokerOrderStatus.PARTIALLY_FILLED, 300)
    # Freeze 10,010 + 5.00 + 0.10 = 10,015.10; 3/10 of it released by the fill.
    assert order.frozen_amount == D("10015.10") - D("3004.53")
    assert paper_account().frozen == order.frozen_amount
    assert paper_account().cash == START_CASH - D("3003.00") - D("5.00") - D("0.03")
    assert Quote.objects.get(instrument=instruments["000001.SZ"]).ask_volume == 0

    # The same quote again (volume already taken): nothing more.
    publish("000001.SZ", bid="10.00", ask="10.01", bid_volume=5000, ask_volume=0)
    assert order_of(ack.broker_order_id).filled_quantity == 300

    result = publish("000001.SZ", bid="10.00", ask="10.01", bid_volume=5000, ask_volume=5000)
    assert result.accounts_with_fills == {"alpha"}
    order = order_of(ack.broker_order_id)
    assert (order.status, order.filled_quantity) == (BrokerOrderStatus.FILLED, 1000)
    assert [t.quantity for t in broker.query_trades()] == [300, 700]
    assert order.frozen_amount == D("0.00")
    assert paper_account().frozen == D("0.00")


def test_quoted_volume_is_consumed_across_orders(clock: Clock, instruments: dict[str, Instrument]) -> None:
    alpha = open_account("alpha")
    beta = open_account("beta")
    publish("000001.SZ", bid="10.00", ask="10.01", bid_volume=5000, ask_volume=500)
    first = alpha.place_order(limit("000001.SZ", "BUY", 400, "10.01"))
    second = beta.place_order(limit("000001.SZ", "BUY", 400, "10.01"))
    assert order_of(first.broker_order_id).filled_quantity == 400
    assert order_of(second.broker_order_id).filled_quantity == 100
    assert Quote.objects.get(instrument=instruments["000001.SZ"]).ask_volume == 0


def test_resting_orders_match_in_price_time_priority(clock: Clock, instruments: dict[str, Instrument]) -> None:
    alpha = open_account("alpha")
    beta = open_account("beta")
    publish("000001.SZ", bid="9.90", ask="10.10", bid_volume=5000, ask_volume=5000)
    oldest = alpha.place_order(limit("000001.SZ", "BUY", 400, "10.00", ref="a1"))
    newer = beta.place_order(limit("000001.SZ", "BUY", 400, "10.00", ref="b1"))
    best_price = beta.place_order(limit("000001.SZ", "BUY", 200, "10.05", ref="b2"))

    result = publish("000001.SZ", bid="9.90", ask="10.00", bid_volume=5000, ask_volume=500)
    assert order_of(best_price.broker_order_id).filled_quantity == 200
    assert order_of(oldest.broker_order_id).filled_quantity == 300
    assert order_of(newer.broker_order_id).filled_quantity == 0
    assert result.accounts_with_fills == {"alpha", "beta"}
    assert result.quotes[0].ask_volume == 0


def test_sealed_limit_up_and_down_do_not_fill(clock: Clock, instruments: dict[str, Instrument]) -> None:
    broker = open_account()
    buy_and_settle(broker, clock)
    # Sealed limit up: bids only, no ask.
    publish("000001.SZ", last="11.00", bid="11.00", bid_volume=900000)
    buy = broker.place_order(limit("000001.SZ", "BUY", 100, "11.00", ref="up"))
    assert order_of(buy.broker_order_id).status == BrokerOrderStatus.OPEN
    # Sealed limit down: asks only, no bid.
    publish("000001.SZ", last="9.00", ask="9.00", ask_volume=900000)
    sell = broker.place_order(limit("000001.SZ", "SELL", 100, "9.00", ref="down"))
    assert order_of(sell.broker_order_id).status == BrokerOrderStatus.OPEN
    # The buy at 11.00 now crosses the 9.00 ask and fills there; the sell still has no bid.
    assert order_of(buy.broker_order_id).status == BrokerOrderStatus.FILLED
    assert order_of(buy.broker_order_id).avg_fill_price == D("9.00")
    assert not PaperTrade.objects.filter(order__broker_order_id=sell.broker_order_id).exists()


# ---------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------


def test_price_limit_band_from_prev_close(clock: Clock, instruments: dict[str, Instrument]) -> None:
    broker = open_account()
    # 600000.SH, previous close 10.05: limits 9.05 and 11.06.
    publish("600000.SH", prev_close="10.05", last="10.05", bid="10.04", ask="11.00", bid_volume=100, ask_volume=100)
    assert refused(broker, limit("600000.SH", "BUY", 100, "9.04")) == "委托价格超出涨跌停范围"
    assert refused(broker, limit("600000.SH", "BUY", 100, "11.07")) == "委托价格超出涨跌停范围"
    ack = broker.place_order(limit("600000.SH", "BUY", 100, "9.05"))
    assert order_of(ack.broker_order_id).status == BrokerOrderStatus.OPEN
    ack = broker.place_order(limit("600000.SH", "BUY", 100, "11.06"))
    assert order_of(ack.broker_order_id).status == BrokerOrderStatus.FILLED


def test_refused_order_is_recorded_as_rejected(clock: Clock, instruments: dict[str, Instrument]) -> None:
    broker = open_account()
    publish("000001.SZ", bid="10.00", ask="10.01", bid_volume=100, ask_volume=100)
    message = refused(broker, limit("000001.SZ", "BUY", 100, "12.00", ref="ref-9"))
    [order] = broker.query_orders()
    assert (order.client_ref, order.status, order.message) == ("ref-9", BrokerOrderStatus.REJECTED, message)
    assert paper_account().frozen == D("0")


def test_tick_size(clock: Clock, instruments: dict[str, Instrument]) -> None:
    broker = open_account()
    publish("000001.SZ", bid="10.00", ask="10.01", bid_volume=100, ask_volume=100)
    assert refused(broker, limit("000001.SZ", "BUY", 100, "10.005")) == "价格不符合最小价位"
    publish("518880.SH", prev_close="5.000", last="5.000", bid="5.000", ask="5.001", bid_volume=100, ask_volume=100)
    broker.place_order(limit("518880.SH", "BUY", 100, "5.001"))  # funds trade in 0.001


def test_lots_per_board(clock: Clock, instruments: dict[str, Instrument]) -> None:
    broker = open_account()
    publish(
        "300750.SZ", prev_close="200.00", last="200.00", bid="199.99", ask="200.00", bid_volume=9000, ask_volume=9000
    )
    publish("688981.SH", prev_close="50.00", last="50.00", bid="49.99", ask="50.00", bid_volume=9000, ask_volume=9000)
    assert refused(broker, limit("300750.SZ", "BUY", 150, "200.00")) == "委托数量不是100股的整数倍"
    assert order_of(broker.place_order(limit("300750.SZ", "BUY", 100, "200.00")).broker_order_id).filled_quantity == 100
    assert refused(broker, limit("688981.SH", "BUY", 199, "50.00")) == "委托数量不足200股"
    assert order_of(broker.place_order(limit("688981.SH", "BUY", 201, "50.00")).broker_order_id).filled_quantity == 201
    assert refused(broker, limit("300750.SZ", "BUY", 300100, "200.00")) == "委托数量超过单笔最大申报数量"


def test_unknown_and_suspended_instruments(clock: Clock, instruments: dict[str, Instrument]) -> None:
    broker = open_account()
    assert refused(broker, limit("600001.SH", "BUY", 100, "10.00")) == "证券代码不存在"
    assert refused(broker, limit("garbage", "BUY", 100, "10.00")) == "证券代码不存在"
    assert refused(broker, limit("000002.SZ", "BUY", 100, "10.00")) == "该证券暂停交易"


def test_st_stock_daily_buy_limit_per_account(clock: Clock, instruments: dict[str, Instrument]) -> None:
    Instrument.objects.create(exchange="SH", code="600100", name="ST测试", board="MAIN", is_st=True)
    broker = open_account(cash="3000000")
    publish("600100.SH", prev_close="5.00", last="5.00", bid="4.99", ask="5.00", bid_volume=1000, ask_volume=1000)
    assert refused(broker, limit("600100.SH", "BUY", 500100, "4.90")) == "风险警示股票当日买入数量超过上限"
    big = broker.place_order(limit("600100.SH", "BUY", 499000, "4.90", ref="big"))
    broker.place_order(limit("600100.SH", "BUY", 1000, "5.00", ref="filled"))
    assert refused(broker, limit("600100.SH", "BUY", 100, "4.90", ref="over")) == "风险警示股票当日买入数量超过上限"
    broker.cancel_order(big.broker_order_id)  # its unfilled shares no longer count
    broker.place_order(limit("600100.SH", "BUY", 100, "4.90", ref="fits"))


def test_price_cage_reject_by_default(clock: Clock, instruments: dict[str, Instrument]) -> None:
    broker = open_account()
    # Buy reference = ask 10.00: bound max(10.20, 10.00 + 10 ticks) = 10.20.
    publish("600000.SH", bid="9.99", ask="10.00", bid_volume=1000, ask_volume=1000)
    assert refused(broker, limit("600000.SH", "BUY", 100, "10.21")) == "委托价格超出价格笼子范围"
    ack = broker.place_order(limit("600000.SH", "BUY", 100, "10.20"))
    assert order_of(ack.broker_order_id).status == BrokerOrderStatus.FILLED


def test_price_cage_hold_waits_until_the_cage_includes_the_price(
    clock: Clock, instruments: dict[str, Instrument]
) -> None:
    broker = open_account(broker_settings={"cage_mode": "hold"})
    publish("600000.SH", bid="9.99", ask="10.00", bid_volume=1000, ask_volume=1000)
    ack = broker.place_order(limit("600000.SH", "BUY", 100, "10.21"))
    order = order_of(ack.broker_order_id)
    assert (order.status, order.cage_held, order.filled_quantity) == (BrokerOrderStatus.OPEN, True, 0)
    # It crosses the ask but is outside the cage: held, no fill.
    publish("600000.SH", bid="9.99", ask="10.00", bid_volume=1000, ask_volume=1000)
    assert order_of(ack.broker_order_id).filled_quantity == 0
    # Ask 10.15: bound max(10.35, 10.25) = 10.35 includes 10.21: released and filled at the ask.
    result = publish("600000.SH", bid="10.14", ask="10.15", bid_volume=1000, ask_volume=1000)
    order = order_of(ack.broker_order_id)
    assert (order.status, order.cage_held, order.avg_fill_price) == (BrokerOrderStatus.FILLED, False, D("10.15"))
    assert result.accounts_with_fills == {"alpha"}


def test_t1_buy_then_sell_same_day_refused_next_day_allowed(clock: Clock, instruments: dict[str, Instrument]) -> None:
    broker = open_account()
    publish("000001.SZ", bid="9.99", ask="10.00", bid_volume=100000, ask_volume=100000)
    broker.place_order(limit("000001.SZ", "BUY", 1000, "10.00", ref="b"))
    assert refused(broker, limit("000001.SZ", "SELL", 1000, "9.99", ref="s")) == "可卖股份不足"
    [position] = broker.get_positions()
    assert (position.quantity, position.sellable_quantity) == (1000, 0)

    clock.at = TUESDAY
    [position] = broker.get_positions()
    assert position.sellable_quantity == 1000
    publish("000001.SZ", bid="9.99", ask="10.00", bid_volume=100000, ask_volume=100000)
    ack = broker.place_order(limit("000001.SZ", "SELL", 1000, "9.99", ref="s2"))
    assert order_of(ack.broker_order_id).status == BrokerOrderStatus.FILLED
    assert refused(broker, limit("000001.SZ", "SELL", 100, "9.99", ref="s3")) == "可卖股份不足"


def test_t0_instrument_can_be_sold_the_same_day(clock: Clock, instruments: dict[str, Instrument]) -> None:
    broker = open_account()
    publish("518880.SH", prev_close="5.000", last="5.000", bid="5.000", ask="5.001", bid_volume=9000, ask_volume=9000)
    broker.place_order(limit("518880.SH", "BUY", 1000, "5.001", ref="b"))
    [position] = broker.get_positions()
    assert position.sellable_quantity == 1000
    ack = broker.place_order(limit("518880.SH", "SELL", 1000, "5.000", ref="s"))
    assert order_of(ack.broker_order_id).status == BrokerOrderStatus.FILLED
    trade = PaperTrade.objects.get(order__broker_order_id=ack.broker_order_id)
    # Funds pay neither stamp duty nor transfer fee.
    assert (trade.stamp_duty, trade.transfer_fee, trade.commission) == (D("0.00"), D("0.00"), D("5.00"))


def test_sell_freezes_shares_until_cancelled(clock: Clock, instruments: dict[str, Instrument]) -> None:
    broker = open_account()
    buy_and_settle(broker, clock)
    publish("000001.SZ", bid="9.99", ask="10.00", bid_volume=100000, ask_volume=100000)
    ack = broker.place_order(limit("000001.SZ", "SELL", 600, "10.50", ref="s"))
    assert refused(broker, limit("000001.SZ", "SELL", 500, "10.50", ref="s2")) == "可卖股份不足"
    broker.cancel_order(ack.broker_order_id)
    assert PaperPosition.objects.get(account_name="alpha", symbol="000001.SZ").frozen_quantity == 0
    broker.place_order(limit("000001.SZ", "SELL", 1000, "10.50", ref="s3"))


# ---------------------------------------------------------------------------
# Fees and cash
# ---------------------------------------------------------------------------


def test_fees_buy_and_sell_10000_cny_szse(clock: Clock, instruments: dict[str, Instrument]) -> None:
    broker = open_account()
    buy_and_settle(broker, clock)
    [buy] = PaperTrade.objects.all()
    assert (buy.amount, buy.commission, buy.transfer_fee, buy.stamp_duty, buy.other_fees) == (
        D("10000.00"),
        D("5.00"),
        D("0.10"),
        D("0.00"),
        D("0.00"),
    )
    assert paper_account().cash == D("989994.90")

    publish("000001.SZ", bid="10.00", ask="10.01", bid_volume=100000, ask_volume=100000)
    broker.place_order(limit("000001.SZ", "SELL", 1000, "10.00", ref="s"))
    [sell] = broker.query_trades()  # Tuesday's trades only
    assert (sell.amount, sell.commission, sell.stamp_duty, sell.transfer_fee) == (
        D("10000.00"),
        D("5.00"),
        D("5.00"),
        D("0.10"),
    )
    assert sell.fees == D("10.10")
    assert paper_account().cash == D("989994.90") + D("9989.90")
    assert not broker.get_positions()


def test_commission_minimum_charged_once_per_order(clock: Clock, instruments: dict[str, Instrument]) -> None:
    broker = open_account()
    publish("000001.SZ", bid="9.99", ask="10.00", bid_volume=5000, ask_volume=400)
    ack = broker.place_order(limit("000001.SZ", "BUY", 1000, "10.00"))
    publish("000001.SZ", bid="9.99", ask="10.00", bid_volume=5000, ask_volume=5000)
    first, second = broker.query_trades()
    assert (first.quantity, first.commission, first.transfer_fee) == (400, D("5.00"), D("0.04"))
    assert (second.quantity, second.commission, second.transfer_fee) == (600, D("0.00"), D("0.06"))
    assert order_of(ack.broker_order_id).commission_charged == D("5.00")
    assert paper_account().cash == START_CASH - D("10005.10")
    assert paper_account().frozen == D("0.00")


def test_insufficient_cash_counts_frozen_cash(clock: Clock, instruments: dict[str, Instrument]) -> None:
    broker = open_account(cash="15000")
    publish("000001.SZ", bid="9.99", ask="10.00", bid_volume=5000, ask_volume=5000)
    assert refused(broker, limit("000001.SZ", "BUY", 1500, "10.00")) == "可用资金不足"
    broker.place_order(limit("000001.SZ", "BUY", 1000, "9.90", ref="rest"))  # rests, freezes 9,905.10
    assert paper_account().frozen == D("9905.10")
    assert refused(broker, limit("000001.SZ", "BUY", 600, "9.90", ref="more")) == "可用资金不足"
    broker.place_order(limit("000001.SZ", "BUY", 500, "9.90", ref="fits"))


# ---------------------------------------------------------------------------
# Cancels
# ---------------------------------------------------------------------------


def test_cancel_open_partial_and_final_orders(clock: Clock, instruments: dict[str, Instrument]) -> None:
    broker = open_account()
    publish("000001.SZ", bid="9.99", ask="10.00", bid_volume=5000, ask_volume=300)
    partial = broker.place_order(limit("000001.SZ", "BUY", 1000, "10.00", ref="p"))
    resting = broker.place_order(limit("000001.SZ", "BUY", 1000, "9.50", ref="o"))
    assert paper_account().frozen > 0

    broker.cancel_order(resting.broker_order_id)
    broker.cancel_order(partial.broker_order_id)
    by_id = {o.broker_order_id: o for o in broker.query_orders()}
    assert by_id[resting.broker_order_id].status == BrokerOrderStatus.CANCELLED
    assert by_id[partial.broker_order_id].status == BrokerOrderStatus.CANCELLED
    assert by_id[partial.broker_order_id].filled_quantity == 300
    assert paper_account().frozen == D("0.00")
    assert paper_account().cash == START_CASH - D("3005.03")  # 3,000 + commission 5.00 + transfer 0.03

    with pytest.raises(BrokerError, match="^撤单失败: 委托已撤销$"):
        broker.cancel_order(resting.broker_order_id)
    publish("000001.SZ", bid="9.99", ask="10.00", bid_volume=5000, ask_volume=5000)
    done = broker.place_order(limit("000001.SZ", "BUY", 100, "10.00", ref="f"))
    with pytest.raises(BrokerError, match="^撤单失败: 委托已成交$"):
        broker.cancel_order(done.broker_order_id)
    with pytest.raises(BrokerError, match="^委托不存在$"):
        broker.cancel_order("P-20261123-999999")
    # Another account's order is not ours to cancel.
    other = open_account("beta")
    with pytest.raises(BrokerError, match="^委托不存在$"):
        other.cancel_order(done.broker_order_id)


# ---------------------------------------------------------------------------
# Expiry and sessions
# ---------------------------------------------------------------------------


def test_day_orders_expire_on_the_next_date_in_always_mode(clock: Clock, instruments: dict[str, Instrument]) -> None:
    broker = open_account()
    publish("000001.SZ", bid="9.99", ask="10.00", bid_volume=5000, ask_volume=5000)
    ack = broker.place_order(limit("000001.SZ", "BUY", 1000, "9.50"))
    clock.at = MONDAY.replace(hour=23, minute=59)
    assert order_of(ack.broker_order_id).status == BrokerOrderStatus.OPEN
    assert broker.query_orders()[0].status == BrokerOrderStatus.OPEN

    clock.at = TUESDAY.replace(hour=0, minute=1)
    [order] = broker.query_orders()  # yesterday's order, shown because it changed today
    assert order.status == BrokerOrderStatus.EXPIRED
    assert order.trading_day == date(2026, 11, 23)
    assert paper_account().frozen == D("0.00")
    with pytest.raises(BrokerError, match="^撤单失败: 委托已过期$"):
        broker.cancel_order(ack.broker_order_id)
    # An expired order no longer matches.
    publish("000001.SZ", bid="9.40", ask="9.50", bid_volume=5000, ask_volume=5000)
    assert order_of(ack.broker_order_id).filled_quantity == 0
    assert broker.history_orders(date(2026, 11, 23), date(2026, 11, 23))[0].status == BrokerOrderStatus.EXPIRED


def test_day_orders_expire_at_the_close_in_real_mode(clock: Clock, instruments: dict[str, Instrument]) -> None:
    broker = open_account(session_mode="real")
    publish("000001.SZ", bid="9.99", ask="10.00", bid_volume=5000, ask_volume=5000)
    broker.place_order(limit("000001.SZ", "BUY", 1000, "9.50"))
    clock.at = MONDAY.replace(hour=14, minute=59, second=59)
    assert broker.query_orders()[0].status == BrokerOrderStatus.OPEN
    clock.at = MONDAY.replace(hour=15, minute=0, second=1)
    assert broker.query_orders()[0].status == BrokerOrderStatus.EXPIRED
    assert paper_account().frozen == D("0.00")


def test_real_mode_refuses_orders_at_noon_and_on_holidays(clock: Clock, instruments: dict[str, Instrument]) -> None:
    broker = open_account(session_mode="real")
    publish("000001.SZ", bid="9.99", ask="10.00", bid_volume=5000, ask_volume=5000)
    clock.at = MONDAY.replace(hour=12)
    assert refused(broker, limit("000001.SZ", "BUY", 100, "10.00", ref="noon")) == "非交易时间"
    clock.at = datetime(2026, 10, 5, 10, 0, tzinfo=SH)  # National Day, a Monday
    assert refused(broker, limit("000001.SZ", "BUY", 100, "10.00", ref="holiday")) == "非交易时间"
    clock.at = datetime(2026, 11, 28, 10, 0, tzinfo=SH)  # Saturday
    assert refused(broker, limit("000001.SZ", "BUY", 100, "10.00", ref="weekend")) == "非交易时间"
    clock.at = MONDAY.replace(hour=9, minute=20)  # opening call: limit yes, market no
    assert refused(broker, market("000001.SZ", "BUY", 100)) == "当前时段不允许市价委托"
    ack = broker.place_order(limit("000001.SZ", "BUY", 100, "10.00", ref="call"))
    assert order_of(ack.broker_order_id).status == BrokerOrderStatus.OPEN  # call auction: no match yet
    with pytest.raises(BrokerError, match="^撤单失败: 当前时段不允许撤单$"):
        broker.cancel_order(ack.broker_order_id)
    clock.at = MONDAY.replace(hour=9, minute=31)
    publish("000001.SZ", bid="9.99", ask="10.00", bid_volume=5000, ask_volume=5000)
    assert order_of(ack.broker_order_id).status == BrokerOrderStatus.FILLED


def test_real_mode_resting_orders_do_not_match_in_the_lunch_break(
    clock: Clock, instruments: dict[str, Instrument]
) -> None:
    broker = open_account(session_mode="real")
    publish("000001.SZ", bid="9.99", ask="10.00", bid_volume=5000, ask_volume=5000)
    ack = broker.place_order(limit("000001.SZ", "BUY", 100, "9.90"))
    clock.at = MONDAY.replace(hour=12)
    assert publish("000001.SZ", bid="9.89", ask="9.90", bid_volume=5000, ask_volume=5000).accounts_with_fills == set()
    assert order_of(ack.broker_order_id).status == BrokerOrderStatus.OPEN
    clock.at = MONDAY.replace(hour=13, minute=1)
    assert publish("000001.SZ", bid="9.89", ask="9.90", bid_volume=5000, ask_volume=5000).accounts_with_fills == {
        "alpha"
    }
    assert order_of(ack.broker_order_id).status == BrokerOrderStatus.FILLED


# ---------------------------------------------------------------------------
# Market orders
# ---------------------------------------------------------------------------


def test_market_buy_fills_at_the_ask_and_cancels_the_rest(clock: Clock, instruments: dict[str, Instrument]) -> None:
    broker = open_account()
    publish("000001.SZ", bid="10.00", ask="10.01", bid_volume=5000, ask_volume=600)
    ack = broker.place_order(market("000001.SZ", "BUY", 1000))
    order = order_of(ack.broker_order_id)
    assert (order.status, order.filled_quantity, order.avg_fill_price) == (BrokerOrderStatus.CANCELLED, 600, D("10.01"))
    assert order.message == "市价委托剩余部分已撤销"
    assert order.protection_price == D("11.00")  # default protection: the limit up
    assert paper_account().frozen == D("0.00")
    assert paper_account().cash == START_CASH - D("6006.00") - D("5.00") - D("0.06")


def test_market_sell_fills_at_the_bid(clock: Clock, instruments: dict[str, Instrument]) -> None:
    broker = open_account()
    buy_and_settle(broker, clock)
    publish("000001.SZ", bid="9.95", ask="9.96", bid_volume=5000, ask_volume=5000)
    ack = broker.place_order(market("000001.SZ", "SELL", 1000))
    order = order_of(ack.broker_order_id)
    assert (order.status, order.avg_fill_price) == (BrokerOrderStatus.FILLED, D("9.95"))


def test_market_order_protection_price_caps_the_fill(clock: Clock, instruments: dict[str, Instrument]) -> None:
    broker = open_account()
    publish("000001.SZ", bid="10.00", ask="10.01", bid_volume=5000, ask_volume=5000)
    ack = broker.place_order(market("000001.SZ", "BUY", 1000, protection="10.00"))
    order = order_of(ack.broker_order_id)
    assert (order.status, order.filled_quantity) == (BrokerOrderStatus.CANCELLED, 0)
    assert order.message == "市价委托无可成交对手方, 已撤销"
    assert paper_account().frozen == D("0.00")
    assert paper_account().cash == START_CASH


def test_market_orders_refused_for_convertible_bonds(clock: Clock, instruments: dict[str, Instrument]) -> None:
    broker = open_account()
    publish(
        "113050.SH", prev_close="110.000", last="110.000", bid="109.999", ask="110.000", bid_volume=500, ask_volume=500
    )
    assert refused(broker, market("113050.SH", "BUY", 10)) == "该证券不支持市价委托"
    ack = broker.place_order(limit("113050.SH", "BUY", 10, "110.000"))
    assert order_of(ack.broker_order_id).status == BrokerOrderStatus.FILLED


# ---------------------------------------------------------------------------
# Persistence and simulated faults
# ---------------------------------------------------------------------------


def test_state_survives_a_new_adapter_instance(clock: Clock, instruments: dict[str, Instrument]) -> None:
    first = open_account()
    publish("000001.SZ", bid="9.99", ask="10.00", bid_volume=5000, ask_volume=5000)
    ack = first.place_order(limit("000001.SZ", "BUY", 1000, "9.90", ref="keep"))
    del first

    restarted = PaperBroker("alpha", {})
    [order] = restarted.query_orders()
    assert (order.broker_order_id, order.client_ref, order.status) == (ack.broker_order_id, "keep", "OPEN")
    publish("000001.SZ", bid="9.89", ask="9.90", bid_volume=5000, ask_volume=5000)
    again = PaperBroker("alpha", {})
    assert again.query_orders()[0].status == BrokerOrderStatus.FILLED
    [position] = again.get_positions()
    assert position.quantity == 1000
    assert position.last_price == D("10.00")
    assert position.market_value == D("10000.00")
    balance = again.get_balance()
    assert balance.cash == START_CASH - D("9905.10")
    assert balance.total_assets == balance.cash + D("10000.00")


def test_lost_answer_raises_timeout_but_the_order_exists(clock: Clock, instruments: dict[str, Instrument]) -> None:
    open_account()
    publish("000001.SZ", bid="9.99", ask="10.00", bid_volume=5000, ask_volume=5000)
    lossy = PaperBroker("alpha", {"lose_answers": True})
    with pytest.raises(BrokerTimeout, match="券商应答超时"):
        lossy.place_order(limit("000001.SZ", "BUY", 100, "10.00", ref="order-42"))
    found = [o for o in PaperBroker("alpha").query_orders() if o.client_ref == "order-42"]
    assert len(found) == 1
    assert found[0].status == BrokerOrderStatus.FILLED


def test_lose_every_nth_answer_and_unreachable(clock: Clock, instruments: dict[str, Instrument]) -> None:
    open_account()
    publish("000001.SZ", bid="9.99", ask="10.00", bid_volume=5000, ask_volume=5000)
    broker = PaperBroker("alpha", {"lose_answer_every": 2, "latency_ms": 1})
    broker.place_order(limit("000001.SZ", "BUY", 100, "9.00", ref="1"))
    with pytest.raises(BrokerTimeout):
        broker.place_order(limit("000001.SZ", "BUY", 100, "9.00", ref="2"))
    broker.place_order(limit("000001.SZ", "BUY", 100, "9.00", ref="3"))
    assert PaperOrder.objects.count() == 3
    down = PaperBroker("alpha", {"unreachable": "true"})
    with pytest.raises(BrokerTimeout, match="券商连接超时"):
        down.place_order(limit("000001.SZ", "BUY", 100, "9.00", ref="4"))
    assert PaperOrder.objects.count() == 3


def test_order_numbers_are_unique_per_day_across_accounts(clock: Clock, instruments: dict[str, Instrument]) -> None:
    alpha = open_account("alpha")
    beta = open_account("beta")
    publish("000001.SZ", bid="9.99", ask="10.00", bid_volume=5000, ask_volume=5000)
    ids = [
        alpha.place_order(limit("000001.SZ", "BUY", 100, "9.00", ref="a")).broker_order_id,
        beta.place_order(limit("000001.SZ", "BUY", 100, "9.00", ref="b")).broker_order_id,
    ]
    clock.at = TUESDAY
    ids.append(alpha.place_order(limit("000001.SZ", "BUY", 100, "9.00", ref="c")).broker_order_id)
    assert ids[0][:11] == ids[1][:11] == "P-20261123-"
    assert int(ids[1][-6:]) == int(ids[0][-6:]) + 1
    assert ids[2] == "P-20261124-000001"


# ---------------------------------------------------------------------------
# quotes_publish
# ---------------------------------------------------------------------------


def test_quotes_publish_validates_and_is_atomic(clock: Clock, instruments: dict[str, Instrument]) -> None:
    with pytest.raises(InvalidOrder) as info:
        quotes_publish([QuoteIn(symbol="000001.SZ", last=D("10.00")), {"symbol": "600001.SH", "last": "10.00"}])
    [problem] = info.value.problems
    assert (problem.field, problem.rule) == ("quotes[1].symbol", "unknown_symbol")
    assert not Quote.objects.exists()

    with pytest.raises(InvalidOrder) as info:
        quotes_publish([{"symbol": "000001.SZ", "bid": "10.01", "ask": "10.00"}])
    assert info.value.problems[0].rule == "crossed"
    with pytest.raises(InvalidOrder) as info:
        quotes_publish([{"symbol": "000001.SZ", "last": 10.0}])
    assert info.value.problems[0].rule == "decimal"


def test_quotes_publish_normalises_symbols_and_keeps_reference_prices(
    clock: Clock, instruments: dict[str, Instrument]
) -> None:
    result = quotes_publish([QuoteIn(symbol="sz000001", prev_close=D("10.00"), last=D("10.10"))])
    [quote] = result.quotes
    assert quote.instrument == instruments["000001.SZ"]
    assert quote.trading_day == date(2026, 11, 23)
    result = quotes_publish([{"symbol": "000001.XSHE", "bid": "10.10", "ask": "10.11", "ask_volume": 300}])
    quote = Quote.objects.get(instrument=instruments["000001.SZ"])
    assert (quote.prev_close, quote.last, quote.bid, quote.ask, quote.bid_volume, quote.ask_volume) == (
        D("10.00"),
        D("10.10"),
        D("10.10"),
        D("10.11"),
        0,
        300,
    )


def test_paper_reset_account(clock: Clock, instruments: dict[str, Instrument]) -> None:
    broker = open_account()
    publish("000001.SZ", bid="9.99", ask="10.00", bid_volume=5000, ask_volume=5000)
    broker.place_order(limit("000001.SZ", "BUY", 100, "10.00"))
    paper_reset_account(account_name="alpha", cash=D("2000"))
    assert (paper_account().cash, paper_account().frozen) == (D("2000.00"), D("0.00"))
    assert not broker.query_orders()
    assert not broker.get_positions()


# ---------------------------------------------------------------------------
# Concurrency (PostgreSQL row locks)
# ---------------------------------------------------------------------------


def _run_threads(targets: list[Any]) -> list[BaseException]:
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(targets))

    def run(target: Any) -> None:
        try:
            barrier.wait()
            target()
        except BaseException as exc:  # reported by the test
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(target,)) for target in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return errors


def _assert_books_consistent() -> None:
    for account in PaperAccount.objects.all():
        trades = PaperTrade.objects.filter(order__account_name=account.account_name)
        buys = sum((t.amount + t.fees for t in trades if t.order.side == "BUY"), D("0"))
        assert account.cash == START_CASH - buys
        open_frozen = sum(
            (o.frozen_amount for o in PaperOrder.objects.filter(account_name=account.account_name)), D("0")
        )
        assert account.frozen == open_frozen
    for order in PaperOrder.objects.all():
        assert order.filled_quantity == sum(t.quantity for t in order.trades.all())


@pytest.mark.django_db(transaction=True)
def test_concurrent_orders_never_take_the_same_volume(
    require_postgres: None, clock: Clock, instruments: dict[str, Instrument]
) -> None:
    brokers = [open_account(f"acct{i}") for i in range(6)]
    publish("000001.SZ", bid="9.99", ask="10.00", bid_volume=5000, ask_volume=1000)

    def placer(broker: PaperBroker) -> Any:
        def place() -> None:
            for i in range(3):
                broker.place_order(limit("000001.SZ", "BUY", 100, "10.00", ref=f"{broker.account_name}-{i}"))

        return place

    assert _run_threads([placer(b) for b in brokers]) == []
    orders = list(PaperOrder.objects.all())
    assert len({o.broker_order_id for o in orders}) == len(orders) == 18
    assert sum(o.filled_quantity for o in orders) == 1000
    assert Quote.objects.get(instrument=instruments["000001.SZ"]).ask_volume == 0
    _assert_books_consistent()


@pytest.mark.django_db(transaction=True)
def test_concurrent_placing_cancelling_and_publishing_do_not_deadlock(
    require_postgres: None, clock: Clock, instruments: dict[str, Instrument]
) -> None:
    brokers = [open_account(f"acct{i}") for i in range(4)]
    symbols = ["000001.SZ", "600000.SH"]
    for symbol in symbols:
        publish(symbol, bid="9.99", ask="10.00", bid_volume=5000, ask_volume=200)

    def trader(broker: PaperBroker) -> Any:
        def trade() -> None:
            for i in range(4):
                for symbol in symbols if i % 2 else reversed(symbols):
                    ack = broker.place_order(
                        limit(symbol, "BUY", 100, "10.00", ref=f"{broker.account_name}-{symbol}-{i}")
                    )
                    if i == 3:
                        try:
                            broker.cancel_order(ack.broker_order_id)
                        except BrokerError:
                            pass  # already filled
                broker.query_orders()

        return trade

    def publisher() -> None:
        for _ in range(5):
            quotes_publish(
                [
                    {"symbol": symbol, "prev_close": "10.00", "bid": "9.99", "ask": "10.00", "ask_volume": 100}
                    for symbol in reversed(symbols)
                ]
            )

    assert _run_threads([trader(b) for b in brokers] + [publisher, publisher]) == []
    assert PaperOrder.objects.count() == 32
    _assert_books_consistent()


# ---------------------------------------------------------------------------
# Admin
# ---------------------------------------------------------------------------


def test_admin_is_read_only(admin_client: Any, clock: Clock, instruments: dict[str, Instrument]) -> None:
    broker = open_account()
    publish("000001.SZ", bid="9.99", ask="10.00", bid_volume=5000, ask_volume=5000)
    ack = broker.place_order(limit("000001.SZ", "BUY", 100, "10.00"))
    order = order_of(ack.broker_order_id)
    for model in ("paperorder", "papertrade", "paperaccount", "paperposition"):
        assert admin_client.get(f"/admin/brokers/{model}/").status_code == 200
        assert admin_client.get(f"/admin/brokers/{model}/add/").status_code == 403
    page = admin_client.get(f"/admin/brokers/paperorder/{order.pk}/change/")
    assert page.status_code == 200
    assert ack.broker_order_id in page.content.decode()
    response = admin_client.post(f"/admin/brokers/paperorder/{order.pk}/change/", {"status": "CANCELLED"})
    assert response.status_code == 403
    assert order_of(ack.broker_order_id).status == BrokerOrderStatus.FILLED
    assert admin_client.get(f"/admin/brokers/paperorder/{order.pk}/delete/").status_code == 403
