"""Polling the broker and reconciling: orders working, UNKNOWN or stuck SUBMITTING brought in
line with the broker's records; a lost order re-sent (never after its trading day).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from django.db import models, transaction
from django.db.models import Q

from audit.services import Actor
from brokers.interface import BrokerChanges, BrokerInterface, BrokerOrder, BrokerTrade
from brokers.registry import broker_for
from orders.models import (
    WORKING_STATUSES,
    Order,
    OrderStatus,
)
from orders.services.broker import order_place, submitting_stale
from orders.services.expiry import expire_locked
from orders.services.locks import lock_order
from orders.services.outbox import orders_release_waiting
from orders.services.sync import broker_order_of, nothing_new_at_broker, order_sync
from orders.state_machine import OrderEvent, order_apply_event
from trading.clock import now
from trading.errors import BrokerError
from trading.i18n import bilingual
from trading.models import Account
from trading.selectors import account_trading_day

log = logging.getLogger(__name__)


# Where this process's last poll of each account left off at its broker (BrokerChanges.cursor).
_POLL_CURSORS: dict[int, str] = {}


POLLED_STATUSES = (*WORKING_STATUSES, OrderStatus.UNKNOWN, OrderStatus.SUBMITTING)

# By account, the orders a poll of this process skipped because their worker was still waiting for
# the broker's answer while the broker already listed a change of them. The cursor moved past that
# change and the worker's read-back after the answer may fail, so a later poll of this process
# reads each of them once by itself (``_read_skipped``).
_SKIPPED_IN_FLIGHT: dict[int, set[int]] = {}


def _orders_named_by(account: Account, broker_orders: list[BrokerOrder]) -> list[Order]:
    """This account's polled orders among those the broker listed: looked up by our id (the
    client_ref) and by broker order id, on their own indexes, never by scanning the open orders."""
    refs = sorted({int(o.client_ref) for o in broker_orders if o.client_ref.isdigit()})
    ids = sorted({o.broker_order_id for o in broker_orders if o.broker_order_id})
    found: dict[int, Order] = {}
    for start in range(0, max(len(refs), len(ids)), 400):  # within SQLite's limit of bound parameters
        chunk = Q(pk__in=refs[start:start + 400]) | Q(broker_order_id__in=ids[start:start + 400])
        for order in Order.objects.filter(chunk).select_related("instrument"):
            if order.account_id == account.pk and order.status in POLLED_STATUSES:
                found[order.pk] = order
    return list(found.values())


def account_poll(*, account_id: int) -> int:
    """Worker: bring the account's orders that are working, UNKNOWN or stuck SUBMITTING in line
    with the broker. Returns how many orders changed.

    It asks the broker only for what changed since this process last polled the account
    (``query_changes`` with the cursor kept in ``_POLL_CURSORS``) and syncs only those orders, so
    a poll (e.g. the one after each placement) costs what changed, not what rests open. The
    first poll in a process, an adapter that cannot tell what changed, or an order stuck
    SUBMITTING/UNKNOWN that the changes do not mention, reads the broker's full list instead.
    The cursor moves on only after every order was synced."""
    account = Account.objects.filter(pk=account_id).first()
    if account is None:
        return 0
    polled = Order.objects.filter(account=account, status__in=POLLED_STATUSES)
    if not polled.exists():
        return 0
    broker = broker_for(account)
    changes = broker.query_changes(_POLL_CURSORS.get(account_id))
    in_flight: list[Order] = []
    if not changes.complete:
        in_flight = list(polled.filter(status__in=[OrderStatus.UNKNOWN, OrderStatus.SUBMITTING]).select_related("instrument"))
        mentioned = {o.client_ref for o in changes.orders} | {o.broker_order_id for o in changes.orders}
        if any(submitting_stale(o) and str(o.pk) not in mentioned and o.broker_order_id not in mentioned for o in in_flight):
            changes = broker.query_changes(None)  # whether the broker has it needs its full list
    if changes.complete:
        open_orders = list(polled.select_related("instrument"))
    else:
        by_pk = {o.pk: o for o in in_flight}
        by_pk.update((o.pk, o) for o in _orders_named_by(account, changes.orders))
        open_orders = sorted(by_pk.values(), key=lambda o: o.pk)
    synced: set[int] = set()
    skipped: set[int] = set()
    changed = orders_bring_in_line(account, broker, changes, open_orders, synced=synced, skipped=skipped)
    if changes.cursor is None:
        _POLL_CURSORS.pop(account_id, None)
    else:
        _POLL_CURSORS[account_id] = changes.cursor
    changed += _read_skipped(broker, account_id, synced)
    if skipped and changes.cursor is not None:
        _SKIPPED_IN_FLIGHT.setdefault(account_id, set()).update(skipped)
    return changed


def orders_bring_in_line(account: Account, broker: BrokerInterface, changes: BrokerChanges, open_orders: list[Order],
                         *, synced: set[int] | None = None, skipped: set[int] | None = None) -> int:
    """Sync each of ``open_orders`` (working, UNKNOWN or SUBMITTING) with its record in ``changes``;
    with a complete read, a stale UNKNOWN/SUBMITTING order the broker lacks is sent again (or
    expired after its day). Returns how many orders changed; adds to ``synced`` the orders synced
    and to ``skipped`` those left to their worker although the broker listed them. Takes no lock
    of its own beyond each order's sync: callers run it outside any transaction."""
    by_id = {o.broker_order_id: o for o in changes.orders}
    by_ref = {o.client_ref: o for o in changes.orders if o.client_ref}
    trades_by_order: dict[str, list[BrokerTrade]] = {}
    for trade in changes.trades:
        trades_by_order.setdefault(trade.broker_order_id, []).append(trade)
    changed = 0
    synced = set() if synced is None else synced
    skipped = set() if skipped is None else skipped
    for order in open_orders:
        found = by_id.get(order.broker_order_id) if order.broker_order_id else None
        found = found or by_ref.get(str(order.pk))
        if found is None and changes.complete and not broker.capabilities.client_ref:
            found = broker_order_of(order, changes.orders, carries_ref=False)  # by what it says
        if order.status == OrderStatus.SUBMITTING and not submitting_stale(order):
            if found is not None:
                skipped.add(order.pk)  # its change is behind the cursor from now on
            continue  # its worker is still waiting for the broker's answer
        if found is None:
            if not changes.complete:
                continue  # unchanged at the broker
            if order.status in (OrderStatus.UNKNOWN, OrderStatus.SUBMITTING) and submitting_stale(order):
                _resend_missing(broker, order)
                changed += 1
            elif order.status in WORKING_STATUSES:
                log.warning("order %s (%s) is working here but unknown to broker %s", order.pk, order.broker_order_id, account.broker_kind)
            continue
        order_trades = trades_by_order.get(found.broker_order_id, [])
        if nothing_new_at_broker(order, found):
            continue
        order_sync(order_id=order.pk, broker_order=found, trades=order_trades)
        synced.add(order.pk)
        changed += 1
    return changed


