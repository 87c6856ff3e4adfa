"""The kill switch: switch a trading state and, if asked, cancel the open orders it concerns.

Switching the state is risk control's (``risk.services.trading_state_set``); cancelling orders is
the order path's. Risk sits below orders and never calls it, so the two are joined here, in the
orders layer; the admin actions and ``manage.py trading_state`` call this.
"""

from __future__ import annotations

import logging

from audit.services import Actor
from orders.models import Order, OrderStatus
from orders.services import order_cancel
from risk.context import OPEN_STATUSES
from risk.services import trading_state_set
from trading.errors import TradingError
from trading.models import Account

log = logging.getLogger(__name__)


def trading_state_switch(*, account: Account | None = None, state: str, reason: str, actor: Actor,
                         cancel_open_orders: bool = False) -> str:
    """Switch the trading state of ``account`` (None = the global state) as ``trading_state_set``
    does; with ``cancel_open_orders`` then cancel the open orders (of the account, or of every
    account), each in its own transaction; orders on their way to the broker are left to it.
    Returns the previous state."""
    before = trading_state_set(account=account, state=state, reason=reason, actor=actor)
    if cancel_open_orders:
        orders_cancel_open(account=account, actor=actor, reason=reason.strip())
    return before


def orders_cancel_open(*, account: Account | None, actor: Actor, reason: str) -> int:
    """Ask to cancel every open order of ``account`` (None = of every account) not already being
    cancelled, each in its own transaction. Returns how many cancels were accepted."""
    query = Order.objects.filter(status__in=[s for s in OPEN_STATUSES if s not in (OrderStatus.CANCEL_REQUESTED,)])
    if account is not None:
        query = query.filter(account_id=account.pk)
    cancelled = 0
    for order_id in query.values_list("pk", flat=True):
        try:
            order_cancel(order_id=order_id, actor=actor, reason=f"交易状态切换撤单: {reason}")
            cancelled += 1
        except TradingError as exc:  # on its way to the broker, or ended meanwhile
            log.info("open order %s not cancelled on state switch: %s", order_id, exc.message)
    return cancelled
