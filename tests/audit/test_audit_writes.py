"""Audit writes: every order change leaves who, what, which object and the state before and after,
in the same transaction as the change; the log is meant to be tamper-evident (DESIGN.md)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import DatabaseError, transaction

from audit.models import ActorType, AuditEvent
from audit.services import Actor, audit_event, audit_record
from brokers.adapters.scripted import BrokerScript
from orders.models import Order, OrderStatus
from orders.services import OrderInput, account_poll, order_cancel, order_submit
from orders.state_machine import OrderEvent, order_apply_event
from risk.services import risk_rule_set
from tests import factories
from trading.errors import Conflict, InvalidOrder

ACTOR = Actor.api_key("strategy-key")


def order_events(order: Order) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(object_type="order", object_id=str(order.pk)).order_by("id"))


def submit(**overrides: object) -> Order:
    return order_submit(OrderInput(**factories.order_body(**overrides)), actor=ACTOR).order


# --------------------------------------------------------------------------- the service itself


@pytest.mark.django_db
def test_audit_record_stores_actor_action_object_states_and_reason() -> None:
    event = audit_record(actor=Actor.user("op1"), action="order.status_changed", object_type="order", object_id=42,
                         account="acc1", before={"status": "NEW"}, after={"status": "CANCELLED"}, reason="client asked")
    row = AuditEvent.objects.get(pk=event.pk)
    assert (row.actor_type, row.actor, row.action) == (ActorType.USER, "op1", "order.status_changed")
    assert (row.object_type, row.object_id, row.account) == ("order", "42", "acc1")
    assert (row.before, row.after, row.reason) == ({"status": "NEW"}, {"status": "CANCELLED"}, "client asked")
    assert row.occurred_at is not None and row.occurred_at.tzinfo is not None


@pytest.mark.django_db
def test_audit_event_builds_a_row_without_inserting_it() -> None:
    event = audit_event(actor=Actor.broker("paper"), action="order.filled", object_type="order", object_id=7)
    assert event.pk is None and AuditEvent.objects.count() == 0
    assert (event.actor_type, event.actor, event.object_id) == (ActorType.BROKER, "paper", "7")


def test_a_command_actor_names_the_command_and_the_os_user(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("getpass.getuser", lambda: "ops")
    assert Actor.command("trading_state") == Actor(ActorType.SYSTEM, "manage.py trading_state (ops)")


# --------------------------------------------------------------------------- orders


@pytest.mark.django_db(transaction=True)
def test_an_order_s_creation_and_each_status_change_are_audited_in_sequence(script: BrokerScript) -> None:
    order = submit()
    order.refresh_from_db()
    script.fill(order.broker_order_id, 400, Decimal("10.00"))
    account_poll(account_id=order.account_id)
    script.fill(order.broker_order_id, 600, Decimal("10.00"))
    account_poll(account_id=order.account_id)
    order.refresh_from_db()
    assert order.status == OrderStatus.FILLED

    events = order_events(order)
    created = events[0]
    assert (created.action, created.actor_type, created.actor) == ("order.created", ActorType.API_KEY, "strategy-key")
    assert created.account == "acc1" and created.before is None
    assert created.after == {"client_order_id": "s1-0001", "symbol": "600000.SH", "side": "BUY", "order_type": "LIMIT",
                             "price": "10.00", "quantity": 1000, "strategy": "s1", "replaces": None}

    changes = [e for e in events if e.action == "order.status_changed"]
    assert [(e.before["status"], e.after["event"], e.after["status"]) for e in changes] == [
        ("NEW", "SUBMIT_STARTED", "SUBMITTING"),
        ("SUBMITTING", "BROKER_ACCEPTED", "SUBMITTED"),
        ("SUBMITTED", "PARTIALLY_FILLED", "PARTIALLY_FILLED"),
        ("PARTIALLY_FILLED", "FILLED", "FILLED"),
    ]
    assert [(e.actor_type, e.actor) for e in changes] == [
        (ActorType.SYSTEM, "worker"), (ActorType.BROKER, "scripted"), (ActorType.BROKER, "scripted"),
        (ActorType.BROKER, "scripted")]
    assert [e.after["filled_quantity"] for e in changes[2:]] == [400, 1000]
    fills = [e for e in events if e.action == "order.filled"]
    assert [(f.after["quantity"], f.after["price"], f.after["broker_trade_id"]) for f in fills] == [
        (400, "10.00", script.trades[0].broker_trade_id), (600, "10.00", script.trades[1].broker_trade_id)]
    assert all(e.account == "acc1" for e in events)


@pytest.mark.django_db(transaction=True)
def test_an_order_refused_by_risk_control_at_intake_is_audited_as_created_then_rejected(script: BrokerScript) -> None:
    risk_rule_set(code="max_order_amount", params={"max_amount": "5000"}, action="REJECT")
    order = submit()
    assert order.status == OrderStatus.REJECTED
    created, rejected = order_events(order)
    assert created.action == "order.created"
    assert (rejected.before, rejected.after["event"], rejected.after["status"]) == (
        {"status": "NEW"}, "RISK_REJECTED", "REJECTED")
    assert rejected.reason == order.status_reason != ""
    assert script.placed == []


@pytest.mark.django_db(transaction=True)
def test_an_operator_cancel_is_audited_with_the_operator_and_the_reason(script: BrokerScript) -> None:
    order = submit()
    cancelled = order_cancel(order_id=order.pk, actor=Actor.user("op1"), reason="strategy stopped")
    assert cancelled.status == OrderStatus.CANCELLED
    requested = AuditEvent.objects.get(object_id=str(order.pk), after__event="CANCEL_REQUESTED")
    assert (requested.actor_type, requested.actor, requested.reason) == (ActorType.USER, "op1", "strategy stopped")
    assert requested.before == {"status": "SUBMITTED"}


@pytest.mark.django_db(transaction=True)
def test_changes_that_fail_leave_no_audit_event(script: BrokerScript) -> None:
    before = AuditEvent.objects.count()
    with pytest.raises(InvalidOrder):
        submit(quantity=150)  # not a whole lot
    assert AuditEvent.objects.count() == before

    order = submit(client_order_id="c-2")
    order_cancel(order_id=order.pk, actor=ACTOR)
    written = AuditEvent.objects.count()
    with pytest.raises(Conflict):
        order_cancel(order_id=order.pk, actor=ACTOR)  # already CANCELLED
    assert AuditEvent.objects.count() == written


@pytest.mark.django_db(transaction=True)
def test_an_audit_event_rolls_back_with_the_change_it_records(script: BrokerScript) -> None:
    order = submit()
    written = AuditEvent.objects.count()
    with pytest.raises(RuntimeError), transaction.atomic():
        locked = Order.objects.select_for_update().get(pk=order.pk)
        order_apply_event(locked, OrderEvent.CANCEL_REQUESTED, actor=Actor.user("op1"))
        raise RuntimeError("the change fails after its event was written")
    assert AuditEvent.objects.count() == written
    assert Order.objects.get(pk=order.pk).status == OrderStatus.SUBMITTED


# --------------------------------------------------------------------------- tamper evidence

# The chain itself: tests/audit/test_chain.py. PostgreSQL refuses to edit or delete (SQLite, the demo, does not).


@pytest.mark.django_db
def test_the_database_refuses_to_edit_an_audit_row(require_postgres: None) -> None:
    event = audit_record(actor=Actor.user("op1"), action="order.created", object_type="order", object_id=1)
    with pytest.raises(DatabaseError), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).update(actor="someone else")


@pytest.mark.django_db
def test_the_database_refuses_to_delete_an_audit_row(require_postgres: None) -> None:
    event = audit_record(actor=Actor.user("op1"), action="order.created", object_type="order", object_id=1)
    with pytest.raises(DatabaseError), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).delete()
