"""Execution algorithms (TWAP, iceberg) through the clock, the market data path and order intake:
slicing in lots, seeded randomisation within its bounds, the participation cap, the iceberg's
refill, one child at a time, a refused child pausing the algorithm, pause/resume/cancel, and a
restart in the middle releasing nothing twice."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from conditions import services
from conditions.kinds import kind_for
from conditions.kinds.twap import slice_time
from conditions.models import ConditionalOrder, ParentEvent
from conditions.services import conditional_cancel, conditional_pause, conditional_resume, conditions_evaluate_clock
from orders.models import Order
from tests import factories
from tests.conditions.conftest import OPERATOR, create, publish
from tests.orders.test_modify import race
from trading.errors import Conflict, IllegalTransition, InvalidOrder


def algo(kind: str = "twap", **overrides: Any) -> ConditionalOrder:
    params: dict[str, Any] = ({"slices": 5, "duration_seconds": 500, "seed": 7} if kind == "twap"
                              else {"display_quantity": 300, "seed": 7})
    params.update(overrides.pop("extra", {}))
    values: dict[str, Any] = {"kind": kind, "side": "BUY", "quantity": 1000, "params": params, "limit_price": "10.20"}
    values.update(overrides)
    return create(**values)


def offer_at(price: str) -> None:
    """Publish a quote offering plenty at ``price`` (a resting buy at it fills)."""
    publish(last=price, bid=str(Decimal(price) - Decimal("0.01")), ask=price, bid_volume=100000, ask_volume=100000)


def children(parent: ConditionalOrder) -> list[Order]:
    return list(Order.objects.filter(client_order_id__startswith=f"cond-{parent.pk}-").order_by("id"))


def sizes(parent: ConditionalOrder) -> list[int]:
    return [c.quantity for c in children(parent)]


def state(parent: ConditionalOrder) -> str:
    return ConditionalOrder.objects.get(pk=parent.pk).state


def fresh(parent: ConditionalOrder) -> ConditionalOrder:
    return ConditionalOrder.objects.select_related("instrument").get(pk=parent.pk)


# TWAP -------------------------------------------------------------------------------------------


def test_twap_releases_equal_lots_on_time_and_the_last_slice_takes_the_remainder(market, clock) -> None:
    parent = algo(quantity=1000, params={"slices": 3, "duration_seconds": 300, "seed": 1})  # 333 -> 300, 300, 400
    start = clock.at
    conditions_evaluate_clock()
    assert sizes(parent) == [300]
    clock.at = start + timedelta(seconds=99)
    conditions_evaluate_clock()
    assert sizes(parent) == [300]  # slice 2 is due at 100 s
    clock.at = start + timedelta(seconds=100)
    conditions_evaluate_clock()
    clock.at = start + timedelta(seconds=200)
    conditions_evaluate_clock()
    assert sizes(parent) == [300, 300, 400]
    assert all(c.status == "FILLED" and c.price == Decimal("10.00") for c in children(parent))  # the ask, under the limit
    assert state(parent) == "COMPLETED"
    assert ParentEvent.objects.filter(parent=parent, event="RELEASED").count() == 3


def test_twap_randomisation_stays_within_its_bounds_and_the_seed_repeats_it(market, clock) -> None:
    extra = {"slices": 10, "duration_seconds": 1000, "randomise_pct": "20", "seed": 11}
    first = algo(quantity=10000, params=extra, client_order_id="a")
    second = algo(quantity=10000, params=extra, client_order_id="b")
    other = algo(quantity=10000, params={**extra, "seed": 12}, client_order_id="c")
    start = clock.at
    params = kind_for("twap").parse(first.params)
    for k in range(10):  # slice k goes in the first 20 % of its own 100 s interval
        due = slice_time(fresh(first), params, k)
        assert start + timedelta(seconds=100 * k) <= due <= start + timedelta(seconds=100 * k + 20)
        clock.at = due - timedelta(milliseconds=1)
        conditions_evaluate_clock()
        assert len(children(first)) == k
        clock.at = due
        conditions_evaluate_clock()
        assert len(children(first)) == k + 1
    clock.at = start + timedelta(seconds=1000)
    conditions_evaluate_clock()
    released = sizes(first)
    assert all(800 <= q <= 1200 and q % 100 == 0 for q in released[:-1]), released  # 1,000 +- 20 %, in lots
    assert sum(released) == 10000  # the last slice takes the remainder
    assert sizes(second) == released  # the same seed decides the same slices
    assert sizes(other) != released
    assert len(set(released[:-1])) > 1  # randomised, not equal


def test_twap_waits_for_its_working_child_then_releases_the_next_slice_when_it_ends(market, clock) -> None:
    parent = algo(quantity=600, params={"slices": 3, "duration_seconds": 300, "seed": 1}, limit_price="9.90")
    start = clock.at
    conditions_evaluate_clock()
    assert [(c.quantity, c.price, c.status) for c in children(parent)] == [(200, Decimal("9.90"), "SUBMITTED")]
    clock.at = start + timedelta(seconds=150)  # slice 2 is due, slice 1 still rests at the limit
    conditions_evaluate_clock()
    assert len(children(parent)) == 1
    offer_at("9.90")  # slice 1 fills: its end releases slice 2 at once
    assert [c.quantity for c in children(parent)] == [200, 200] and children(parent)[0].status == "FILLED"


def test_twap_participation_cap_limits_each_child_to_a_share_of_the_quoted_volume(market, clock) -> None:
    factories.quote("600000.SH", last="10.00", prev_close="10.00", bid="9.99", ask="10.00", ask_volume=300)
    parent = algo(quantity=1000, params={"slices": 1, "duration_seconds": 60, "seed": 1, "participation_pct": "25"})
    conditions_evaluate_clock()  # 25 % of 300 = 75: less than a lot, it waits
    assert children(parent) == [] and state(parent) == "ACTIVE"
    factories.quote("600000.SH", last="10.00", prev_close="10.00", bid="9.99", ask="10.00", ask_volume=1000)
    conditions_evaluate_clock()
    assert sizes(parent) == [200]  # 25 % of 1,000 = 250 -> 200 in lots
    conditions_evaluate_clock()  # the same quote again (and the first child's fill): it sized one child already
    assert sizes(parent) == [200]
    factories.quote("600000.SH", last="10.00", prev_close="10.00", bid="9.99", ask="10.00", ask_volume=1000)
    conditions_evaluate_clock()
    assert sizes(parent) == [200, 200]
    assert fresh(parent).quantity - sum(c.filled_quantity for c in children(parent)) == 600


def test_twap_refuses_bad_parameters_naming_them(market) -> None:
    with pytest.raises(InvalidOrder) as exc:
        algo(quantity=300, params={"slices": 5, "duration_seconds": 60})
    assert exc.value.problems[0].field == "params.slices"
    with pytest.raises(InvalidOrder) as exc:
        algo(params={"slices": 5, "duration_seconds": 60, "end_at": "2030-01-01T00:00:00+08:00"})
    assert exc.value.problems[0].field == "params.end_at"
    with pytest.raises(InvalidOrder) as exc:
        algo(params={"slices": 5, "duration_seconds": 60, "randomise_pct": "60"})
    assert exc.value.problems[0].field == "params.randomise_pct"
    with pytest.raises(InvalidOrder) as exc:
        algo(price_type="MARKET", limit_price=None)
    assert exc.value.problems[0].field == "price_type"
    assert not ConditionalOrder.objects.exists()


# Iceberg ----------------------------------------------------------------------------------------


def test_iceberg_shows_its_display_quantity_at_the_limit_and_refills_when_filled(market, clock) -> None:
    parent = algo("iceberg", quantity=800, limit_price="9.90")
    conditions_evaluate_clock()
    conditions_evaluate_clock()  # the shown child still works: nothing more
    assert [(c.quantity, c.price) for c in children(parent)] == [(300, Decimal("9.90"))]
    offer_at("9.90")  # fills 300: refilled at once, and the refill meets the same offer, and so on
    assert sizes(parent) == [300, 300, 200]  # the last shows the remainder
    assert sum(c.filled_quantity for c in children(parent)) == 800
    assert state(parent) == "COMPLETED"


def test_iceberg_shows_again_what_a_cancelled_child_left_unfilled(market, clock) -> None:
    from orders.services import order_cancel

    parent = algo("iceberg", quantity=600, limit_price="9.90")
    conditions_evaluate_clock()
    order_cancel(order_id=children(parent)[0].pk, actor=OPERATOR)
    conditions_evaluate_clock()
    conditions_evaluate_clock()
    assert [c.status for c in children(parent)][-1] in ("SUBMITTED", "NEW", "SUBMITTING")
    assert sizes(parent)[-1] == 300 and fresh(parent).state == "ACTIVE"


# Refusal, pause, resume, cancel -----------------------------------------------------------------


def test_a_refused_child_pauses_the_algorithm_with_the_reason_and_resume_tries_again(market, clock) -> None:
    parent = algo(quantity=200000, params={"slices": 1, "duration_seconds": 60, "seed": 1})  # 2,000,000 CNY > the cash
    conditions_evaluate_clock()
    parent = fresh(parent)
    assert parent.state == "PAUSED" and parent.state_reason
    held = ParentEvent.objects.get(parent=parent, event="HELD")
    assert held.state_after == "PAUSED" and held.reason == parent.state_reason
    conditions_evaluate_clock()
    assert ParentEvent.objects.filter(parent=parent, event="HELD").count() == 1  # paused: not asked again
    conditional_resume(parent_id=parent.pk, actor=OPERATOR)
    conditions_evaluate_clock()
    assert ParentEvent.objects.filter(parent=parent, event="HELD").count() == 2
    conditional_cancel(parent_id=parent.pk, actor=OPERATOR)
    assert state(parent) == "CANCELLED"


def test_pause_holds_the_slices_and_resume_goes_on(market, clock) -> None:
    parent = algo(quantity=1000, params={"slices": 2, "duration_seconds": 100, "seed": 1})
    start = clock.at
    conditions_evaluate_clock()
    conditional_pause(parent_id=parent.pk, actor=OPERATOR)
    clock.at = start + timedelta(seconds=200)  # slice 2 and the window's end pass while paused
    conditions_evaluate_clock()
    assert sizes(parent) == [500] and state(parent) == "PAUSED"
    with pytest.raises(IllegalTransition):
        conditional_pause(parent_id=parent.pk, actor=OPERATOR)
    conditional_resume(parent_id=parent.pk, actor=OPERATOR)
    conditions_evaluate_clock()
    assert sizes(parent) == [500, 500]
    conditions_evaluate_clock()
    assert state(parent) == "COMPLETED"
    with pytest.raises(IllegalTransition):
        conditional_resume(parent_id=parent.pk, actor=OPERATOR)


def test_a_one_shot_kind_cannot_be_paused(market) -> None:
    parent = create()
    with pytest.raises(Conflict):
        conditional_pause(parent_id=parent.pk, actor=OPERATOR)
    assert state(parent) == "ACTIVE"


@pytest.mark.parametrize("action", ["pause", "cancel"])
@pytest.mark.parametrize("round_", range(3))
def test_pause_or_cancel_racing_a_slice_release_either_comes_first_never_both_never_twice(require_postgres, market, clock,
                                                                                          action, round_) -> None:
    parent = algo(quantity=1000, params={"slices": 2, "duration_seconds": 100, "seed": 1})
    stop = conditional_pause if action == "pause" else conditional_cancel
    released, stopped = race([lambda: conditions_evaluate_clock(), lambda: stop(parent_id=parent.pk, actor=OPERATOR)])
    assert not isinstance(stopped, Exception), stopped
    parent = fresh(parent)
    assert parent.state == ("PAUSED" if action == "pause" else "CANCELLED")
    history = list(ParentEvent.objects.filter(parent=parent).values_list("event", flat=True))
    assert len(children(parent)) == history.count("RELEASED") <= 1
    if children(parent):  # released first: the slice, then the stop
        assert history.index("RELEASED") < history.index(action.upper() + ("D" if action == "pause" else "LED"))
    conditions_evaluate_clock()
    assert len(children(parent)) <= 1  # nothing released after the stop


def test_a_restart_in_the_middle_releases_nothing_twice(market, clock, monkeypatch) -> None:
    parent = algo(quantity=1000, params={"slices": 2, "duration_seconds": 100, "seed": 1}, limit_price="9.90")
    start = clock.at
    conditions_evaluate_clock()
    assert len(children(parent)) == 1
    real_submit = services.order_submit

    def dies_after_the_child(*args, **kwargs):
        real_submit(*args, **kwargs)
        raise SystemError("process killed")

    offer_at("9.90")  # slice 1 fills
    clock.at = start + timedelta(seconds=50)
    monkeypatch.setattr(services, "order_submit", dies_after_the_child)
    conditions_evaluate_clock()  # slice 2's transaction dies: rolled back with its child
    monkeypatch.setattr(services, "order_submit", real_submit)
    assert len(children(parent)) == 1 and fresh(parent).memory["slices"] == 1
    services._bands_forget()  # the restarted process's caches are empty
    for _ in range(3):
        services.conditions_sweep()
        conditions_evaluate_clock()
    assert sizes(parent) == [500, 500]
    assert len({c.client_order_id for c in children(parent)}) == 2
    assert ParentEvent.objects.filter(parent=parent, event="RELEASED").count() == 2


def test_a_paused_algorithm_expires_at_its_expiry(market, clock) -> None:
    parent = algo(quantity=1000, params={"slices": 2, "duration_seconds": 600, "seed": 1},
                  expires_at=clock.at + timedelta(seconds=60))
    conditional_pause(parent_id=parent.pk, actor=OPERATOR)
    clock.advance(61)
    conditions_evaluate_clock()
    parent = fresh(parent)
    assert parent.state == "EXPIRED" and children(parent) == []
    assert list(ParentEvent.objects.filter(parent=parent).values_list("event", flat=True)) == ["CREATED", "PAUSED", "EXPIRED"]
