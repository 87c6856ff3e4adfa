"""Order input: parsing and checking what a client sends, and building the order from it.

``order_check`` applies the field and market rules (lots, ticks, price band, sessions) and
answers a ``CheckedOrder``; ``build_order`` turns it into an unsaved ``Order``. Nothing here
writes or locks.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from audit.models import AuditEvent
from audit.services import Actor, audit_event
from orders.models import (
    Order,
)
from trading import calendar, market_rules
from trading.clock import now
from trading.errors import (
    FieldProblem,
    InputRule,
    InvalidOrder,
)
from trading.i18n import bilingual
from trading.market_rules import MarketRuleViolation, OrderType, Side
from trading.models import Account, Instrument, Quote, SessionMode
from trading.money import MAX_PRICE, MAX_QUANTITY
from trading.selectors import account_trading_day, instrument_active, quote_latest
from trading.suitability import missing_permission

log = logging.getLogger(__name__)


@dataclass
class OrderInput:
    """An order as a strategy or an operator sends it, before validation."""

    account: str
    symbol: str
    side: str
    order_type: str
    quantity: Any
    price: Any = None
    client_order_id: str | None = None
    strategy: str = ""
    protection_price: Any = None


@dataclass
class CheckedOrder:
    """An order whose fields and market rules were checked; ready to be admitted."""

    account: Account
    instrument: Instrument
    side: str
    order_type: str
    quantity: int
    price: Decimal | None
    protection_price: Decimal | None
    client_order_id: str
    strategy: str
    trading_day: date
    quote: Quote | None = None


def _decimal(value: Any, field_name: str, problems: list[FieldProblem]) -> Decimal | None:
    if value is None or value == "":
        return None
    if isinstance(value, float):
        # A binary float cannot carry a price exactly: API.md sends prices as decimal strings.
        problems.append(FieldProblem(field_name, InputRule.DECIMAL, bilingual("must be a decimal string such as \"10.50\", not a JSON number; got {value!r}", field_name=field_name, value=value)))
        return None
    try:
        result = Decimal(str(value))
    except (InvalidOperation, ValueError):
        problems.append(FieldProblem(field_name, InputRule.DECIMAL, bilingual("must be a decimal string; got {value!r}", field_name=field_name, value=value)))
        return None
    if not result.is_finite():
        problems.append(FieldProblem(field_name, InputRule.DECIMAL, bilingual("must be finite; got {value!r}", field_name=field_name, value=value)))
        return None
    return result


def instrument_lookup(symbol: str) -> Instrument:
    """The active instrument for any accepted spelling of ``symbol``; 422 if unknown."""
    try:
        code, exchange = market_rules.normalize_symbol(symbol)
    except MarketRuleViolation as exc:
        raise InvalidOrder.single("symbol", exc.rule, exc.message) from None
    instrument = instrument_active(exchange, code)
    if instrument is None:
        raise InvalidOrder.single(
            "symbol", InputRule.UNKNOWN_SYMBOL, bilingual("unknown symbol {value}", value=market_rules.format_symbol(code, exchange))
        )
    return instrument


def permission_refusal(account: Account, instrument: Instrument, permission: str) -> str:
    """The message of a buy refused for a trading permission the account lacks."""
    return bilingual("account {account} has no {permission} trading permission: it may not buy {symbol} until the broker grants it",
                     account=account.name, permission=permission, symbol=instrument.symbol)


def _check_fields(data: OrderInput, problems: list[FieldProblem]) -> tuple[str, str, int, Decimal | None, Decimal | None]:
    side = str(data.side or "").upper()
    if side not in Side.values:
        problems.append(FieldProblem("side", InputRule.CHOICE, bilingual("side must be BUY or SELL; got {side!r}", side=data.side)))
    order_type = str(data.order_type or "").upper()
    if order_type not in OrderType.values:
        problems.append(
            FieldProblem("order_type", InputRule.CHOICE, bilingual("order_type must be LIMIT or MARKET; got {order_type!r}", order_type=data.order_type))
        )
    quantity = 0
    if isinstance(data.quantity, bool) or not isinstance(data.quantity, int):
        problems.append(FieldProblem("quantity", InputRule.INTEGER, bilingual("quantity must be a whole number of shares; got {quantity!r}", quantity=data.quantity)))
    elif data.quantity <= 0:
        problems.append(FieldProblem("quantity", InputRule.POSITIVE, bilingual("quantity must be positive; got {quantity}", quantity=data.quantity)))
    elif data.quantity > MAX_QUANTITY:
        problems.append(FieldProblem("quantity", InputRule.MAX_QUANTITY, bilingual("quantity must be at most {max_quantity}; got {quantity}", max_quantity=MAX_QUANTITY, quantity=data.quantity)))
    else:
        quantity = data.quantity
    price = _decimal(data.price, "price", problems)
    protection_price = _decimal(data.protection_price, "protection_price", problems)
    for name, value in (("price", price), ("protection_price", protection_price)):
        if value is not None and value <= 0:
            problems.append(FieldProblem(name, InputRule.POSITIVE, bilingual("{name} must be positive; got {value}", name=name, value=value)))
        elif value is not None and value >= MAX_PRICE:
            problems.append(FieldProblem(name, InputRule.MAX_PRICE, bilingual("{name} must be below {max_price}; got {value}", name=name, max_price=MAX_PRICE, value=value)))
    if order_type == OrderType.LIMIT and data.price in (None, ""):
        problems.append(FieldProblem("price", InputRule.REQUIRED, bilingual("price is required for a LIMIT order")))
    if data.client_order_id is not None and not (0 < len(str(data.client_order_id)) <= 64):
        problems.append(FieldProblem("client_order_id", InputRule.LENGTH, bilingual("client_order_id must be 1-64 characters")))
    if len(data.strategy or "") > 64:
        problems.append(FieldProblem("strategy", InputRule.LENGTH, bilingual("strategy must be at most 64 characters")))
    return side, order_type, quantity, price, protection_price


def order_check(data: OrderInput, *, account: Account, at: datetime | None = None) -> CheckedOrder:
    """Check an order's fields and the market rules that need no lock; raises InvalidOrder
    naming every invalid field. Checks that depend on the account's holdings run at admission."""
    problems: list[FieldProblem] = []
    side, order_type, quantity, price, protection_price = _check_fields(data, problems)
    instrument: Instrument | None = None
    try:
        instrument = instrument_lookup(data.symbol)
    except InvalidOrder as exc:
        problems.extend(exc.problems)
    if problems or instrument is None:
        raise InvalidOrder(problems)
    missing = missing_permission(account.trading_permissions, instrument, side)
    if missing is not None:
        # Before the session and price checks: without the permission nothing else matters.
        raise InvalidOrder.single("symbol", InputRule.TRADING_PERMISSION, permission_refusal(account, instrument, missing))
    at = at or now()
    trading_day = account_trading_day(account, at)
    if account.session_mode == SessionMode.REAL:
        phase = calendar.session_phase(at)
        if not calendar.accepts_new_orders(phase):
            raise InvalidOrder.single("symbol", InputRule.SESSION_CLOSED, bilingual("outside trading session: {label}", label=phase.label))
        if order_type == OrderType.MARKET and not calendar.accepts_market_orders(phase):
            raise InvalidOrder.single("order_type", InputRule.MARKET_ORDER_NOT_ALLOWED, bilingual("market orders only in continuous trading"))
    quote = quote_latest(instrument.pk)
    prev_close = quote.prev_close if quote else None
    try:
        market_rules.check_price(instrument, side, order_type, price, prev_close, trading_day)
    except MarketRuleViolation as exc:
        problems.append(FieldProblem(exc.field, exc.rule, exc.message))
    if order_type == OrderType.MARKET and protection_price is not None:
        try:
            market_rules.check_protection_price(instrument, protection_price, prev_close, trading_day)
        except MarketRuleViolation as exc:
            problems.append(FieldProblem(exc.field, exc.rule, exc.message))
    if problems:
        raise InvalidOrder(problems)
    return CheckedOrder(
        account=account,
        instrument=instrument,
        side=side,
        order_type=order_type,
        quantity=quantity,
        price=price,
        protection_price=protection_price,
        client_order_id=str(data.client_order_id) if data.client_order_id else "",
        strategy=data.strategy or "",
        trading_day=trading_day,
        quote=quote,
    )