def _read_skipped(broker: BrokerInterface, account_id: int, synced: set[int]) -> int:
    """Read one by one the orders earlier polls of this process skipped while they were SUBMITTING
    (``_SKIPPED_IN_FLIGHT``) and that have their answer now; sync what the broker adds. Returns
    how many changed."""
    waiting = _SKIPPED_IN_FLIGHT.get(account_id)
    if not waiting:
        return 0
    changed = 0
    for order in Order.objects.filter(pk__in=sorted(waiting)).select_related("instrument"):
        if order.status == OrderStatus.SUBMITTING:
            continue  # still waiting for its answer
        if order.pk not in synced and order.status in WORKING_STATUSES and order.broker_order_id:
            snapshot = broker.query_order(order.broker_order_id)
            found = snapshot.orders[0] if snapshot.orders else None
            if found is not None and not nothing_new_at_broker(order, found):
                order_sync(order_id=order.pk, broker_order=found, trades=snapshot.trades)
                changed += 1
        waiting.discard(order.pk)  # UNKNOWN ones are looked up as in-flight orders are
    return changed


def _resend_missing(broker: BrokerInterface, order: Order) -> None:
    """The broker has no record of an order whose answer was lost: send it again."""
    with transaction.atomic():
        account, locked = lock_order(order.pk)
        if locked.status not in (OrderStatus.UNKNOWN, OrderStatus.SUBMITTING) or not submitting_stale(locked):
            return  # somebody else resolved or claimed it meanwhile
        if locked.trading_day < account_trading_day(account, now()):  # a day order is never sent after its day
            expire_locked(account, locked, OrderEvent.RECONCILED_EXPIRED, actor=Actor.system("reconciliation"),
                           reason=bilingual("not at the broker and its trading day is over"))
            return
        if locked.status == OrderStatus.UNKNOWN:
            order_apply_event(locked, OrderEvent.RECONCILED_MISSING, actor=Actor.system("reconciliation"),
                              reason=bilingual("not found at the broker; sending again"))
        else:
            locked.save(update_fields=["updated_at"])  # claim it: others now see it fresh
    order_place(broker, locked)


def accounts_poll_later(account_names: Iterable[str]) -> None:
    """Enqueue a status poll of each named account (e.g. after a quote filled paper orders)."""
    from orders import tasks

    for account_id in Account.objects.filter(name__in=list(account_names)).values_list("pk", flat=True):
        tasks.poll_account.delay(account_id)


def accounts_poll_all() -> int:
    """Poll every account that has orders at or on the way to the broker.

    Asks each account whether it has such an order (one probe of the (account, status) index),
    rather than listing the open orders, so the job costs accounts, not open orders."""
    polled = Order.objects.filter(account=models.OuterRef("pk"), status__in=POLLED_STATUSES)
    ids = Account.objects.filter(models.Exists(polled)).values_list("pk", flat=True)
    return sum(account_poll_or_wait(account_id=pk) for pk in list(ids))  # one broker down does not stop the others


def account_poll_or_wait(*, account_id: int) -> int:
    """:func:`account_poll`, with a broker that is away or refusing logged (a warning, no
    traceback) instead of raised: the periodic poll asks again. Returns how many orders changed."""
    try:
        return account_poll(account_id=account_id)
    except BrokerError as exc:
        log.warning("poll of account %s failed: %s", account_id, exc.message)
        return 0


def broker_back(*, account_id: int) -> None:
    """The account's broker is reachable again (brokers.connection.link_changed): poll it first
    (unknown outcomes are queried, never sent again), then offer the orders that waited."""
    from orders import tasks

    try:
        tasks.poll_account.delay(account_id)
        orders_release_waiting(account_id=account_id)
    except Exception:  # the poll and the sweep catch up on their own
        log.exception("after the reconnect of account %s", account_id)
