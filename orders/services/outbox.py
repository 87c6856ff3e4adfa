"""The order row as its own outbox: broker calls owed after commit, the relay and the sweep.

A committed NEW order is owed a submit and a CANCEL_REQUESTED one a cancel. ``dispatch_on_commit``
enqueues the call after commit (ORDERS_DISPATCH = "inline") or leaves it to the relay process
("relay"); the sweep re-enqueues whatever stays owed past the grace period.

At most one message per order and call waits in the queue: enqueueing sets a marker in Redis
(``SET NX`` with ``ORDERS_QUEUED_TTL_SECONDS``) and the worker that takes the message clears it, so
an order whose message is still waiting is not enqueued again. Without it, a queue that fell
behind the sweep's grace period (a broker flapping, slow workers) grew without bound: each sweep
re-enqueued every owed order again (130,000 messages for 7,000 orders in bench/broker_faults.py),
and every real call waited behind the copies. A marker outlives a lost message by its TTL at most.
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
from trading.redis_clients import redis_client

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


QUEUED_KEY = "tbo:orders:queued:"  # + kind:order id: a message of that call waits in the queue


def _queue_marked(order_id: int, kind: str) -> bool:
    """Mark the call as waiting in the queue; False when it was marked already (a message of it
    waits). True without Redis (in-process tasks: no queue) or when Redis does not answer."""
    if tasks_run_inline() or not settings.REDIS_URL:
        return True
    try:
        return bool(redis_client().set(f"{QUEUED_KEY}{kind}:{order_id}", 1, nx=True,
                                       ex=settings.ORDERS_QUEUED_TTL_SECONDS))
    except Exception:  # Redis away: enqueue anyway, the claim on the order row still stops a double call
        log.warning("could not mark %s of order %s as queued", kind, order_id, exc_info=True)
        return True


def queued_taken(order_id: int, kind: str) -> None:
    """Worker: the queue's message of this call was taken; a later one may be enqueued again."""
    if tasks_run_inline() or not settings.REDIS_URL:
        return
    try:
        redis_client().delete(f"{QUEUED_KEY}{kind}:{order_id}")
    except Exception:  # the marker expires by itself
        log.warning("could not clear the queued marker of %s of order %s", kind, order_id, exc_info=True)


def enqueue(order_id: int, kind: str) -> bool:
    """Hand the call to the queue unless a message of it waits there already. Returns whether it
    was enqueued."""
    from orders import tasks

    if not _queue_marked(order_id, kind):
        return False  # its message still waits: one is enough
    task = tasks.submit_order if kind == SUBMIT else tasks.cancel_order
    try:
        task.delay(order_id)
    except Exception:  # the queue is down: the sweep re-enqueues from the order rows
        log.exception("could not enqueue %s of order %s; the outbox sweep will retry", kind, order_id)
        queued_taken(order_id, kind)
        return False
    return True


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
    return sum(enqueue(order_id, SUBMIT if status == OrderStatus.NEW else CANCEL) for order_id, status in claimed)


def orders_release_waiting(*, account_id: int) -> int:
    """The account's broker is reachable again: offer its NEW orders now (they waited, owed, while
    the link was down) instead of after the sweep's grace period. Returns how many."""
    waiting = Order.objects.filter(account_id=account_id, status=OrderStatus.NEW, admitted_at__isnull=False)
    if settings.ORDERS_DISPATCH == "relay":
        return waiting.update(dispatched_at=None)  # the relay takes them on its next pass
    ids = list(waiting.order_by("pk").values_list("pk", flat=True))
    return sum(enqueue(order_id, SUBMIT) for order_id in ids)


def outbox_relay_once() -> int:
    """One pass of the outbox relay: enqueue every broker call owed and not yet dispatched."""
    return _dispatch_owed()


def outbox_sweep() -> int:
    """Re-enqueue broker calls still owed after the grace period: not dispatched at all
    (the relay or the on-commit hook missed them) or dispatched but never carried out
    (the message was lost). Returns how many were enqueued."""
    cutoff = now() - timedelta(seconds=settings.ORDERS_OUTBOX_GRACE_SECONDS)
    return _dispatch_owed(dispatched_before=cutoff, updated_before=cutoff)
