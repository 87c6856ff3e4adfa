"""A small market for admin tests: account acc1, 600000.SH quoted 10.00/10.01, and held orders.

An order over 5,000 CNY is held for review by a max_order_amount rule with
action REVIEW; ``rule_becomes_reject`` turns the same rule into a REJECT, so an
approval's re-check refuses the order and only an override sends it.
"""

from __future__ import annotations

from itertools import count

from audit.services import Actor
from orders.models import Order, OrderStatus
from orders.services import OrderInput, order_submit
from tests import factories

_ids = count(1)


def market() -> None:
    factories.account("acc1")
    factories.instrument("600000.SH")
    factories.quote("600000.SH", prev_close="10.05", bid="10.00", ask="10.01", bid_volume=50000, ask_volume=50000)
    from risk.services import risk_rule_set

    risk_rule_set(code="max_order_amount", params={"max_amount": "5000"}, action="REVIEW")


def rule_becomes_reject() -> None:
    from risk.services import risk_rule_set

    risk_rule_set(code="max_order_amount", params={"max_amount": "5000"}, action="REJECT")


def submit(*, price: str = "10.05", quantity: int = 1000, side: str = "BUY", strategy: str = "s1",
           account: str = "acc1", symbol: str = "600000.SH") -> Order:
    result = order_submit(OrderInput(account=account, symbol=symbol, side=side, order_type="LIMIT", price=price,
                                     quantity=quantity, client_order_id=f"t-{next(_ids)}", strategy=strategy),
                          actor=Actor.api_key("key1"))
    return result.order


def held(**kwargs) -> Order:
    order = submit(**kwargs)
    assert order.status == OrderStatus.PENDING_APPROVAL, (order.status, order.status_reason)
    return order


def resting() -> Order:
    """A small buy below the ask: passes risk control and rests at the broker (SUBMITTED)."""
    order = submit(price="9.90", quantity=100)
    order.refresh_from_db()
    return order
