"""The price trigger at its boundaries, released through the market data path and order intake."""

from __future__ import annotations

from decimal import Decimal

import pytest

from audit.models import AuditEvent
from conditions.models import ConditionalOrder, ParentEvent
from orders.models import Order
from tests.conditions.conftest import create, publish


def _parent(parent: ConditionalOrder) -> ConditionalOrder:
    return ConditionalOrder.objects.get(pk=parent.pk)


def test_one_tick_before_the_level_nothing_is_released(market) -> None:
    parent = create()
    publish(last="10.49")
    assert _parent(parent).state == "ACTIVE"
    assert not Order.objects.exists()


def test_at_the_level_the_child_is_released_once_through_intake(market) -> None:
    parent = create()
    publish(last="10.50")
    publish(last="10.51")
    parent = _parent(parent)
    assert parent.state in ("TRIGGERED", "COMPLETED")
    (child,) = Order.objects.all()
    assert (child.side, child.quantity, child.price, child.source) == ("BUY", 1000, Decimal("10.60"), "system")
    assert child.client_order_id.startswith(f"cond-{parent.pk}-")
    assert ParentEvent.objects.filter(parent=parent, event="FIRED", child=child).count() == 1
    assert AuditEvent.objects.filter(object_type="conditional_order", object_id=str(parent.pk),
                                     action="conditional.state_changed").exists()


@pytest.fixture
def held(market):
    from audit.services import Actor
    from brokers.services import opening_positions_load

    opening_positions_load(account_name="acc1", rows=[{"symbol": "600000.SH", "quantity": "1000", "avg_cost": "9.00", "acquired": "2026-11-20"}],
                           actor=Actor.command("test"))
    return market


def test_a_gap_down_through_a_stop_sells_at_the_trigger_minus_ticks(held) -> None:
    parent = create(params={"direction": "AT_OR_BELOW", "level": "9.50"}, side="SELL", quantity=1000,
                    price_type="TRIGGER_OFFSET", limit_price=None, offset_ticks=2)
    publish(last="9.20", bid="9.20", ask="9.21")  # gapped from 10.00 through 9.50
    (child,) = Order.objects.all()
    assert (child.side, child.price) == ("SELL", Decimal("9.18"))
    assert _parent(parent).state in ("TRIGGERED", "COMPLETED")
