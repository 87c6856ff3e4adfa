"""The broker calls: submit (exactly once), cancel, and a refused cancel.

The move to SUBMITTING commits before the broker call, so a worker that dies mid-call leaves a
trace; a SUBMITTING order is only re-sent after reconciliation shows the broker lacks it.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction

from audit.services import Actor, audit_record
from brokers.connection import link_open
from brokers.interface import BrokerInterface, BrokerOrder, OrderRequest
from brokers.registry import broker_for
from orders.models import (
    Order,
    OrderStatus,
)
from orders.services.freezes import release_freezes
from orders.services.locks import lock_order, lock_order_alone, relock_order_alone
from orders.services.modify import after_order_ended, replacement_abandon
from orders.services.outbox import CANCEL, SUBMIT, queued_taken
from orders.services.sync import RESTING_AT_BROKER, broker_order_of, nothing_new_at_broker, order_sync
from orders.state_machine import OrderEvent, order_apply_event
from risk.services import risk_post_trade
from trading.clock import now
from trading.errors import (
    BrokerError,
    BrokerTimeout,
    BrokerUnavailable,
)
from trading.i18n import bilingual
from trading.services import (
    LedgerPost,
    ledger_flush,
)

log = logging.getLogger(__name__)


WORKER = Actor.system("worker")  # who moves an order to SUBMITTING


def submitting_stale(order: Order) -> bool:
    return order.updated_at < now() - timedelta(seconds=settings.ORDERS_SUBMITTING_STALE_SECONDS)


def order_send_to_broker(*, order_id: int) -> Order | None:
    """Worker: send a NEW order to its broker exactly once.

    The move to SUBMITTING commits before the broker call, so a worker that
    dies mid-call leaves a trace; a SUBMITTING order is only re-sent after
    reconciliation shows the broker does not have it. While the account's broker link is down
    (brokers.connection) a NEW order is left NEW: owed, and offered again by the sweep.
    """
    queued_taken(order_id, SUBMIT)  # from now on the sweep may offer it again
    with transaction.atomic():
        order = lock_order_alone(order_id)
        if order is None:
            return None
        if order.status == OrderStatus.NEW and order.admitted_at is None:
            # Never sent unchecked: a replacement is admitted (risk, freeze) when its original ends.
            log.error("order %s was never admitted (a replacement waiting for its original); not sent", order.pk)
            return order
        if order.status == OrderStatus.SUBMITTING:
            if not submitting_stale(order):
                return order  # another worker is on it right now
            order.save(update_fields=["updated_at"])  # claim it: others now see it fresh
            resend = True
        elif order.status == OrderStatus.NEW:
            if not link_open(order.account_id):
                return order  # waits for its broker; the sweep offers it again
            order.submitted_at = now()
            order_apply_event(order, OrderEvent.SUBMIT_STARTED, actor=WORKER, update_fields=["submitted_at"])
            resend = False
        else:
            return order
    broker = broker_for(order.account)
    if resend:
        found = _find_at_broker(broker, order)
        if found is not None:
            return order_sync(order_id=order.pk, broker_order=found, trades=broker.query_order(found.broker_order_id).trades)
    return order_place(broker, order)


def _find_at_broker(broker: BrokerInterface, order: Order) -> BrokerOrder | None:
    return broker_order_of(order, broker.query_orders(), carries_ref=broker.capabilities.client_ref)


def order_place(broker: BrokerInterface, order: Order) -> Order:
    """Place a SUBMITTING order and record the broker's answer."""
    request = OrderRequest(
        client_ref=str(order.pk),
        symbol=order.instrument.symbol,
        side=order.side,
        order_type=order.order_type,
        quantity=order.quantity,
        price=order.price,
        protection_price=order.protection_price,
    )
    broker_actor = Actor.broker(order.account.broker_kind)
    try:
        ack = broker.place_order(request)
    except BrokerUnavailable as exc:
        with transaction.atomic():  # it never reached the broker: back to NEW, owed, freezes kept
            _, locked = lock_order(order.pk)
            if locked.status == OrderStatus.SUBMITTING:
                order_apply_event(locked, OrderEvent.BROKER_UNAVAILABLE, actor=broker_actor,
                                  reason=bilingual("waiting for the broker connection") + f": {exc.message}")
        return locked
    except BrokerTimeout as exc:
        with transaction.atomic():
            _, locked = lock_order(order.pk)
            if locked.status == OrderStatus.SUBMITTING:
                order_apply_event(locked, OrderEvent.BROKER_TIMED_OUT, actor=broker_actor, reason=exc.message)
        return locked
    except BrokerError as exc:
        with transaction.atomic():
            account, locked = lock_order(order.pk)
            if locked.status == OrderStatus.SUBMITTING:
                posts: list[LedgerPost] = []
                release_freezes(locked, actor=broker_actor, posts=posts, memo="券商拒单解冻")
                order_apply_event(locked, OrderEvent.BROKER_REJECTED, actor=broker_actor, reason=exc.message,
                                  update_fields=["frozen_amount", "frozen_quantity"])
                ledger_flush(account, posts)
                risk_post_trade(account=account, order=locked)  # consecutive broker rejections
                after_order_ended(locked, actor=broker_actor)
        return locked
    with transaction.atomic():
        locked = relock_order_alone(order)
        if locked.status == OrderStatus.SUBMITTING:
            locked.broker_order_id = ack.broker_order_id
            order_apply_event(locked, OrderEvent.BROKER_ACCEPTED, actor=broker_actor, reason=ack.message,
                              extra={"broker_order_id": ack.broker_order_id}, update_fields=["broker_order_id"])
    # Pick up fills the broker made at once (the paper broker matches on arrival) by reading this
    # one order back, not the account's open orders. Polls skip an order while it is SUBMITTING,
    # so this read, after the answer is recorded, is what catches a fill made in between.
    try:
        snapshot = broker.query_order(ack.broker_order_id)
    except BrokerError as exc:  # polls read it (reconcile._SKIPPED_IN_FLIGHT covers a change they skipped)
        log.warning("order %s: reading it back from the broker failed (%s); the poll reads it", order.pk, exc.message)
        return locked
    found = snapshot.orders[0] if snapshot.orders else None
    if found is None or nothing_new_at_broker(locked, found):
        return locked
    return order_sync(order_id=locked.pk, broker_order=found, trades=snapshot.trades)


