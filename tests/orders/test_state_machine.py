"""Every allowed and every forbidden order transition, applied to a real order row."""

from __future__ import annotations

import itertools

import pytest

from audit.models import AuditEvent
from audit.services import Actor
from orders.models import TERMINAL_STATUSES, Order, OrderStatus
from orders.state_machine import TRANSITIONS, OrderEvent, next_status, order_apply_event
from tests import factories
from trading.errors import IllegalTransition

S = OrderStatus
E = OrderEvent

# The lifecycle as DESIGN.md describes it, written out independently of the
# implementation's table: a change to either must be deliberate.
EXPECTED = {
    (S.NEW, E.RISK_HELD): S.PENDING_APPROVAL,
    (S.NEW, E.RISK_REJECTED): S.REJECTED,
    (S.NEW, E.CANCELLED): S.CANCELLED,
    (S.NEW, E.EXPIRED): S.EXPIRED,
    (S.NEW, E.SUBMIT_STARTED): S.SUBMITTING,
    (S.PENDING_APPROVAL, E.APPROVED): S.NEW,
    (S.PENDING_APPROVAL, E.RISK_REJECTED): S.REJECTED,
    (S.PENDING_APPROVAL, E.OPERATOR_REJECTED): S.REJECTED,
    (S.PENDING_APPROVAL, E.CANCELLED): S.CANCELLED,
    (S.PENDING_APPROVAL, E.EXPIRED): S.EXPIRED,
    (S.SUBMITTING, E.BROKER_ACCEPTED): S.SUBMITTED,
    (S.SUBMITTING, E.BROKER_REJECTED): S.REJECTED,
    (S.SUBMITTING, E.BROKER_TIMED_OUT): S.UNKNOWN,
    (S.SUBMITTING, E.BROKER_UNAVAILABLE): S.NEW,
    (S.SUBMITTING, E.RECONCILED_EXPIRED): S.EXPIRED,
    (S.SUBMITTED, E.PARTIALLY_FILLED): S.PARTIALLY_FILLED,
    (S.SUBMITTED, E.FILLED): S.FILLED,
    (S.SUBMITTED, E.CANCEL_REQUESTED): S.CANCEL_REQUESTED,
    (S.SUBMITTED, E.CANCELLED): S.CANCELLED,
    (S.SUBMITTED, E.EXPIRED): S.EXPIRED,
    (S.SUBMITTED, E.BROKER_REJECTED): S.REJECTED,
    (S.PARTIALLY_FILLED, E.PARTIALLY_FILLED): S.PARTIALLY_FILLED,
    (S.PARTIALLY_FILLED, E.FILLED): S.FILLED,
    (S.PARTIALLY_FILLED, E.CANCEL_REQUESTED): S.CANCEL_REQUESTED,
    (S.PARTIALLY_FILLED, E.CANCELLED): S.CANCELLED,
    (S.PARTIALLY_FILLED, E.EXPIRED): S.EXPIRED,
    (S.CANCEL_REQUESTED, E.PARTIALLY_FILLED): S.CANCEL_REQUESTED,
    (S.CANCEL_REQUESTED, E.FILLED): S.FILLED,
    (S.CANCEL_REQUESTED, E.CANCELLED): S.CANCELLED,
    (S.CANCEL_REQUESTED, E.EXPIRED): S.EXPIRED,
    (S.CANCEL_REQUESTED, E.CANCEL_REJECTED): S.SUBMITTED,
    (S.CANCEL_REQUESTED, E.CANCEL_REJECTED_PARTIALLY_FILLED): S.PARTIALLY_FILLED,
    (S.UNKNOWN, E.RECONCILED_OPEN): S.SUBMITTED,
    (S.UNKNOWN, E.RECONCILED_PARTIALLY_FILLED): S.PARTIALLY_FILLED,
    (S.UNKNOWN, E.RECONCILED_FILLED): S.FILLED,
    (S.UNKNOWN, E.RECONCILED_CANCELLED): S.CANCELLED,
    (S.UNKNOWN, E.RECONCILED_REJECTED): S.REJECTED,
    (S.UNKNOWN, E.RECONCILED_EXPIRED): S.EXPIRED,
    (S.UNKNOWN, E.RECONCILED_MISSING): S.SUBMITTING,
}

ALL_PAIRS = list(itertools.product(OrderStatus.values, [e.value for e in OrderEvent]))
ALLOWED = sorted(EXPECTED)
FORBIDDEN = sorted(set(ALL_PAIRS) - set(EXPECTED))


def test_table_is_the_documented_lifecycle() -> None:
    assert TRANSITIONS == EXPECTED


def test_terminal_states_have_no_way_out() -> None:
    for status, event in ALL_PAIRS:
        if status in TERMINAL_STATUSES:
            with pytest.raises(IllegalTransition):
                next_status(status, event)


def test_only_reconciliation_leaves_unknown() -> None:
    """Checked against the code's own table and next_status, not against EXPECTED above."""
    reconciliation = {e for e in OrderEvent if e.startswith("RECONCILED_")}
    assert reconciliation, "no reconciliation events: nothing could ever leave UNKNOWN"
    leaving_unknown = {OrderEvent(event) for status, event in TRANSITIONS if status == S.UNKNOWN}
    assert leaving_unknown == reconciliation  # every reconciled outcome has a way out, nothing else does
    for event in set(OrderEvent) - reconciliation:
        with pytest.raises(IllegalTransition):
            next_status(S.UNKNOWN, event)
    for event in reconciliation:
        assert next_status(S.UNKNOWN, event) != S.UNKNOWN


@pytest.fixture
def order(db) -> Order:
    inst = factories.instrument("600000.SH")
    acc = factories.account("sm")
    return Order.objects.create(account=acc, instrument=inst, client_order_id="sm-1", side="BUY", order_type="LIMIT",
                                price="10.00", quantity=100, trading_day="2026-11-23")


@pytest.mark.django_db
@pytest.mark.parametrize(("status", "event"), ALLOWED, ids=[f"{s}-{e}" for s, e in ALLOWED])
def test_allowed_transition_changes_status_and_audits(order: Order, status: str, event: str) -> None:
    Order.objects.filter(pk=order.pk).update(status=status)
    order.refresh_from_db()
    order_apply_event(order, OrderEvent(event), actor=Actor.user("op1"), reason="why")
    order.refresh_from_db()
    assert order.status == EXPECTED[(status, event)]
    audit = AuditEvent.objects.filter(object_type="order", object_id=str(order.pk)).last()
    assert audit is not None
    assert audit.before == {"status": status}
    assert audit.after["status"] == EXPECTED[(status, event)]
    assert audit.actor == "op1" and audit.reason == "why"


@pytest.mark.django_db
@pytest.mark.parametrize(("status", "event"), FORBIDDEN, ids=[f"{s}-{e}" for s, e in FORBIDDEN])
def test_forbidden_transition_raises_and_changes_nothing(order: Order, status: str, event: str) -> None:
    Order.objects.filter(pk=order.pk).update(status=status)
    order.refresh_from_db()
    audits = AuditEvent.objects.count()
    with pytest.raises(IllegalTransition):
        order_apply_event(order, OrderEvent(event), actor=Actor.system())
    order.refresh_from_db()
    assert order.status == status
    assert AuditEvent.objects.count() == audits
