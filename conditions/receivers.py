"""Where conditional orders hear the rest of the system (connected in ``ConditionsConfig.ready``).

- Quotes: ``brokers.signals.quotes_published``, sent after ``quotes_publish`` commits (the paper
  market's simulator and POST /market/quotes; the broker gateway's quotes when it exists send it too).
- Orders: the domain events published after commit (trading/events.py): an entry's fill arms its
  bracket, a child's end completes its parent.
- The clock: the embedded scheduler's registry (trading/periodic.py); with Celery, beat runs
  ``conditions.tasks`` (settings.CELERY_BEAT_SCHEDULE).

Each receiver runs in the publisher's thread after its commit; it must not raise into it, so it
logs and leaves the rest to the sweep.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings

from orders.models import TERMINAL_STATUSES, OrderStatus
from trading.events import DomainEvent, EventKind

log = logging.getLogger(__name__)

# Order statuses after which a parent may have something to do: an entry filled (partly), a child ended.
_FOLLOWED = frozenset({*TERMINAL_STATUSES, OrderStatus.PARTIALLY_FILLED, OrderStatus.CANCEL_REQUESTED})


def evaluate_on_quotes(sender: Any, quotes: list[Any], **kwargs: Any) -> None:
    """Evaluate the parents the published quotes can fire."""
    from conditions.services import conditions_evaluate_quotes, quote_view

    try:
        conditions_evaluate_quotes([quote_view(q) for q in quotes])
    except Exception:
        log.exception("evaluating conditional orders on %s quotes failed; the sweep will", len(quotes))


def observe_algo_quotes(sender: Any, quotes: list[Any], **kwargs: Any) -> None:
    """Add the published quotes to the live execution algorithms' observations (their reports)."""
    from conditions.algo_report import algo_observe

    try:
        algo_observe(quotes)
    except Exception:
        log.exception("observing %s quotes for execution algorithms failed", len(quotes))


def follow_order_event(sender: Any, event: DomainEvent, **kwargs: Any) -> None:
    """An order changed: a bracket's entry or a fired parent's child may be concerned."""
    if event.kind != EventKind.ORDER or event.data.get("status") not in _FOLLOWED:
        return
    from conditions.services import conditional_follow_order, order_concerns_conditions

    try:
        order_id = int(event.data["id"])
        if order_concerns_conditions(order_id=order_id, client_order_id=str(event.data.get("client_order_id") or "")):
            conditional_follow_order(order_id=order_id)
    except Exception:
        log.exception("following order %s for conditional orders failed; the sweep will", event.data.get("id"))


def register_periodic() -> None:
    """The clock (time triggers, expiry) every second and the sweep every few, in the embedded scheduler."""
    from conditions.services import conditions_evaluate_clock, conditions_sweep
    from trading import periodic

    periodic.register("conditions-clock", lambda: conditions_evaluate_clock(), settings.CONDITIONS_CLOCK_SECONDS)
    periodic.register("conditions-sweep", lambda: conditions_sweep(), settings.CONDITIONS_SWEEP_SECONDS)
