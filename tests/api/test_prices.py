"""A price with digits beyond the tick, and a market order's protection price, are checked exactly
(issue 8, item 8): 422 naming the field and the rule, nothing stored rounded."""

from __future__ import annotations

from decimal import Decimal

import pytest

from orders.models import Order
from tests.api.conftest import order_body

pytestmark = pytest.mark.django_db(transaction=True)

LONG_PRICE = "9.9000000000000000000000000000001"


def test_is_on_tick_is_exact_at_any_precision() -> None:
    from trading.market_rules import is_on_tick

    tick = Decimal("0.01")
    assert is_on_tick(Decimal("9.90"), tick) and is_on_tick(Decimal("9.9000000000000000000000000000000"), tick)
    assert not is_on_tick(Decimal(LONG_PRICE), tick)
    assert not is_on_tick(Decimal("9.90000000000000000000000000000000000000000000000000000001"), tick)
    assert is_on_tick(Decimal("123456789012345678901234567890.01"), tick)
    assert not is_on_tick(Decimal("0.0005"), Decimal("0.001"))


@pytest.mark.parametrize("price", [LONG_PRICE, "9.905", "9.90000001"])
def test_a_price_finer_than_the_tick_is_422_not_rounded(market, price) -> None:
    response = market.post("/orders", order_body(price=price))
    assert response.status_code == 422, response.content
    assert [(d["field"], d["rule"]) for d in response.json()["detail"]] == [("price", "tick_size")]
    assert Order.objects.count() == 0


def test_modify_to_a_price_finer_than_the_tick_is_422(market) -> None:
    order = market.post("/orders", order_body(price="9.90")).json()
    response = market.patch(f"/orders/{order['id']}", {"price": LONG_PRICE})
    assert response.status_code == 422, response.content
    assert response.json()["detail"][0]["field"] == "price" and response.json()["detail"][0]["rule"] == "tick_size"
    assert Order.objects.get(pk=order["id"]).status in ("SUBMITTED", "NEW")
    assert Order.objects.count() == 1


@pytest.mark.parametrize(("side", "protection_price", "rule"), [
    ("BUY", "11.10", "price_limit"),   # above the limit up (11.06 from 10.05)
    ("BUY", "11.005", "tick_size"),
    ("BUY", LONG_PRICE, "tick_size"),
    ("BUY", "9.00", "price_limit"),    # below the limit down (9.05)
    ("SELL", "9.00", "price_limit"),
])
def test_a_market_orders_protection_price_is_checked_like_a_price(market, side, protection_price, rule) -> None:
    if side == "SELL":
        from tests import factories
        from trading.models import Account, Position

        Position.objects.create(account=Account.objects.get(name="acc1"), instrument=factories.instrument("600000.SH"),
                                quantity=1000)
    body = order_body(side=side, order_type="MARKET", price=None, protection_price=protection_price)
    response = market.post("/orders", body)
    assert response.status_code == 422, response.content
    assert [(d["field"], d["rule"]) for d in response.json()["detail"]] == [("protection_price", rule)]
    assert Order.objects.count() == 0


def test_a_market_order_with_a_protection_price_inside_the_band_is_accepted(market) -> None:
    response = market.post("/orders", order_body(order_type="MARKET", price=None, protection_price="11.06"))
    assert response.status_code == 201, response.content
    assert Order.objects.get().protection_price == Decimal("11.06")
