"""Each kind at its boundaries, through the market data path, the clock and order intake."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from audit.services import Actor
from conditions.models import ConditionalOrder, ParentEvent
from conditions.services import conditions_evaluate_clock, conditions_sweep
from orders.models import Order
from tests import factories
from tests.conditions.conftest import create, publish
from trading.calendar import SHANGHAI
from trading.models import Account, SessionMode


def state(parent: ConditionalOrder) -> str:
    return ConditionalOrder.objects.get(pk=parent.pk).state


def children(parent: ConditionalOrder) -> list[Order]:
    return list(Order.objects.filter(client_order_id__startswith=f"cond-{parent.pk}-").order_by("id"))


@pytest.fixture
def held(market):
    """acc1 also holds 1,000 shares of 600000.SH bought before today (sellable)."""
    from brokers.services import opening_positions_load

    opening_positions_load(account_name="acc1", rows=[{"symbol": "600000.SH", "quantity": "1000", "avg_cost": "9.00",
                                                       "acquired": "2026-11-20"}], actor=Actor.command("test"))
    return market


def real_sessions() -> None:
    Account.objects.filter(name="acc1").update(session_mode=SessionMode.REAL)


# price ------------------------------------------------------------------------------------------


def test_change_from_previous_close_fires_at_the_percentage_not_a_tick_before(market) -> None:
    parent = create(params={"direction": "AT_OR_ABOVE", "change_pct": "5"})  # 10.00 * 1.05 = 10.50
    publish(last="10.49")
    assert children(parent) == []
    publish(last="10.50")
    assert len(children(parent)) == 1


def test_outside_the_session_nothing_fires_and_the_next_quote_in_session_does(market, clock) -> None:
    real_sessions()
    parent = create()
    clock.at = datetime(2026, 11, 23, 12, 0, tzinfo=SHANGHAI)  # lunch break: no new orders
    publish(last="10.55")
    assert children(parent) == [] and state(parent) == "ACTIVE"
    clock.at = datetime(2026, 11, 23, 13, 0, 1, tzinfo=SHANGHAI)
    publish(last="10.55")
    assert len(children(parent)) == 1


def test_a_refused_child_fails_the_parent_with_the_reason_and_an_alert(market) -> None:
    from monitoring.models import Alert

    parent = create(quantity=1_000_000)  # 10.6 million CNY against 1 million
    publish(last="10.50")
    parent = ConditionalOrder.objects.get(pk=parent.pk)
    assert parent.state == "FAILED" and "available_cash" in parent.state_reason
    assert ParentEvent.objects.filter(parent=parent, event="REFUSED").count() == 1
    assert Alert.objects.filter(code="conditional.refused", account="acc1").exists()
    publish(last="10.60")
    assert ParentEvent.objects.filter(parent=parent, event="REFUSED").count() == 1  # fails once, stays failed


def test_a_child_rejected_by_risk_control_is_kept_and_the_parent_fails_with_the_verdict(market) -> None:
    from risk.controller import config_cache_clear
    from risk.services import risk_rule_set

    risk_rule_set(code="max_order_amount", params={"max_amount": "5000"})
    config_cache_clear()
    try:
        parent = create()  # 1,000 x 10.60 = 10,600 CNY
        publish(last="10.50")
    finally:
        config_cache_clear()
    parent = ConditionalOrder.objects.get(pk=parent.pk)
    (child,) = children(parent)
    assert child.status == "REJECTED" and child.risk_verdicts
    assert parent.state == "FAILED" and "exceeds max" in parent.state_reason
    assert ParentEvent.objects.get(parent=parent, event="REFUSED").child == child


def test_price_limit_locked_a_stop_sells_at_limit_down(held) -> None:
    parent = create(kind="bracket", side="SELL", quantity=1000, params={"stop_loss": "9.50"}, price_type="BEST_OPPOSITE",
                    limit_price=None)
    publish(last="9.00", bid="", ask="9.00", bid_volume=0)  # sealed at limit down: no bid
    (child,) = children(parent)
    assert (child.side, child.price, child.quantity) == ("SELL", Decimal("9.00"), 1000)


def test_the_released_price_is_clipped_to_the_band_and_rounded_to_the_tick(market) -> None:
    parent = create(params={"direction": "AT_OR_ABOVE", "level": "10.90"}, price_type="TRIGGER_OFFSET", limit_price=None,
                    offset_ticks=20)
    publish(last="10.95")
    (child,) = children(parent)
    assert child.price == Decimal("11.00")  # 10.95 + 0.20 clipped to limit up


# trailing ---------------------------------------------------------------------------------------


def test_trailing_sell_activates_tracks_the_high_and_fires_on_the_fall(held) -> None:
    parent = create(kind="trailing", side="SELL", quantity=1000, price_type="BEST_OPPOSITE", limit_price=None,
                    params={"activation_price": "10.50", "trail_amount": "0.20"})
    publish(last="10.49")
    assert ConditionalOrder.objects.get(pk=parent.pk).memory == {"active": False, "extreme": None}
    publish(last="10.50")
    publish(last="10.80")
    publish(last="10.70")
    assert ConditionalOrder.objects.get(pk=parent.pk).memory == {"active": True, "extreme": "10.80"}
    publish(last="10.61")  # one tick before the stop at 10.60
    assert children(parent) == []
    publish(last="10.60", bid="10.59", ask="10.60")
    (child,) = children(parent)
    assert (child.side, child.price) == ("SELL", Decimal("10.59"))
    assert [e.event for e in ParentEvent.objects.filter(parent=parent)] == ["CREATED", "TRACKED", "TRACKED", "FIRED"]


def test_trailing_buy_by_percentage_fires_on_the_rebound(market) -> None:
    parent = create(kind="trailing", side="BUY", quantity=100, price_type="LIMIT", limit_price="10.00",
                    params={"trail_pct": "5"})  # active at once from 10.00
    publish(last="9.50")
    publish(last="9.20")
    publish(last="9.65")  # 9.20 * 1.05 = 9.66
    assert children(parent) == []
    publish(last="9.66")
    assert len(children(parent)) == 1


# bracket (OCO) ----------------------------------------------------------------------------------


def test_bracket_take_profit_fires_and_the_stop_loss_is_gone_with_it(held) -> None:
    parent = create(kind="bracket", side="SELL", quantity=1000, params={"stop_loss": "9.50", "take_profit": "10.80"},
                    limit_price=None)
    publish(last="10.80", bid="10.80", ask="10.81")
    publish(last="9.40")
    (child,) = children(parent)
    assert (child.side, child.price, child.quantity) == ("SELL", Decimal("10.80"), 1000)
    assert state(parent) in ("TRIGGERED", "COMPLETED")


def test_bracket_on_an_entry_is_sized_by_whole_lots_filled_and_waits_for_t_plus_1(market, clock) -> None:
    from orders.services import OrderInput, order_submit

    factories.quote("600000.SH", last="10.00", prev_close="10.00", bid="9.99", ask="10.00", ask_volume=250)
    entry = order_submit(OrderInput(account="acc1", symbol="600000.SH", side="BUY", order_type="LIMIT", price="10.00",
                                    quantity=1000, client_order_id="entry-1"), actor=Actor.api_key("key1")).order
    entry.refresh_from_db()
    assert entry.filled_quantity == 250
    parent = create(kind="bracket", side="SELL", quantity=None, entry_order_id=entry.pk, params={"stop_loss": "9.50"},
                    price_type="BEST_OPPOSITE", limit_price=None)
    parent = ConditionalOrder.objects.get(pk=parent.pk)
    assert parent.quantity == 200  # 250 filled: two whole lots
    assert ParentEvent.objects.filter(parent=parent, event="ARMED").count() == 1
    publish(last="9.40", bid="9.40", ask="9.41")
    assert children(parent) == [] and state(parent) == "ACTIVE"  # bought today: nothing sellable until tomorrow
    clock.at = datetime(2026, 11, 24, 10, 0, tzinfo=SHANGHAI)
    publish(last="9.40", bid="9.40", ask="9.41", prev_close="10.00")
    (child,) = children(parent)
    assert (child.side, child.quantity) == ("SELL", 200)


def test_an_entry_that_ends_with_less_than_a_lot_cancels_its_bracket(market) -> None:
    from orders.services import OrderInput, order_cancel, order_submit

    factories.quote("600000.SH", last="10.00", prev_close="10.00", bid="9.99", ask="10.00", ask_volume=50)
    entry = order_submit(OrderInput(account="acc1", symbol="600000.SH", side="BUY", order_type="LIMIT", price="10.00",
                                    quantity=1000, client_order_id="entry-1"), actor=Actor.api_key("key1")).order
    parent = create(kind="bracket", side="SELL", quantity=None, entry_order_id=entry.pk, params={"stop_loss": "9.50"},
                    price_type="BEST_OPPOSITE", limit_price=None)
    assert ConditionalOrder.objects.get(pk=parent.pk).quantity == 0
    order_cancel(order_id=entry.pk, actor=Actor.api_key("key1"))
    conditions_sweep()
    parent = ConditionalOrder.objects.get(pk=parent.pk)
    assert parent.state == "CANCELLED" and "less than a lot" in parent.state_reason


# time -------------------------------------------------------------------------------------------


def test_time_trigger_fires_at_the_opening_call_not_a_second_before(market, clock) -> None:
    real_sessions()
    clock.at = datetime(2026, 11, 23, 9, 0, tzinfo=SHANGHAI)
    parent = create(kind="time", params={"at": "09:15:00"}, limit_price="10.00")
    clock.at = datetime(2026, 11, 23, 9, 14, 59, tzinfo=SHANGHAI)
    assert conditions_evaluate_clock() == []
    clock.at = datetime(2026, 11, 23, 9, 15, tzinfo=SHANGHAI)
    conditions_evaluate_clock()
    conditions_evaluate_clock()
    (child,) = children(parent)
    assert child.price == Decimal("10.00")


def test_a_time_trigger_whose_day_passed_while_down_expires_instead_of_firing_late(market, clock) -> None:
    real_sessions()
    clock.at = datetime(2026, 11, 23, 9, 0, tzinfo=SHANGHAI)
    parent = create(kind="time", params={"at": "14:57:00"}, limit_price="10.00")
    clock.at = datetime(2026, 11, 24, 10, 0, tzinfo=SHANGHAI)  # the process was down all afternoon
    conditions_sweep()
    assert state(parent) == "EXPIRED" and children(parent) == []


def test_expiry_ends_an_untriggered_parent(market, clock) -> None:
    parent = create(expires_at=clock.at + timedelta(minutes=5))
    clock.advance(301)
    conditions_evaluate_clock()
    assert state(parent) == "EXPIRED"
    publish(last="10.60")
    assert children(parent) == []


# grid -------------------------------------------------------------------------------------------


def grid(**params: Any) -> ConditionalOrder:
    values = {"lower": "9.50", "upper": "10.50", "step": "0.10", "lot_quantity": 100, "max_position": 1200}
    values.update(params)
    return create(kind="grid", side="", quantity=None, params=values, limit_price=None)


def test_grid_buys_each_step_down_sells_each_step_up_within_the_cap(held) -> None:
    parent = grid()
    publish(last="9.91")
    assert children(parent) == []
    publish(last="9.90", bid="9.89", ask="9.90")
    publish(last="9.70", bid="9.69", ask="9.70")  # two steps at once: 200 more, capped at 1,200 held
    buys = [(c.side, c.price, c.quantity) for c in children(parent)]
    assert buys == [("BUY", Decimal("9.90"), 100), ("BUY", Decimal("9.70"), 100)]
    publish(last="9.80", bid="9.80", ask="9.81")
    sells = [(c.side, c.price, c.quantity) for c in children(parent)][2:]
    assert sells == [("SELL", Decimal("9.80"), 100)]
    assert state(parent) == "ACTIVE"


def test_grid_at_its_position_cap_follows_the_price_without_buying(held) -> None:
    parent = grid(max_position=1100)  # 1,000 held: room for one step
    publish(last="9.90", bid="9.89", ask="9.90")
    publish(last="9.80", bid="9.79", ask="9.80")
    publish(last="9.70", bid="9.69", ask="9.70")
    assert [(c.side, c.quantity) for c in children(parent)] == [("BUY", 100)]
    assert ConditionalOrder.objects.get(pk=parent.pk).memory["reference"] == "9.70"
