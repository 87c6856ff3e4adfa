"""Recording the broker's state of an order: status events and fills into positions and cash.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.db import transaction

from audit.services import Actor, audit_record
from brokers.interface import BrokerOrder, BrokerOrderStatus, BrokerTrade
from orders.models import (
    WORKING_STATUSES,
    Fill,
    Order,
    OrderStatus,
)
from orders.services.freezes import release_freezes
from orders.services.locks import lock_order
from orders.services.modify import after_order_ended
from orders.state_machine import OrderEvent, order_apply_event
from risk.services import risk_post_trade
from trading import market_rules
from trading.events import EventKind, publish
from trading.market_rules import Side
from trading.models import Account, CashEntryKind, Position
from trading.money import ROUND_HALF_EVEN, to_cent
from trading.selectors import price_text
from trading.services import (
    LedgerPost,
    cash_post,
    ledger_flush,
    position_apply_fill,
    position_for_update,
)

log = logging.getLogger(__name__)


_RECONCILED = {
    BrokerOrderStatus.OPEN: OrderEvent.RECONCILED_OPEN,
    BrokerOrderStatus.PARTIALLY_FILLED: OrderEvent.RECONCILED_PARTIALLY_FILLED,
    BrokerOrderStatus.FILLED: OrderEvent.RECONCILED_FILLED,
    BrokerOrderStatus.CANCELLED: OrderEvent.RECONCILED_CANCELLED,
    BrokerOrderStatus.REJECTED: OrderEvent.RECONCILED_REJECTED,
    BrokerOrderStatus.EXPIRED: OrderEvent.RECONCILED_EXPIRED,
}


def _target_event(order: Order, broker_order: BrokerOrder, new_fills: int) -> OrderEvent | None:
    status = broker_order.status
    if order.status in (OrderStatus.UNKNOWN, OrderStatus.SUBMITTING):
        if order.status == OrderStatus.SUBMITTING:
            # The broker has it although its answer never reached us: record the
            # answer it gave (then, via order_sync, what happened since).
            return OrderEvent.BROKER_REJECTED if status == BrokerOrderStatus.REJECTED else OrderEvent.BROKER_ACCEPTED
        if order.filled_quantity >= order.quantity:
            return OrderEvent.RECONCILED_FILLED
        if status == BrokerOrderStatus.OPEN and order.filled_quantity:
            return OrderEvent.RECONCILED_PARTIALLY_FILLED
        return _RECONCILED[status]
    if order.filled_quantity >= order.quantity:
        return OrderEvent.FILLED
    if status == BrokerOrderStatus.CANCELLED:
        return OrderEvent.CANCELLED
    if status == BrokerOrderStatus.EXPIRED:
        return OrderEvent.EXPIRED
    if status == BrokerOrderStatus.REJECTED:
        return OrderEvent.BROKER_REJECTED
    if new_fills:
        return OrderEvent.PARTIALLY_FILLED
    return None


def order_sync(*, order_id: int, broker_order: BrokerOrder, trades: list[BrokerTrade]) -> Order:
    """Bring one order in line with the broker's record of it: new fills update the
    position and cash, and the status follows the broker's. Idempotent."""
    with transaction.atomic():
        account, order = lock_order(order_id)
        if order.is_terminal:
            return order
        broker_actor = Actor.broker(account.broker_kind)
        known = set(order.fills.values_list("broker_trade_id", flat=True))
        posts: list[LedgerPost] = []
        new_fills = 0
        position: Position | None = None
        for trade in sorted(trades, key=lambda t: (t.filled_at, t.broker_trade_id)):
            if trade.broker_trade_id in known:
                continue
            if trade.quantity > order.remaining_quantity:
                log.error("broker trade %s overfills order %s; ignored", trade.broker_trade_id, order.pk)
                continue
            position = position or position_for_update(account, order.instrument)
            _apply_fill(account, order, position, trade, actor=broker_actor, posts=posts)
            known.add(trade.broker_trade_id)  # a trade reported twice in one answer counts once
            new_fills += 1
        if not order.broker_order_id:
            order.broker_order_id = broker_order.broker_order_id
        event = _target_event(order, broker_order, new_fills)
        fields = ["filled_quantity", "filled_amount", "fees_paid", "commission_charged", "frozen_amount", "frozen_quantity", "broker_order_id"]
        if event is not None:
            order_apply_event(order, event, actor=broker_actor, reason=broker_order.message, update_fields=fields,
                              extra={"filled_quantity": order.filled_quantity})
            if event == OrderEvent.BROKER_ACCEPTED and order.status == OrderStatus.SUBMITTED:
                second = _target_event(order, broker_order, new_fills)
                if second is not None:
                    order_apply_event(order, second, actor=broker_actor, reason=broker_order.message, update_fields=fields)
        elif new_fills:
            order.save(update_fields=[*fields, "updated_at"])
        if order.is_terminal:
            release_freezes(order, actor=broker_actor, posts=posts, position=position)
            order.save(update_fields=["frozen_amount", "frozen_quantity"])
        ledger_flush(account, posts)  # announces the balance when money moved
        if position is not None:
            position_published(account, position, order.instrument.symbol)
        risk_post_trade(account=account, order=order, new_fills=new_fills)  # loss, drawdown, broker rejections
        if order.is_terminal:
            after_order_ended(order, actor=broker_actor)
    return order


