"""The order lifecycle as one (status, event) -> status table.

Every status change goes through :func:`order_apply_event`: it checks the
transition against the table, changes the order and writes the audit event,
inside the caller's transaction. An illegal transition raises; nothing is ever
silently overwritten. Events from UNKNOWN are all RECONCILED_*: only
reconciliation against the broker's own records may move an order out of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from audit.models import AuditEvent
from audit.services import Actor, audit_event
from orders.models import Order, OrderStatus
from trading.errors import IllegalTransition
from trading.events import EventKind, publish
from trading.i18n import bilingual
from trading.selectors import price_text

S = OrderStatus


class OrderEvent(StrEnum):
    RISK_HELD = "RISK_HELD"
    RISK_REJECTED = "RISK_REJECTED"
    APPROVED = "APPROVED"
    OPERATOR_REJECTED = "OPERATOR_REJECTED"
    SUBMIT_STARTED = "SUBMIT_STARTED"
    BROKER_ACCEPTED = "BROKER_ACCEPTED"
    BROKER_REJECTED = "BROKER_REJECTED"
    BROKER_TIMED_OUT = "BROKER_TIMED_OUT"
    BROKER_UNAVAILABLE = "BROKER_UNAVAILABLE"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    CANCEL_REQUESTED = "CANCEL_REQUESTED"
    CANCEL_REJECTED = "CANCEL_REJECTED"
    CANCEL_REJECTED_PARTIALLY_FILLED = "CANCEL_REJECTED_PARTIALLY_FILLED"  # a refused cancel of a partly filled order
    CANCELLED = "CANCELLED"
    EXPIRED = "EXPIRED"
    RECONCILED_OPEN = "RECONCILED_OPEN"
    RECONCILED_PARTIALLY_FILLED = "RECONCILED_PARTIALLY_FILLED"
    RECONCILED_FILLED = "RECONCILED_FILLED"
    RECONCILED_CANCELLED = "RECONCILED_CANCELLED"
    RECONCILED_REJECTED = "RECONCILED_REJECTED"
    RECONCILED_EXPIRED = "RECONCILED_EXPIRED"
    RECONCILED_MISSING = "RECONCILED_MISSING"


E = OrderEvent
# The event name an order's creation is announced with when it is created NEW and stays so (no status change).
CREATED = "CREATED"

TRANSITIONS: dict[tuple[str, str], str] = {
    # pre-trade
    (S.NEW, E.RISK_HELD): S.PENDING_APPROVAL,
    (S.NEW, E.RISK_REJECTED): S.REJECTED,
    (S.NEW, E.CANCELLED): S.CANCELLED,
    (S.NEW, E.EXPIRED): S.EXPIRED,
    (S.PENDING_APPROVAL, E.APPROVED): S.NEW,
    (S.PENDING_APPROVAL, E.RISK_REJECTED): S.REJECTED,
    (S.PENDING_APPROVAL, E.OPERATOR_REJECTED): S.REJECTED,
    (S.PENDING_APPROVAL, E.CANCELLED): S.CANCELLED,
    (S.PENDING_APPROVAL, E.EXPIRED): S.EXPIRED,
    # submission
    (S.NEW, E.SUBMIT_STARTED): S.SUBMITTING,
    (S.SUBMITTING, E.BROKER_ACCEPTED): S.SUBMITTED,
    (S.SUBMITTING, E.BROKER_REJECTED): S.REJECTED,
    (S.SUBMITTING, E.BROKER_TIMED_OUT): S.UNKNOWN,
    (S.SUBMITTING, E.BROKER_UNAVAILABLE): S.NEW,  # never reached the broker: waits for the link, owed again
    (S.SUBMITTING, E.RECONCILED_EXPIRED): S.EXPIRED,  # a stale send the broker never got, its day over
    # at the broker
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
    # the broker's answer was lost: only reconciliation leaves UNKNOWN
    (S.UNKNOWN, E.RECONCILED_OPEN): S.SUBMITTED,
    (S.UNKNOWN, E.RECONCILED_PARTIALLY_FILLED): S.PARTIALLY_FILLED,
    (S.UNKNOWN, E.RECONCILED_FILLED): S.FILLED,
    (S.UNKNOWN, E.RECONCILED_CANCELLED): S.CANCELLED,
    (S.UNKNOWN, E.RECONCILED_REJECTED): S.REJECTED,
    (S.UNKNOWN, E.RECONCILED_EXPIRED): S.EXPIRED,
    (S.UNKNOWN, E.RECONCILED_MISSING): S.SUBMITTING,
}


def next_status(status: str, event: str) -> str:
    """The status that ``event`` leads to from ``status``; raises IllegalTransition."""
    try:
        return TRANSITIONS[(status, event)]
    except KeyError:
        raise IllegalTransition(
            bilingual("illegal order transition {status} --{event}-->", status=status, event=event)
        ) from None


@dataclass(frozen=True)
class StatusChange:
    """A status change made to an order whose row is written later (intake's batched write):
    its audit event is built once the order has its id."""

    before: str
    after: str
    event: OrderEvent
    actor: Actor
    reason: str = ""

    def audit(self, order: Order) -> AuditEvent:
        """The change's audit event, built (not inserted) now that ``order`` has its id; its
        domain event is published with it (delivered once the caller's transaction commits)."""
        order_published(order, self.before, str(self.event), after=self.after)
        return status_event(order, self.before, self.event, actor=self.actor, reason=self.reason, after=self.after)


def order_apply_event(
    order: Order,
    event: OrderEvent,
    *,
    actor: Actor,
    reason: str = "",
    extra: dict[str, Any] | None = None,
    update_fields: list[str] | None = None,
    defer: list[StatusChange] | None = None,
) -> Order:
    """Move ``order`` along ``event`` and record it.

    Preconditions: the caller holds the order's row lock (``select_for_update``)
    inside a transaction, and has set any other changed fields listed in
    ``update_fields``, which are saved together with the status. With ``defer``
    (an order not yet inserted) nothing is written: the change is appended there
    and the caller inserts the order and ``change.audit(order)`` with its other writes.
    """
    before = order.status
    after = next_status(before, event)
    order.status = after
    if reason:
        order.status_reason = reason[:500]
    if defer is not None:
        defer.append(StatusChange(before, after, event, actor, reason))
        return order
    if order.pk is not None:
        fields = {"status", "status_reason", "updated_at", *(update_fields or [])}
        order.save(update_fields=sorted(fields))
    status_event(order, before, event, actor=actor, reason=reason, extra=extra).save()
    order_published(order, before, str(event))
    return order


def order_published(order: Order, before: str, event: str, *, after: str | None = None) -> None:
    """Announce ``order``'s change (``event``, from ``before``) after commit (trading/events.py).

    Cheap on purpose, since every status change of the order path passes here: built from the row
    in hand (no query; the symbol only when the instrument row is already loaded) and queued on
    the transaction's commit, nothing sent before it."""
    publish(EventKind.ORDER, order.account.name, order_event_data(order, status=after or order.status, previous=before,
                                                                  event=event))


def order_event_data(order: Order, *, status: str, previous: str = "", event: str = "") -> dict[str, Any]:
    """An order as live updates carry it (JSON-ready), from the row in hand: the instrument's symbol
    only when that row is loaded already (None otherwise), so that it never costs a query."""
    symbol = order.instrument.symbol if Order.instrument.is_cached(order) else None  # type: ignore[attr-defined]  # django-stubs: the descriptor's is_cached
    return {
        "id": order.pk, "client_order_id": order.client_order_id, "status": status, "previous": previous,
        "event": event, "reason": order.status_reason, "symbol": symbol, "side": order.side,
        "order_type": order.order_type, "price": price_text(order.price),
        "quantity": order.quantity, "filled_quantity": order.filled_quantity,
        "filled_amount": str(order.filled_amount), "strategy": order.strategy, "trading_day": str(order.trading_day),
        "created_at": order.created_at.isoformat() if order.created_at else None,
    }


def status_event(order: Order, before: str, event: OrderEvent, *, actor: Actor, reason: str = "",
                 extra: dict[str, Any] | None = None, after: str | None = None) -> AuditEvent:
    """The audit event of one status change of ``order`` (built, not inserted); ``after``
    defaults to the order's status now."""
    return audit_event(
        actor=actor,
        action="order.status_changed",
        object_type="order",
        object_id=order.pk,
        account=order.account.name,
        before={"status": before},
        after={"status": after or order.status, "event": str(event), **(extra or {})},
        reason=reason,
    )
