"""The order path's row locks and the account lookups.

Lock order (README, "Locks"): the account row first; then, under it, that account's order and
position rows. A worker that changes only an order's status locks that order row alone and takes
no other lock in that transaction. Instrument rows are never locked.
"""

from __future__ import annotations

import logging

from orders.models import (
    Order,
)
from trading.errors import (
    NotFound,
)
from trading.i18n import bilingual
from trading.models import Account
from trading.services import (
    account_lock,
)

log = logging.getLogger(__name__)


_ACCOUNT_IDS: dict[str, int] = {}


def account_id_by_name(name: str) -> int:
    """The id of account ``name`` (names never change, so the answer is cached); 404 if unknown."""
    account_id = _ACCOUNT_IDS.get(name)
    if account_id is None:
        account_id = Account.objects.filter(name=name).values_list("pk", flat=True).first()
        if account_id is None:
            raise NotFound(bilingual("unknown account {name!r}", name=name))
        _ACCOUNT_IDS[name] = account_id
    return account_id


def account_by_name(name: str) -> Account:
    account = Account.objects.filter(name=name).first()
    if account is None:
        raise NotFound(bilingual("unknown account {name!r}", name=name))
    return account


def lock_order(order_id: int) -> tuple[Account, Order]:
    """Lock the order's account, then the order (the fixed lock order, README "Locks").

    Only those two rows: ``of=("self",)`` keeps the joined instrument row unlocked.
    """
    account_id = Order.objects.filter(pk=order_id).values_list("account_id", flat=True).first()
    if account_id is None:
        raise NotFound(bilingual("order {order_id} not found", order_id=order_id))
    account = account_lock(account_id)
    order = Order.objects.select_for_update(of=("self",)).select_related("instrument").get(pk=order_id)
    order.account = account
    return account, order


def lock_order_alone(order_id: int) -> Order | None:
    """Lock one order row and nothing else (a worker that changes only the order's status).

    A transaction that takes it never takes an account lock afterwards, so it cannot
    close a cycle with the paths that lock the account first.
    """
    return Order.objects.select_for_update(of=("self",)).select_related("account", "instrument").filter(pk=order_id).first()


def relock_order_alone(order: Order) -> Order:
    """``lock_order_alone`` for an order read earlier in this process: its row again, locked,
    with the account and instrument rows already in hand (not read again)."""
    locked = Order.objects.select_for_update().get(pk=order.pk)
    locked.account, locked.instrument = order.account, order.instrument
    return locked