def order_cancel_at_broker(*, order_id: int) -> Order | None:
    """Worker: ask the broker to cancel a CANCEL_REQUESTED order, then read back its state."""
    queued_taken(order_id, CANCEL)
    order = Order.objects.select_related("account", "instrument").filter(pk=order_id).first()
    if order is None:
        return None
    if order.status != OrderStatus.CANCEL_REQUESTED:
        return order
    broker = broker_for(order.account)
    refusal: str | None = None
    try:
        broker.cancel_order(order.broker_order_id)
    except (BrokerTimeout, BrokerUnavailable):
        return order  # the sweep asks again; the poll sees the outcome either way
    except BrokerError as exc:
        # Usually "already filled/cancelled": the poll below records the truth.
        refusal = exc.message
        audit_record(actor=Actor.broker(order.account.broker_kind), action="order.cancel_refused", object_type="order",
                     object_id=order.pk, account=order.account.name, reason=exc.message)
    # Read this one order back and record what the broker says (cancelled, filled meanwhile, ...).
    try:
        snapshot = broker.query_order(order.broker_order_id)
    except BrokerError as exc:  # the poll sees the outcome; a cancel still owed is asked again
        log.warning("order %s: reading it back after the cancel failed (%s); the poll reads it", order.pk, exc.message)
        return order
    found = snapshot.orders[0] if snapshot.orders else None
    if found is None:
        order.refresh_from_db()
        return order
    order = order_sync(order_id=order.pk, broker_order=found, trades=snapshot.trades)
    if refusal is not None and order.status == OrderStatus.CANCEL_REQUESTED and found.status in RESTING_AT_BROKER:
        order = order_cancel_refused(order_id=order.pk, reason=refusal)  # it rests there: the refusal stands
    return order


def order_cancel_refused(*, order_id: int, reason: str) -> Order:
    """The broker refused to cancel an order that still rests there (e.g. during the 9:20-9:25
    call auction): it returns to its working status, and a replacement waiting for it (a modify)
    is cancelled, since the original stays live."""
    with transaction.atomic():
        account, order = lock_order(order_id)
        if order.status != OrderStatus.CANCEL_REQUESTED:
            return order
        broker_actor = Actor.broker(account.broker_kind)
        # Straight back to its working status, in one change: a partly filled order stays PARTIALLY_FILLED.
        event = OrderEvent.CANCEL_REJECTED_PARTIALLY_FILLED if order.filled_quantity else OrderEvent.CANCEL_REJECTED
        order_apply_event(order, event, actor=broker_actor, reason=bilingual("cancel refused") + f": {reason}")
        replacement_abandon(order, actor=broker_actor,
                             reason=bilingual("the original's cancel was refused; modify abandoned") + f": {reason}")
    return order
