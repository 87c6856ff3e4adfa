"""Reads of orders and fills."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Any, TypeVar

from django.db.models import Model, QuerySet

from orders.models import Fill, Order
from trading.errors import InvalidOrder, NotFound
from trading.i18n import bilingual
from trading.selectors import money, price_text

M = TypeVar("M", bound=Model)
MAX_ID = 2**63 - 1  # the largest key a BIGINT holds


def order_visible(*, order_id: int, accounts: Iterable[str]) -> Order:
    if not 0 < order_id <= MAX_ID:  # no such row can exist (and the databases refuse to compare with it)
        raise NotFound(bilingual("order {order_id} not found", order_id=order_id))
    order = Order.objects.select_related("account", "instrument").filter(pk=order_id, account__name__in=list(accounts)).first()
    if order is None:
        raise NotFound(bilingual("order {order_id} not found", order_id=order_id))
    return order


def listing_filter(qs: QuerySet[M], *, accounts: Iterable[str], account: str | None, states: str | None,
                   state_field: str, symbol: str | None, strategy: str | None) -> QuerySet[M]:
    """The REST lists' filters on rows with an account, an instrument, a strategy and a state
    (orders, conditional orders): the caller's accounts, one of them, states "A,B", a symbol
    (refused with a 422 naming ``symbol`` when it is not one), a strategy."""
    qs = qs.select_related("account", "instrument").filter(account__name__in=list(accounts))
    if account:
        qs = qs.filter(account__name=account)
    if states:
        qs = qs.filter(**{f"{state_field}__in": [s.strip().upper() for s in states.split(",")]})
    if symbol:
        from trading.market_rules import MarketRuleViolation, normalize_symbol

        try:
            code, exchange = normalize_symbol(symbol)
        except MarketRuleViolation as exc:
            raise InvalidOrder.single("symbol", exc.rule, exc.message, location="query") from None
        qs = qs.filter(instrument__code=code, instrument__exchange=exchange)
    if strategy:
        qs = qs.filter(strategy=strategy)
    return qs


def order_list(*, accounts: Iterable[str], account: str | None = None, status: str | None = None,
               symbol: str | None = None, strategy: str | None = None, limit: int = 100, offset: int = 0) -> QuerySet[Order]:
    """Orders visible to the caller, newest first."""
    qs = listing_filter(Order.objects.all(), accounts=accounts, account=account, states=status, state_field="status",
                        symbol=symbol, strategy=strategy)
    return qs.order_by("-id")[offset : offset + limit]


def order_open_list(*, account_id: int) -> QuerySet[Order]:
    from orders.models import TERMINAL_STATUSES

    return Order.objects.filter(account_id=account_id).exclude(status__in=TERMINAL_STATUSES)


def order_as_json(order: Order) -> dict[str, Any]:
    return {
        "id": order.pk,
        "client_order_id": order.client_order_id,
        "account": order.account.name,
        "symbol": order.instrument.symbol,
        "side": order.side,
        "order_type": order.order_type,
        "price": price_text(order.price),
        "quantity": order.quantity,
        "filled_quantity": order.filled_quantity,
        "avg_fill_price": price_text(order.avg_fill_price),
        "status": order.status,
        "status_reason": order.status_reason,
        "broker_order_id": order.broker_order_id,
        "risk": [
            {"rule": v.get("rule", ""), "passed": bool(v.get("passed")), "action": v.get("action", ""), "message": v.get("message", "")}
            for v in (order.risk_verdicts or [])
        ],
        "strategy": order.strategy,
        "replaces": order.replaces_id,
        "fees": money(order.fees_paid),
        "created_at": order.created_at,
        "updated_at": order.updated_at,
    }


def fill_as_json(fill: Fill, order: Order) -> dict[str, Any]:
    return {
        "id": fill.pk,
        "order_id": order.pk,
        "broker_trade_id": fill.broker_trade_id,
        "symbol": order.instrument.symbol,
        "side": order.side,
        "quantity": fill.quantity,
        "price": price_text(fill.price),
        "amount": money(fill.amount),
        "commission": money(fill.commission),
        "stamp_duty": money(fill.stamp_duty),
        "transfer_fee": money(fill.transfer_fee),
        "other_fees": money(fill.other_fees),
        "fees": money(fill.fees),
        "filled_at": fill.filled_at,
        "trading_day": fill.trading_day.isoformat(),
    }


def fill_list_of_day(*, account_name: str, day: date) -> list[dict[str, Any]]:
    fills = Fill.objects.select_related("order__instrument", "order__account").filter(
        order__account__name=account_name, trading_day=day
    ).order_by("filled_at", "id")
    return [fill_as_json(f, f.order) for f in fills]
