"""Persistence: a process that dies between a quote's commit and its evaluation, or in the middle of
firing, loses nothing; the sweep (or the next quote) fires each parent exactly once."""

from __future__ import annotations

import pytest

from brokers.signals import quotes_published
from conditions import services
from conditions.models import ConditionalOrder, ParentEvent
from orders.models import Order
from tests.conditions.conftest import create, publish


def test_a_quote_stored_while_no_evaluator_ran_is_caught_by_the_sweep(market) -> None:
    parent = create()
    receivers = quotes_published.receivers[:]
    quotes_published.receivers.clear()  # the evaluating process is down when the quote lands
    quotes_published.sender_receivers_cache.clear()
    try:
        publish(last="10.55")
    finally:
        quotes_published.receivers[:] = receivers
        quotes_published.sender_receivers_cache.clear()
    assert ConditionalOrder.objects.get(pk=parent.pk).state == "ACTIVE" and not Order.objects.exists()
    services.conditions_sweep()  # the restarted scheduler's first pass
    services.conditions_sweep()
    assert Order.objects.count() == 1
    assert ConditionalOrder.objects.get(pk=parent.pk).state in ("TRIGGERED", "COMPLETED")


def test_a_crash_in_the_middle_of_firing_leaves_no_half_and_fires_once_after(market, monkeypatch) -> None:
    parent = create()
    real_submit = services.order_submit
    calls = []

    def dies_after_the_child(*args, **kwargs):
        real_submit(*args, **kwargs)  # the child is written in the firing transaction...
        calls.append(1)
        raise SystemError("process killed")  # ...which then never commits

    monkeypatch.setattr(services, "order_submit", dies_after_the_child)
    publish(last="10.55")
    assert calls == [1]
    assert not Order.objects.exists()  # rolled back with the transition
    assert ConditionalOrder.objects.get(pk=parent.pk).state == "ACTIVE"
    assert not ParentEvent.objects.filter(parent=parent, event="FIRED").exists()
    monkeypatch.setattr(services, "order_submit", real_submit)
    services.conditions_sweep()
    publish(last="10.56")
    assert Order.objects.count() == 1
    assert ParentEvent.objects.filter(parent=parent, event="FIRED").count() == 1


def test_a_parent_another_process_created_is_found_once_its_thresholds_are_read_again(market, settings) -> None:
    settings.CONDITIONS_BAND_TTL_SECONDS = 3600
    publish(last="10.00")  # this process caches 600000.SH's (empty) thresholds
    parent = create()
    services._BANDS[parent.instrument_id] = (float("inf"), None, None)  # as if created elsewhere: not forgotten here
    publish(last="10.55")
    assert not Order.objects.exists()
    services.conditions_sweep()
    assert Order.objects.count() == 1


@pytest.mark.parametrize("last", ["10.49", "10.00"])
def test_the_sweep_fires_nothing_that_has_not_been_reached(market, last) -> None:
    create()
    publish(last=last)
    services.conditions_sweep()
    assert not Order.objects.exists()
