"""The conditional order's lifecycle as one (state, event) -> state table.

Every change of a parent goes through :func:`parent_apply_event`: it checks the transition against
the table, saves the parent, writes the audit event and a trigger-history row and announces the
change after commit, all inside the caller's transaction. The caller holds the parent's row lock
(taken after its account's: conditions/services.py, "Lock order"). An illegal transition raises.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from audit.services import Actor, audit_record
from conditions.models import ConditionalOrder, ParentEvent, ParentState
from orders.models import Order
from trading.clock import now
from trading.errors import IllegalTransition
from trading.events import EventKind, publish
from trading.i18n import bilingual
from trading.selectors import price_text

S = ParentState


class ParentEventKind(StrEnum):
    FIRED = "FIRED"  # a one-shot trigger fired and released its child
    RELEASED = "RELEASED"  # a repeating kind (grid, algorithms) released a child and keeps going
    TRACKED = "TRACKED"  # the plug-in's memory moved (a trailing stop activated, a new extreme)
    ARMED = "ARMED"  # a bracket's entry order filled: sized by what filled
    MODIFIED = "MODIFIED"
    REFUSED = "REFUSED"  # the released child was refused by market rules or risk control
    CHILD_ENDED = "CHILD_ENDED"  # the child of a fired parent reached a final status
    DONE = "DONE"  # a repeating kind has nothing more to release
    CANCELLED = "CANCELLED"
    EXPIRED = "EXPIRED"
    # Execution algorithms (TWAP, iceberg): held and released by an operator; a refused child holds it.
    PAUSED = "PAUSED"
    RESUMED = "RESUMED"
    HELD = "HELD"  # an algorithm's child was refused by market rules or risk control: it pauses


E = ParentEventKind

TRANSITIONS: dict[tuple[str, str], str] = {
    (S.ACTIVE, E.FIRED): S.TRIGGERED,
    (S.ACTIVE, E.RELEASED): S.ACTIVE,
    (S.ACTIVE, E.TRACKED): S.ACTIVE,
    (S.ACTIVE, E.ARMED): S.ACTIVE,
    (S.ACTIVE, E.MODIFIED): S.ACTIVE,
    (S.ACTIVE, E.REFUSED): S.FAILED,
    (S.ACTIVE, E.DONE): S.COMPLETED,
    (S.ACTIVE, E.CANCELLED): S.CANCELLED,
    (S.ACTIVE, E.EXPIRED): S.EXPIRED,
    (S.TRIGGERED, E.CHILD_ENDED): S.COMPLETED,
    (S.ACTIVE, E.PAUSED): S.PAUSED,
    (S.ACTIVE, E.HELD): S.PAUSED,
    (S.PAUSED, E.RESUMED): S.ACTIVE,
    (S.PAUSED, E.CANCELLED): S.CANCELLED,
    (S.PAUSED, E.EXPIRED): S.EXPIRED,
}


def next_state(state: str, event: str) -> str:
    """The state ``event`` leads to from ``state``; raises IllegalTransition (409)."""
    try:
        return TRANSITIONS[(state, event)]
    except KeyError:
        raise IllegalTransition(
            bilingual("illegal conditional order transition {state} --{event}-->", state=state, event=event)
        ) from None


def parent_apply_event(parent: ConditionalOrder, event: ParentEventKind, *, actor: Actor, reason: str = "",
                       last_price: Any = None, child: Order | None = None, detail: dict[str, Any] | None = None,
                       update_fields: list[str] | None = None) -> ParentEvent:
    """Move ``parent`` along ``event`` and record it (audit event, history row, domain event).

    Precondition: the caller holds the parent's row lock inside a transaction and has set the other
    changed fields, listed in ``update_fields``, which are saved with the state."""
    before = parent.state
    after = next_state(before, event)
    parent.state = after
    if reason and after != before:
        parent.state_reason = reason[:500]
    parent.version += 1
    fields = {"state", "state_reason", "version", "updated_at", *(update_fields or [])}
    parent.save(update_fields=sorted(fields))
    at = now()
    history = ParentEvent.objects.create(parent=parent, at=at, event=str(event), state_before=before, state_after=after,
                                         last_price=last_price, child=child, detail=detail or {}, reason=reason[:500])
    audit_record(actor=actor, action="conditional.state_changed" if after != before else f"conditional.{str(event).lower()}",
                 object_type="conditional_order", object_id=parent.pk, account=parent.account.name,
                 before={"state": before}, after={"state": after, "event": str(event), "version": parent.version,
                                                  "child": child.pk if child else None, **(detail or {})},
                 reason=reason)
    publish(EventKind.CONDITIONAL, parent.account.name, parent_event_data(parent, previous=before, event=str(event),
                                                                         reason=reason, child=child))
    return history


def parent_event_data(parent: ConditionalOrder, *, previous: str, event: str, reason: str = "",
                      child: Order | None = None) -> dict[str, Any]:
    """A parent as domain events carry it (JSON-ready)."""
    return {
        "id": parent.pk, "client_order_id": parent.client_order_id, "kind": parent.kind, "state": parent.state,
        "previous": previous, "event": event, "reason": reason, "symbol": parent.instrument.symbol,
        "side": parent.side, "quantity": parent.quantity, "released_quantity": parent.released_quantity,
        "child": child.pk if child else None, "watch_low": price_text(parent.watch_low),
        "watch_high": price_text(parent.watch_high),
    }
