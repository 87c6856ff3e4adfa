"""The abnormal-trading figures (orders/activity.py) of a small fixed day, against the counts made by
hand in tests/abnormal_day.py; and what a larger day costs in queries (grouped, not per order)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from orders.activity import account_days, stakes_at_least
from tests.abnormal_day import BUSY_SECOND, DAY, abnormal_day

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_figures_of_the_day_are_the_hand_counts(script, clock) -> None:
    abnormal_day(script, clock)
    [figures] = account_days(since=DAY, until=DAY)
    assert (figures.account, figures.day, figures.registered_hf) == ("acc1", DAY, False)
    assert (figures.orders, figures.cancels, figures.order_actions) == (7, 3, 10)
    assert (figures.peak_second_count, figures.peak_second_at) == (7, BUSY_SECOND)
    assert figures.instant_cancels == 2
    assert figures.cancel_ratio == Decimal("0.428571")
    assert (figures.filled_orders, figures.fill_rate) == (1, Decimal("0.142857"))
    assert figures.closing_orders == 1
    assert (figures.self_trade, figures.restricted) == ({"REJECT": 1}, {"REJECT": 1})
    assert (figures.line_per_second, figures.line_per_day) == (300, 20_000)
    assert (figures.second_share, figures.day_share) == (Decimal("0.023333"), Decimal("0.0005"))


def test_another_day_or_account_has_none_of_it(script, clock) -> None:
    abnormal_day(script, clock)
    assert account_days(since=DAY, until=DAY, account="nobody") == []
    assert account_days(since=DAY.replace(day=24), until=DAY.replace(day=25)) == []


def test_stakes_near_the_disclosure_line_alone_and_in_a_control_group(script, clock) -> None:
    from tests import factories
    from trading.models import Account, Instrument, Position

    abnormal_day(script, clock)
    [stake] = stakes_at_least(share=Decimal("0.045"))
    assert (stake.holder, stake.is_group, stake.symbol, stake.quantity, stake.ratio) == (
        "acc1", False, "600036.SH", 460_000, Decimal("0.046"))
    assert stakes_at_least(share=Decimal("0.047")) == []
    # Two accounts of one group at 2.5% each: 5% together, neither alone.
    other = factories.account("acc2")
    Account.objects.filter(name__in=["acc1", "acc2"]).update(control_group="manager-A")
    Position.objects.filter(account__name="acc1", instrument__code="600036").update(quantity=250_000)
    Position.objects.create(account=other, instrument=Instrument.objects.get(code="600036"), quantity=250_000)
    [group] = stakes_at_least(share=Decimal("0.045"))
    assert (group.holder, group.is_group, group.quantity, group.ratio) == ("manager-A", True, 500_000, Decimal("0.05"))
    assert stakes_at_least(share=Decimal("0.045"), account="acc2") == [group]


def test_a_busy_day_costs_a_fixed_number_of_queries(script, clock) -> None:
    abnormal_day(script, clock)
    with CaptureQueriesContext(connection) as queries:
        account_days(since=DAY, until=DAY)
    assert len(queries) == 4  # totals, the busiest seconds, verdicts, account names
