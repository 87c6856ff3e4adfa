"""The order row as its own outbox: broker calls owed after commit, the relay and the sweep.

A committed NEW order is owed a submit and a CANCEL_REQUESTED one a cancel. ``dispatch_on_commit``
enqueues the call after commit (ORDERS_DISPATCH = "inline") or leaves it to the relay process
("relay"); the sweep re-enqueues whatever stays owed past the grace period.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q, QuerySet

from orders.models import (
    Order,
    OrderStatus,
)
from trading.clock import now

log = logging.getLogger(__name__)


SUBMIT, CANCEL = "submit", "cancel"


def dispatch_on_commit(order: Order, kind: str) -> None:
    """Have the broker call for ``order`` made once the transaction commits.

    The committed status (NEW = to submit, CANCEL_REQUESTED = to cancel) is the
    durable record that the call is owed. With ``ORDERS_DISPATCH = "relay"``
    (the default with Redis) the outbox relay process picks the row up and
    enqueues it, keeping the queue off the request path; with ``"inline"`` the
    call is enqueued (or, with in-process tasks, made) right after commit. The
    sweep re-sends whatever stays owed either way.
    """
    if settings.ORDERS_DISPATCH == "relay":
        if order.dispatched_at is not None:  # dispatched before (to submit): owed again
            Order.objects.filter(pk=order.pk).update(dispatched_at=None)
            order.dispatched_at = None
        return
    order_id = order.pk
    transaction.on_commit(lambda: enqueue(order_id, kind))


def enqueue(order_id: int, kind: str) -> None:
    from orders import tasks

    task = tasks.submit_order if kind == SUBMIT else tasks.cancel_order
    try:
        task.delay(order_id)
    except Exception:  # the queue is down: the sweep re-enqueues from the order rows
        log.exception("could not enqueue %s of order %s; the outbox sweep will retry", kind, order_id)


def tasks_run_inline() -> bool:
    from trading.celery import app

    return bool(app.conf.task_always_eager)


def reread_after_inline_worker(order: Order) -> None:
    """With in-process tasks the worker has already moved ``order`` on: read its row again.

    Its account and instrument are kept (the same rows), so answering with the
    order reads nothing more.
    """
    if tasks_run_inline():
        order_reread(order)


def order_reread(order: Order) -> None:
    """Read ``order``'s own columns again, keeping its account and instrument (the same rows)."""
    account, instrument = order.account, order.instrument
    order.refresh_from_db()
    order.account, order.instrument = account, instrument


def orders_owed() -> QuerySet[Order]:
    """The orders a broker call is owed to: NEW ones admitted (submit) and CANCEL_REQUESTED ones
    (cancel), whether handed to the queue already or not. The outbox's depth (metrics) counts them."""
    # A NEW row without admitted_at is a replacement waiting for its original's cancel: not owed.
    unadmitted = Q(status=OrderStatus.NEW, admitted_at__isnull=True)
    return Order.objects.filter(status__in=[OrderStatus.NEW, OrderStatus.CANCEL_REQUESTED]).exclude(unadmitted)


def _dispatch_owed(*, dispatched_before: datetime | None = None, updated_before: datetime | None = None,
                   limit: int = 1000) -> int:
    """Enqueue the broker calls that order rows say are owed: NEW orders (submit) and
    CANCEL_REQUESTED ones (cancel) never dispatched, or last dispatched before
    ``dispatched_before``. Rows are claimed with SKIP LOCKED, so several relays
    never enqueue one row twice. Returns how many were enqueued."""

    owed = Q(dispatched_at__isnull=True)
    if dispatched_before is not None:
        owed |= Q(dispatched_at__lt=dispatched_before)
    rows = orders_owed().filter(owed)
    if updated_before is not None:
        rows = rows.filter(updated_at__lt=updated_before)
    with transaction.atomic():
        claimed = list(rows.select_for_update(skip_locked=True, of=("self",)).order_by("pk").values_list("pk", "status")[:limit])
        if not claimed:
            return 0
        Order.objects.filter(pk__in=[pk for pk, _ in claimed]).update(dispatched_at=now())
    for order_id, status in claimed:
        enqueue(order_id, SUBMIT if status == OrderStatus.NEW else CANCEL)
    return len(claimed)


def orders_release_waiting(*, account_id: int) -> int:
    """The account's broker is reachable again: offer its NEW orders now (they waited, owed, while
    the link was down) instead of after the sweep's grace period. Returns how many."""
    waiting = Order.objects.filter(account_id=account_id, status=OrderStatus.NEW, admitted_at__isnull=False)
    if settings.ORDERS_DISPATCH == "relay":
        return waiting.update(dispatched_at=None)  # the relay takes them on its next pass
    ids = list(waiting.order_by("pk").values_list("pk", flat=True))
    for order_id in ids:
        enqueue(order_id, SUBMIT)
    return len(ids)


def outbox_relay_once() -> int:
    """One pass of the outbox relay: enqueue every broker call owed and not yet dispatched."""
    return _dispatch_owed()


def outbox_sweep() -> int:
    """Re-enqueue broker calls still owed after the grace period: not dispatched at all
    (the relay or the on-commit hook missed them) or dispatched but never carried out
    (the message was lost). Returns how many were enqueued."""
    cutoff = now() - timedelta(seconds=settings.ORDERS_OUTBOX_GRACE_SECONDS)
    return _dispatch_owed(dispatched_before=cutoff, updated_before=cutoff)
