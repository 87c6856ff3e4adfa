"""Exactly once under concurrency (PostgreSQL): several evaluators on one quote, a cancel racing a trigger."""

from __future__ import annotations

from typing import Any

import pytest

from conditions.models import ConditionalOrder, ParentEvent
from conditions.services import conditional_cancel, conditions_evaluate_quotes, quote_view
from orders.models import Order
from tests import factories
from tests.conditions.conftest import OPERATOR, create
from tests.orders.test_modify import race
from trading.errors import IllegalTransition
from trading.models import Quote


def _reach_level() -> Any:
    factories.quote("600000.SH", last="10.50", prev_close="10.00", bid="10.49", ask="10.50")
    return quote_view(Quote.objects.get(instrument__code="600000"))


def test_eight_evaluators_on_one_quote_release_one_child(require_postgres, market) -> None:
    parents = [create(client_order_id=f"c-{i}", quantity=100) for i in range(5)]
    quote = _reach_level()
    results = race([lambda: conditions_evaluate_quotes([quote])] * 8)
    assert not [r for r in results if isinstance(r, Exception)], results
    assert Order.objects.count() == 5  # one child per parent, never two
    for parent in parents:
        assert ParentEvent.objects.filter(parent=parent, event="FIRED").count() == 1
        assert Order.objects.filter(client_order_id__startswith=f"cond-{parent.pk}-").count() == 1
        assert ConditionalOrder.objects.get(pk=parent.pk).state in ("TRIGGERED", "COMPLETED")
    fired = sum(len(r) for r in results)
    assert fired == 5


@pytest.mark.parametrize("round_", range(3))
def test_a_cancel_racing_the_trigger_either_cancels_or_fires_never_both(require_postgres, market, round_) -> None:
    parent = create()
    quote = _reach_level()
    results = race([lambda: conditions_evaluate_quotes([quote]),
                            lambda: conditional_cancel(parent_id=parent.pk, actor=OPERATOR)])
    evaluated, cancelled = results
    parent = ConditionalOrder.objects.get(pk=parent.pk)
    children = Order.objects.filter(client_order_id__startswith=f"cond-{parent.pk}-").count()
    if parent.state == "CANCELLED":
        assert children == 0 and evaluated == []
    else:
        assert parent.state in ("TRIGGERED", "COMPLETED") and children == 1
        assert isinstance(cancelled, IllegalTransition)


def test_a_grid_step_is_traded_once_by_six_evaluators(require_postgres, market) -> None:
    parent = create(kind="grid", side="", quantity=None, limit_price=None,
                    params={"lower": "9.00", "upper": "11.00", "step": "0.10", "lot_quantity": 100, "max_position": 5000})
    factories.quote("600000.SH", last="9.90", prev_close="10.00", bid="9.89", ask="9.90")
    quote = quote_view(Quote.objects.get(instrument__code="600000"))
    results = race([lambda: conditions_evaluate_quotes([quote])] * 6)
    assert not [r for r in results if isinstance(r, Exception)], results
    children = Order.objects.filter(client_order_id__startswith=f"cond-{parent.pk}-")
    assert [(c.side, c.quantity) for c in children] == [("BUY", 100)]
    assert ConditionalOrder.objects.get(pk=parent.pk).memory["reference"] == "9.90"