def _order_snapshot(order: Order) -> dict[str, Any]:
    return {
        "client_order_id": order.client_order_id,
        "symbol": order.instrument.symbol,
        "side": order.side,
        "order_type": order.order_type,
        "price": str(order.price) if order.price is not None else None,
        "quantity": order.quantity,
        "strategy": order.strategy,
        "replaces": order.replaces_id,
    }


def reference_price_of(checked: CheckedOrder) -> Decimal | None:
    """The market's price as the order comes in, from the quote the checks read: the price cage's
    reference (a buy the ask, else bid, last, previous close; a sell the bid first). Slippage is
    measured against it (compliance/trading_reports.py)."""
    quote = checked.quote
    if quote is None:
        return None
    return market_rules.cage_reference(checked.side, quote.bid, quote.ask, quote.last, quote.prev_close)


def build_order(checked: CheckedOrder, *, actor: Actor, source: str, replaces: Order | None = None) -> Order:
    return Order(
        account=checked.account,
        instrument=checked.instrument,
        client_order_id=checked.client_order_id or f"auto-{uuid.uuid4().hex[:20]}",
        strategy=checked.strategy,
        side=checked.side,
        order_type=checked.order_type,
        price=checked.price,
        protection_price=checked.protection_price,
        reference_price=reference_price_of(checked),
        quantity=checked.quantity,
        trading_day=checked.trading_day,
        source=source,
        submitted_by=actor.name,
        replaces=replaces,
    )


def created_event(order: Order, actor: Actor, reason: str = "") -> AuditEvent:
    return audit_event(actor=actor, action="order.created", object_type="order", object_id=order.pk,
                       account=order.account.name, after=_order_snapshot(order), reason=reason)
