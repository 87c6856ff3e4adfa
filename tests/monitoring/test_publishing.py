"""The order path announces its changes after commit, from the rows in hand: what a listener hears
for one order's life, and that listening costs the order path no query."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from trading.events import DomainEvent, domain_event

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def heard() -> Iterator[list[DomainEvent]]:
    events: list[DomainEvent] = []

    def listen(sender: object, *, event: DomainEvent, **kwargs: object) -> None:
        events.append(event)

    domain_event.connect(listen, dispatch_uid="test-publishing")
    yield events
    domain_event.disconnect(dispatch_uid="test-publishing")


def test_one_orders_life_is_heard_in_order(heard):
    from tests.admin import desk

    desk.market()
    heard.clear()
    order = desk.submit(price="10.01", quantity=100)  # in-process tasks: placed and filled at once
    kinds = [(e.kind, e.data.get("status") or e.data.get("symbol")) for e in heard]
    assert kinds == [("order", "SUBMITTING"), ("balance", None),  # intake's one write, then the broker's answer
                     ("order", "SUBMITTED"), ("fill", "600000.SH"), ("order", "FILLED"), ("balance", None),
                     ("position", "600000.SH")]
    balances = [e.data for e in heard if e.kind == "balance"]
    assert balances[0]["frozen"] == "1006.01" and balances[-1]["frozen"] == "0.00"  # the last heard is the latest
    filled = next(e for e in heard if e.kind == "order" and e.data["status"] == "FILLED")
    assert filled.account == "acc1" and filled.data["id"] == order.pk and filled.data["symbol"] == "600000.SH"
    held = desk.held()
    [risk] = [e for e in heard if e.kind == "risk"]
    assert risk.data["rule"] == "max_order_amount" and risk.data["action"] == "REVIEW" and risk.data["order"] == held.pk


def test_listening_costs_the_order_path_no_query(heard):
    from monitoring import live
    from tests.admin import desk

    desk.market()
    desk.submit(price="9.90", quantity=100)  # warm the process's caches
    domain_event.disconnect(dispatch_uid="monitoring.live")
    domain_event.disconnect(dispatch_uid="test-publishing")
    try:
        with CaptureQueriesContext(connection) as unheard:
            desk.submit(price="9.90", quantity=100)
    finally:
        live.connect()
        domain_event.connect(lambda sender, **kwargs: heard.append(kwargs["event"]), dispatch_uid="test-publishing",
                             weak=False)
    heard.clear()
    with CaptureQueriesContext(connection) as listened:
        desk.submit(price="9.90", quantity=100)
    assert [e.kind for e in heard] == ["order", "balance", "order"]  # claimed (SUBMITTING), frozen, accepted
    assert len(listened.captured_queries) == len(unheard.captured_queries)

