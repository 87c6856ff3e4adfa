"""Admission: holdings checks and risk control for a NEW order, and the freezes it takes.

A buy freezes its cash (price x quantity and estimated fees), a sell its shares; what an order
still holds goes back when it ends (``release_freezes``). Callers hold the account lock.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from audit.services import Actor
from orders.models import (
    Order,
    OrderStatus,
)
from orders.services.outbox import SUBMIT, dispatch_on_commit
from orders.state_machine import OrderEvent, order_apply_event
from risk.controller import Decision, RiskReads, risk_check_order
from risk.services import risk_order_recorded
from trading import market_rules
from trading.clock import now
from trading.errors import (
    InputRule,
    InvalidOrder,
)
from trading.i18n import bilingual
from trading.market_rules import MarketRuleViolation, OrderType, Side
from trading.models import CashEntryKind, Position, Quote
from trading.money import ZERO
from trading.services import (
    LedgerPost,
    cash_post,
    position_for_update,
    position_freeze,
    position_unfreeze,
)

log = logging.getLogger(__name__)


def _buy_freeze_amount(order: Order, quote: Quote | None) -> Decimal:
    price = order.price
    if order.order_type == OrderType.MARKET:
        price = order.protection_price
        if price is None and quote and quote.prev_close:
            limits = market_rules.limit_prices(order.instrument, quote.prev_close, order.trading_day)
            price = limits[1] if limits else None
        if price is None:
            raise InvalidOrder.single(
                "protection_price",
                InputRule.REQUIRED,
                bilingual("a market buy needs a protection_price when no limit-up price is known"),
            )
    assert price is not None
    return market_rules.estimate_buy_freeze(order.account.fees, order.instrument, price, order.quantity, order.trading_day)


def _st_bought_today(order: Order, releasing: Order | None = None) -> int:
    from django.db.models import Sum

    total = (
        Order.objects.filter(account=order.account, instrument=order.instrument, side=Side.BUY, trading_day=order.trading_day)
        .exclude(status__in=[OrderStatus.REJECTED, OrderStatus.CANCELLED, OrderStatus.EXPIRED])
        .exclude(pk__in=[pk for pk in (order.pk, releasing.pk if releasing else None) if pk is not None])
        .aggregate(q=Sum("quantity"))["q"]
    )
    return int(total or 0)


@dataclass
class Admission:
    """What admitting a NEW order decided: the risk event (None = passes) and what to freeze."""

    event: OrderEvent | None
    reason: str
    verdicts: list[dict[str, Any]]
    freeze_amount: Decimal = ZERO
    freeze_quantity: int = 0
    position: Position | None = None


def admission_for(order: Order, *, quote: Quote | None,
               prefetched: tuple[RiskReads, list[list[tuple[Any, ...]]]] | None = None,
               releasing: Order | None = None) -> Admission:
    """Holdings checks and risk control for a NEW order; writes nothing.

    ``releasing``: an order whose freeze goes back before this one takes its own (the
    original of a modify): what it holds counts as available.

    Precondition: the caller holds the account lock. Raises InvalidOrder for a
    rule the exchange would refuse (sellable quantity, cash, lots of a sell).
    """
    account = order.account
    position: Position | None = None
    freeze_amount, freeze_quantity = ZERO, 0
    held = 0
    released_amount = releasing.frozen_amount if releasing is not None else ZERO
    released_quantity = releasing.frozen_quantity if releasing is not None else 0
    if order.side == Side.SELL:
        position = position_for_update(account, order.instrument)
        held = position.quantity
    try:
        market_rules.check_quantity(order.instrument, order.side, order.order_type, order.quantity, held, order.trading_day)
    except MarketRuleViolation as exc:
        raise InvalidOrder.single(exc.field, exc.rule, exc.message) from None
    if position is not None:
        sellable = position.sellable_quantity(order.trading_day) + released_quantity
        if order.quantity > sellable:
            raise InvalidOrder.single(
                "quantity",
                InputRule.SELLABLE_QUANTITY,
                bilingual("only {sellable} shares of {symbol} are sellable today (T+1 and open sells excluded); got {quantity}", sellable=sellable, symbol=order.instrument.symbol, quantity=order.quantity),
            )
        freeze_quantity = order.quantity
    else:
        if order.instrument.is_st:
            limit = market_rules.st_max_daily_buy(order.trading_day)
            bought = _st_bought_today(order, releasing)
            if bought + order.quantity > limit:
                raise InvalidOrder.single(
                    "quantity",
                    InputRule.ST_DAILY_BUY_LIMIT,
                    bilingual("ST stocks: at most {limit} shares a day per account; {bought} already ordered today", limit=limit, bought=bought),
                )
        freeze_amount = _buy_freeze_amount(order, quote)
        available = account.available + released_amount
        if freeze_amount > available:
            raise InvalidOrder.single(
                "quantity",
                InputRule.AVAILABLE_CASH,
                bilingual("order needs {freeze_amount} CNY incl. estimated fees; available {available}", freeze_amount=freeze_amount, available=available),
            )
    outcome = risk_check_order(order, prefetched=prefetched)
    event = {Decision.PASS: None, Decision.REVIEW: OrderEvent.RISK_HELD, Decision.REJECT: OrderEvent.RISK_REJECTED}[outcome.decision]
    return Admission(event, outcome.reason, [v.as_json() for v in outcome.verdicts], freeze_amount, freeze_quantity, position)


def freeze_admitted(order: Order, admission: Admission, *, actor: Actor, posts: list[LedgerPost]) -> None:
    """Hold the cash of a buy or the shares of a sell for an admitted (saved) order;
    sets the order's frozen fields, which the caller saves."""
    if admission.freeze_amount:
        cash_post(order.account, kind=CashEntryKind.FREEZE, amount=admission.freeze_amount, actor=actor, order=order,
                  memo="委托冻结", defer=posts)
    if admission.freeze_quantity and admission.position is not None:
        position_freeze(admission.position, admission.freeze_quantity, today=order.trading_day)
    order.frozen_amount = admission.freeze_amount
    order.frozen_quantity = admission.freeze_quantity


def admit_saved(order: Order, *, actor: Actor, quote: Quote | None, posts: list[LedgerPost]) -> None:
    """Admit an order that is already saved (a replacement whose original has ended)."""
    admission = admission_for(order, quote=quote)
    order.risk_verdicts = admission.verdicts
    order.admitted_at = now()
    if admission.event != OrderEvent.RISK_REJECTED:
        freeze_admitted(order, admission, actor=actor, posts=posts)
    fields = ["risk_verdicts", "frozen_amount", "frozen_quantity", "admitted_at"]
    if admission.event is not None:
        order_apply_event(order, admission.event, actor=actor, reason=admission.reason, update_fields=fields)
    else:
        order.save(update_fields=fields)
        dispatch_on_commit(order, SUBMIT)
    risk_order_recorded(order)


def release_freezes(order: Order, *, actor: Actor, posts: list[LedgerPost], position: Position | None = None, memo: str = "委托结束解冻") -> None:
    """Give back what ``order`` still holds (cash of a buy, shares of a sell). Caller holds the account lock."""
    if order.frozen_amount > 0:
        cash_post(order.account, kind=CashEntryKind.UNFREEZE, amount=-order.frozen_amount, actor=actor, order=order, memo=memo, defer=posts)
        order.frozen_amount = ZERO
    if order.frozen_quantity > 0:
        position = position or position_for_update(order.account, order.instrument)
        position_unfreeze(position, order.frozen_quantity)
        order.frozen_quantity = 0
