"""Domain events: what changed, announced after the change commits, for whoever listens.

Services call :func:`publish` inside the transaction of the change; listeners (the monitoring
app: live updates, monitors, alerts, metrics) receive the event through :data:`domain_event`
only once that transaction commits, so nobody ever sees a change that was rolled back. Nothing
in the order path imports a listener: the layers run one way (docs/architecture.md), and
monitoring connects its receivers in its AppConfig.ready().

An event is small and plain (JSON-ready ``data``: str, int, bool, None, lists and dicts; money
as strings), so a listener can forward it over a websocket or a queue as it is. A listener must
be quick and must not raise into the publisher: :func:`publish` logs and swallows a receiver's
error (``send_robust``), the change itself has committed already.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

import django.dispatch
from django.db import transaction

from trading.clock import now

log = logging.getLogger(__name__)


class EventKind(StrEnum):
    ORDER = "order"  # an order's status changed (data: id, status, event, reason, filled_quantity ...)
    FILL = "fill"  # a fill was recorded (data: order, broker_trade_id, quantity, price, amount, fees)
    POSITION = "position"  # a position changed (data: symbol, quantity, sellable, cost)
    BALANCE = "balance"  # an account's cash or frozen changed (data: cash, available, frozen)
    RISK = "risk"  # a risk verdict that held, rejected or warned (data: rule, action, message, order)
    BROKER_LINK = "broker_link"  # an account's broker connection went down or came back (data: state, error)
    # reconciliation found a difference with the broker, or one was closed (data: id, kind,
    # object_ref, ours, theirs, status, resolved_by); an OPEN one needs a person
    DISCREPANCY = "discrepancy"
    # a conditional order changed: fired, released a child, was refused, cancelled, expired (data: id,
    # client_order_id, kind, state, previous, event, reason, symbol, child)
    CONDITIONAL = "conditional"
    ALERT = "alert"  # an alert was raised, acknowledged or resolved (monitoring's own)
    HEALTH = "health"  # a process or queue's health changed (data: part, state, detail)


@dataclass(frozen=True)
class DomainEvent:
    kind: str  # an EventKind
    account: str  # the account's name; "" for what concerns the whole system
    data: dict[str, Any] = field(default_factory=dict)
    at: datetime = field(default_factory=now)


#: Sent after commit with ``event`` (a DomainEvent).
domain_event = django.dispatch.Signal()


def publish(kind: str, account: str, data: dict[str, Any]) -> DomainEvent:
    """Announce ``kind`` of ``account`` once the current transaction commits (at once outside one).

    Cheap when nobody listens: no receiver, no callback registered."""
    event = DomainEvent(kind, account, data)
    if domain_event.has_listeners():
        transaction.on_commit(lambda: _send(event))
    return event


def _send(event: DomainEvent) -> None:
    for receiver, result in domain_event.send_robust(sender=DomainEvent, event=event):
        if isinstance(result, Exception):
            log.error("domain event %s of %s: receiver %r failed: %r", event.kind, event.account, receiver, result)
