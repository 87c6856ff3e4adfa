"""Domain events reach listeners after commit only, and a failing listener never hurts the change."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.db import transaction

from trading.events import DomainEvent, EventKind, domain_event, publish

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def heard() -> Iterator[list[DomainEvent]]:
    events: list[DomainEvent] = []

    def listen(sender: object, *, event: DomainEvent, **kwargs: object) -> None:
        events.append(event)

    domain_event.connect(listen, dispatch_uid="test-events")
    yield events
    domain_event.disconnect(dispatch_uid="test-events")


def test_an_event_is_heard_after_commit_not_before(heard: list[DomainEvent]) -> None:
    with transaction.atomic():
        publish(EventKind.ORDER, "acc1", {"id": 1, "status": "NEW"})
        assert heard == []
    [event] = heard
    assert (event.kind, event.account, event.data) == ("order", "acc1", {"id": 1, "status": "NEW"})


def test_an_event_of_a_rolled_back_change_is_never_heard(heard: list[DomainEvent]) -> None:
    with pytest.raises(RuntimeError), transaction.atomic():
        publish(EventKind.FILL, "acc1", {"quantity": 100})
        raise RuntimeError("the change fails")
    assert heard == []


def test_a_failing_listener_neither_fails_the_change_nor_silences_the_others(heard: list[DomainEvent]) -> None:
    def broken(sender: object, **kwargs: object) -> None:
        raise ValueError("listener bug")

    domain_event.connect(broken, dispatch_uid="test-broken")
    try:
        with transaction.atomic():
            publish(EventKind.BALANCE, "acc1", {"cash": "1.00"})
    finally:
        domain_event.disconnect(dispatch_uid="test-broken")
    assert [e.kind for e in heard] == ["balance"]


def test_the_broker_link_is_published(heard: list[DomainEvent], script) -> None:
    from brokers.registry import broker_for
    from trading.errors import BrokerUnavailable
    from trading.models import Account

    script.connected = False
    with pytest.raises(BrokerUnavailable):
        broker_for(Account.objects.get(name="acc1")).query_orders()
    [event] = [e for e in heard if e.kind == EventKind.BROKER_LINK]
    assert event.account == "acc1" and event.data["state"] == "DOWN"