def _apply_fill(account: Account, order: Order, position: Position, trade: BrokerTrade, *, actor: Actor, posts: list[LedgerPost]) -> Fill:
    """Record one broker trade: the fill row, the order's totals, position and cash. Caller holds the locks."""
    fees = trade.fees
    held_before = {"quantity": position.quantity, "cost_amount": str(position.cost_amount)}
    realized = position_apply_fill(position, side=order.side, quantity=trade.quantity, amount=trade.amount, fees=fees,
                                   trading_day=trade.trading_day, t0=market_rules.is_t0(order.instrument))
    fill = Fill.objects.create(
        order=order,
        broker_trade_id=trade.broker_trade_id,
        quantity=trade.quantity,
        price=trade.price,
        amount=trade.amount,
        commission=trade.commission,
        stamp_duty=trade.stamp_duty,
        transfer_fee=trade.transfer_fee,
        other_fees=trade.other_fees,
        fees=fees,
        realized_pnl=realized,
        filled_at=trade.filled_at,
        trading_day=trade.trading_day,
    )
    remaining_before = order.remaining_quantity
    order.filled_quantity += trade.quantity
    order.filled_amount += trade.amount
    order.fees_paid += fees
    order.commission_charged += trade.commission
    if order.side == Side.BUY:
        release = order.frozen_amount if order.remaining_quantity == 0 else to_cent(order.frozen_amount * trade.quantity / remaining_before, ROUND_HALF_EVEN)
        if release:
            cash_post(account, kind=CashEntryKind.UNFREEZE, amount=-release, actor=actor, order=order, fill=fill, memo="成交解冻", defer=posts)
            order.frozen_amount -= release
        cash_post(account, kind=CashEntryKind.FILL, amount=-trade.amount, actor=actor, order=order, fill=fill, memo=f"买入 {order.instrument.symbol}", defer=posts)
    else:
        order.frozen_quantity = max(order.frozen_quantity - trade.quantity, 0)
        cash_post(account, kind=CashEntryKind.FILL, amount=trade.amount, actor=actor, order=order, fill=fill, memo=f"卖出 {order.instrument.symbol}", defer=posts)
    if fees:
        cash_post(account, kind=CashEntryKind.FEE, amount=-fees, actor=actor, order=order, fill=fill, memo="交易费用", defer=posts)
    # The position's change rides in the fill's event (before and after): one event per fill.
    audit_record(actor=actor, action="order.filled", object_type="order", object_id=order.pk, account=account.name,
                 before={"position": held_before},
                 after={"fill": fill.pk, "broker_trade_id": trade.broker_trade_id, "quantity": trade.quantity,
                        "price": str(trade.price), "fees": str(fees),
                        "position": {"symbol": order.instrument.symbol, "quantity": position.quantity,
                                     "cost_amount": str(position.cost_amount), "realized_pnl": str(realized)}})
    publish(EventKind.FILL, account.name, {
        "id": fill.pk, "order": order.pk, "broker_trade_id": trade.broker_trade_id, "symbol": order.instrument.symbol,
        "side": order.side, "quantity": trade.quantity, "price": price_text(trade.price), "amount": str(trade.amount),
        "fees": str(fees), "filled_at": trade.filled_at.isoformat()})
    return fill


def position_published(account: Account, position: Position, symbol: str) -> None:
    """Announce ``position`` as it stands now, after commit (no query: the row in hand)."""
    publish(EventKind.POSITION, account.name, {
        "symbol": symbol, "quantity": position.quantity, "frozen_quantity": position.frozen_quantity,
        "unsettled_quantity": position.unsettled_quantity, "cost_amount": str(position.cost_amount),
        "realized_pnl": str(position.realized_pnl)})


RESTING_AT_BROKER = (BrokerOrderStatus.OPEN, BrokerOrderStatus.PARTIALLY_FILLED)


def nothing_new_at_broker(order: Order, broker_order: BrokerOrder) -> bool:
    """Whether the broker's record adds nothing to ours: working here, resting there, same fills."""
    return (order.status in WORKING_STATUSES and broker_order.status in RESTING_AT_BROKER
            and broker_order.filled_quantity == order.filled_quantity)


# How much earlier than our send the broker's clock may stamp an order and it still be ours.
MATCH_CLOCK_SKEW = timedelta(seconds=60)


def broker_order_of(order: Order, broker_orders: list[BrokerOrder], *, carries_ref: bool) -> BrokerOrder | None:
    """Which of the broker's orders is ``order``: by our reference or the broker's id; for a broker
    that cannot carry our reference (``capabilities.client_ref`` False: easytrader's GUI clients),
    by what the order says: the same symbol, side, type, quantity and price, stamped no earlier
    than our send (give or take the clocks), and not already known as another of our orders. The
    earliest such. Without this, an order whose answer was lost would look missing and be sent
    again."""
    for candidate in broker_orders:
        if candidate.client_ref == str(order.pk) or (order.broker_order_id and candidate.broker_order_id == order.broker_order_id):
            return candidate
    if carries_ref or order.broker_order_id:
        return None
    sent = order.submitted_at or order.created_at
    alike = [
        o for o in broker_orders
        if (o.symbol, o.side, o.order_type, o.quantity) == (order.instrument.symbol, order.side, order.order_type, order.quantity)
        and (o.price == order.price or order.order_type != "LIMIT")
        and (sent is None or o.created_at >= sent - MATCH_CLOCK_SKEW)
    ]
    if not alike:
        return None
    known = set(Order.objects.filter(account_id=order.account_id, broker_order_id__in=[o.broker_order_id for o in alike])
                .exclude(pk=order.pk).values_list("broker_order_id", flat=True))
    free = sorted((o for o in alike if o.broker_order_id not in known), key=lambda o: (o.created_at, o.broker_order_id))
    return free[0] if free else None
