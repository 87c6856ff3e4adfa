"""Orders that never reached the broker and whose trading day is over.
"""

from __future__ import annotations

import logging
from datetime import datetime

from django.db import transaction

from audit.services import Actor
from orders.models import (
    Order,
    OrderStatus,
)
from orders.services.freezes import release_freezes
from orders.services.locks import lock_order
from orders.services.modify import after_order_ended
from orders.state_machine import OrderEvent, order_apply_event
from trading.clock import now
from trading.i18n import bilingual
from trading.models import Account
from trading.selectors import account_trading_day
from trading.services import (
    LedgerPost,
    ledger_flush,
)

log = logging.getLogger(__name__)


def orders_expire_day(*, at: datetime | None = None) -> int:
    """Expire orders that never reached the broker and whose trading day is over.

    Orders resting at the broker expire when the broker says so (account_poll).
    """
    at = at or now()
    expired = 0
    today = {a.pk: account_trading_day(a, at) for a in Account.objects.only("pk", "session_mode")}
    candidates = Order.objects.filter(status__in=[OrderStatus.NEW, OrderStatus.PENDING_APPROVAL]).values_list("pk", "account_id", "trading_day")
    for order_id, account_id, trading_day in candidates:
        if trading_day >= today[account_id]:
            continue
        with transaction.atomic():
            account, order = lock_order(order_id)
            if order.status not in (OrderStatus.NEW, OrderStatus.PENDING_APPROVAL):
                continue
            expire_locked(account, order, OrderEvent.EXPIRED, actor=Actor.system("expiry"),
                           reason=bilingual("trading day over"))
        expired += 1
    return expired


def expire_locked(account: Account, order: Order, event: OrderEvent, *, actor: Actor, reason: str) -> None:
    """End an order that never reached the broker and whose trading day is over; give back its freezes.
    Caller holds the account and order locks."""
    posts: list[LedgerPost] = []
    release_freezes(order, actor=actor, posts=posts, memo="过期解冻")
    order_apply_event(order, event, actor=actor, reason=reason, update_fields=["frozen_amount", "frozen_quantity"])
    ledger_flush(account, posts)
    after_order_ended(order, actor=actor)
