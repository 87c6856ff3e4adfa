"""A small fixed trading day of abnormal trading, driven through the services, whose figures are
counted by hand below (tests of orders/activity.py, the monitors and the compliance report).

Account acc1 at the scripted broker (the ``script`` fixture), the clock frozen (``clock``) on
2026-11-23:

* 10:00:00.000: five limit buys of 600000.SH at 9.90 (all in one second);
* 10:00:00.800: two of them cancelled (instant cancels: within one second of admission);
* 10:00:05: a third cancelled (not instant);
* 10:00:10: a sell at 9.95 rests (acc1 holds 1,000 shares); a buy at 10.00 would cross it: refused
  by self_trade; a buy of 000001.SZ, on the restricted list: refused by restricted_list;
* 14:58: one buy in the closing call, filled at once;
* acc1 holds 460,000 shares of 600036.SH, whose total shares are 10,000,000: 4.6%.

Hand counts: orders 7 (5 + the sell + the closing buy; the two refused ones never count), cancels 3,
orders plus cancels 10, busiest second 10:00:00 with 7 (5 orders + 2 cancels), instant cancels 2,
cancel ratio 3/7, filled 1 of 7, closing-window orders 1, self-trade attempts 1 (REJECT),
restricted-list hits 1 (REJECT), one stake at 4.6%.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from audit.services import Actor
from brokers.adapters.scripted import BrokerScript
from orders.models import Order, OrderStatus
from orders.services import OrderInput, account_poll, order_cancel, order_submit
from risk.models import RestrictedSymbol
from risk.services import restricted_symbol_save, risk_rule_set
from tests import factories
from tests.conftest import CLOCK_START, Clock
from trading.models import Account, Position

ACTOR = Actor.api_key("abnormal-day")
DAY = CLOCK_START.date()
BUSY_SECOND = CLOCK_START  # 10:00:00 Shanghai


@dataclass
class AbnormalDay:
    day: date
    orders: dict[str, Order]


def submit(client_order_id: str, *, symbol: str = "600000.SH", side: str = "BUY", price: str = "9.90",
           quantity: int = 100) -> Order:
    body = factories.order_body(client_order_id=client_order_id, symbol=symbol, side=side, price=price, quantity=quantity)
    return Order.objects.get(pk=order_submit(OrderInput(**body), actor=ACTOR).order.pk)


def at(clock: Clock, hour: int, minute: int, second: int = 0, micro: int = 0) -> None:
    clock.at = CLOCK_START.replace(hour=hour, minute=minute, second=second, microsecond=micro)


def abnormal_day(script: BrokerScript, clock: Clock) -> AbnormalDay:
    """Play the day above; returns its orders by name."""
    account = Account.objects.get(name="acc1")
    factories.quote("000001.SZ", prev_close="10.00")
    factories.quote("600036.SH", prev_close="10.00")
    stake = factories.instrument("600036.SH", total_shares=10_000_000)
    Position.objects.update_or_create(account=account, instrument=stake,
                                      defaults={"quantity": 460_000, "cost_amount": Decimal("4600000")})
    Position.objects.update_or_create(account=account, instrument=factories.instrument("600000.SH"),
                                      defaults={"quantity": 1000, "cost_amount": Decimal("10000")})
    risk_rule_set(code="self_trade", params={}, action="REJECT", actor=ACTOR)
    risk_rule_set(code="restricted_list", params={}, action="REJECT", actor=ACTOR)
    restricted_symbol_save(restriction=RestrictedSymbol(instrument=factories.instrument("000001.SZ"), reason="内幕信息"),
                           actor=ACTOR)
    orders: dict[str, Order] = {}
    at(clock, 10, 0)
    for n in range(5):
        orders[f"b{n}"] = submit(f"b{n}")
    at(clock, 10, 0, 0, 800_000)
    for name in ("b0", "b1"):
        order_cancel(order_id=orders[name].pk, actor=ACTOR)
    at(clock, 10, 0, 5)
    order_cancel(order_id=orders["b2"].pk, actor=ACTOR)
    at(clock, 10, 0, 10)
    orders["sell"] = submit("sell", side="SELL", price="9.95")
    orders["self"] = submit("self", price="10.00")
    orders["restricted"] = submit("restricted", symbol="000001.SZ", price="10.00")
    assert orders["self"].status == orders["restricted"].status == OrderStatus.REJECTED
    at(clock, 14, 58)
    orders["closing"] = submit("closing")
    assert orders["closing"].broker_order_id, (orders["closing"].status, orders["closing"].status_reason)
    script.fill(orders["closing"].broker_order_id, 100, Decimal("9.90"))
    account_poll(account_id=account.pk)
    return AbnormalDay(DAY, {name: Order.objects.get(pk=order.pk) for name, order in orders.items()})


def shanghai(hour: int, minute: int, second: int = 0) -> datetime:
    return CLOCK_START.replace(hour=hour, minute=minute, second=second)
