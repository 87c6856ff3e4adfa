"""Concurrent orders can never jointly break a limit (PostgreSQL, one connection per thread).

60 orders are fired at once through ``orders.services.order_submit``; each
would pass alone, together they exceed the limit. The account row lock taken
by the order path serialises the checks and the counter updates, so exactly
as many orders as the limit allows are admitted, the rest are created as
REJECTED, none is lost and nothing deadlocks.
"""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
from django.db import connection
from django.db.models import F, Sum

from orders.models import Order, OrderStatus
from risk.models import RiskCounter
from risk.services import risk_rule_set
from tests import factories

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("require_postgres")]

THREADS = 60
PRICE, QUANTITY = "9.90", 1000  # 9,900 CNY an order


@pytest.fixture
def market(settings):
    settings.ORDERS_DISPATCH = "relay"  # intake only: accepted orders wait in the outbox, no relay runs
    account = factories.account("race", cash="100000000")
    factories.instrument("600000.SH")
    factories.instrument("000001.SZ")
    factories.quote("600000.SH", prev_close="10.00", last="10.00", bid="9.99", ask="10.00")
    factories.quote("000001.SZ", prev_close="10.00", last="10.00", bid="9.99", ask="10.00")
    return account


def fire(count: int) -> list[object]:
    from audit.services import Actor
    from orders.services import OrderInput, order_submit

    barrier = threading.Barrier(count)
    results: list[object] = [None] * count

    def submit(index: int) -> None:
        try:
            barrier.wait(10)
            symbol = "600000.SH" if index % 2 else "000001.SZ"
            data = OrderInput(account="race", symbol=symbol, side="BUY", order_type="LIMIT", price=PRICE,
                              quantity=QUANTITY, client_order_id=f"race-{index}")
            results[index] = order_submit(data, actor=Actor.api_key("race")).order.status
        except Exception as exc:  # noqa: BLE001 - every outcome is asserted
            results[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=submit, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads), "a submission hung: deadlock?"
    return results


@pytest.mark.parametrize(
    ("code", "params", "allowed"),
    [
        ("max_daily_amount", {"max_amount": "99000"}, 10),  # 10 x 9,900 = 99,000 exactly
        ("max_daily_orders", {"max_orders": 17}, 17),
    ],
)
def test_concurrent_orders_never_exceed_the_limit(market, code: str, params: dict, allowed: int) -> None:
    risk_rule_set(code=code, params=params)
    results = fire(THREADS)
    errors = [r for r in results if isinstance(r, Exception)]
    assert not errors, errors  # every submission created an order (none failed, none deadlocked)
    assert Order.objects.filter(account=market).count() == THREADS  # no lost order
    admitted = Order.objects.filter(account=market).exclude(status=OrderStatus.REJECTED)
    assert admitted.count() == allowed, sorted(map(str, results))
    assert sorted(set(map(str, results))) == [OrderStatus.NEW, OrderStatus.REJECTED]
    amount = admitted.aggregate(total=Sum(F("price") * F("quantity")))["total"]
    assert amount == Decimal("9900") * allowed
    row = RiskCounter.objects.get(account=market, key="")
    assert (row.orders, row.amount, row.rejected) == (allowed, Decimal("9900.00") * allowed, THREADS - allowed)
    refused = Order.objects.filter(account=market, status=OrderStatus.REJECTED).first()
    assert refused is not None and refused.risk_verdicts[0]["rule"] == code
    market.refresh_from_db()
    assert market.frozen == sum(o.frozen_amount for o in admitted)
