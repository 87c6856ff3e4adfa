"""Reads of accounts, positions and quotes."""

from __future__ import annotations

import time
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from trading import calendar
from trading.models import Account, Instrument, Position, Quote, SessionMode
from trading.money import ROUND_HALF_EVEN, ZERO, to_cent

# Intake reads the latest quote for the price band of every order. Quotes of one
# instrument change at most a few times a second and the band only moves with
# prev_close, so a short-lived per-process copy saves a query per order; a quote
# published in this process clears it at once.
QUOTE_TTL_SECONDS = 1.0
_quotes: dict[int, tuple[float, Quote | None]] = {}


def quote_latest(instrument_id: int) -> Quote | None:
    """The latest quote of an instrument (at most QUOTE_TTL_SECONDS old), or None."""
    now = time.monotonic()
    cached = _quotes.get(instrument_id)
    if cached and cached[0] > now:
        return cached[1]
    quote = Quote.objects.filter(instrument_id=instrument_id).order_by().first()
    _quotes[instrument_id] = (now + QUOTE_TTL_SECONDS, quote)
    return quote


def quote_cache_clear() -> None:
    _quotes.clear()


# Reference data changes rarely: active instruments are kept in-process for a minute
# (intake and the paper broker look one up per order). An instrument that is not
# active is read every time, so a resumed one is seen at once.
INSTRUMENT_TTL_SECONDS = 60.0
_instruments: dict[tuple[str, str], tuple[float, Instrument]] = {}


def instrument_active(exchange: str, code: str) -> Instrument | None:
    """The instrument ``code`` on ``exchange`` if it is active (at most a minute old), else None."""
    now = time.monotonic()
    cached = _instruments.get((exchange, code))
    if cached and cached[0] > now:
        return cached[1]
    instrument = Instrument.objects.filter(exchange=exchange, code=code, is_active=True).first()
    if instrument is not None:
        _instruments[(exchange, code)] = (now + INSTRUMENT_TTL_SECONDS, instrument)
    return instrument


def instrument_cache_clear() -> None:
    _instruments.clear()


def account_trading_day(account: Account, at: datetime) -> date:
    """The trading day an order placed at ``at`` belongs to for this account."""
    if account.session_mode == SessionMode.ALWAYS:
        return at.astimezone(calendar.SHANGHAI).date()
    day = calendar.trading_day_of(at)
    return day if calendar.is_trading_day(day) else calendar.next_trading_day(day)


def money(value: Decimal | None) -> str | None:
    """A money amount as the API writes it: a decimal string, never a float."""
    if value is None:
        return None
    return str(value)


def price_text(value: Decimal | None) -> str | None:
    """A price as the API writes it: at least 2 decimals, no trailing noise ("10.50", "3.456")."""
    if value is None:
        return None
    text = f"{value:.4f}".rstrip("0")
    whole, _, frac = text.partition(".")
    return f"{whole}.{frac.ljust(2, '0')}"


def position_last_price(position: Position) -> Decimal | None:
    quote: Quote | None = getattr(position.instrument, "quote", None)
    if quote is None:
        return None
    return quote.last or quote.prev_close


def account_positions(*, account: Account, at: datetime) -> list[dict[str, Any]]:
    """Positions with market value and unrealized P&L at the latest quote."""
    today = account_trading_day(account, at)
    rows = []
    positions = (
        Position.objects.filter(account=account, quantity__gt=0)
        .select_related("instrument", "instrument__quote")
        .order_by("instrument__exchange", "instrument__code")
    )
    for position in positions:
        last = position_last_price(position)
        market_value = to_cent(last * position.quantity, ROUND_HALF_EVEN) if last is not None else ZERO
        rows.append(
            {
                "symbol": position.instrument.symbol,
                "name": position.instrument.name,
                "quantity": position.quantity,
                "sellable_quantity": position.sellable_quantity(today),
                "frozen_quantity": position.frozen_quantity,
                "avg_cost": str(position.avg_cost) if position.avg_cost is not None else None,
                "last_price": price_text(last),
                "market_value": str(market_value),
                "unrealized_pnl": str(to_cent(market_value - position.cost_amount, ROUND_HALF_EVEN)),
            }
        )
    return rows


def account_balance(*, account: Account, at: datetime) -> dict[str, str]:
    market_value = sum((Decimal(p["market_value"]) for p in account_positions(account=account, at=at)), ZERO)
    return {
        "account": account.name,
        "cash": str(account.cash),
        "available": str(account.available),
        "frozen": str(account.frozen),
        "market_value": str(market_value),
        "total_assets": str(account.cash + market_value),
    }


def quote_as_json(quote: Quote) -> dict[str, Any]:
    return {
        "symbol": quote.instrument.symbol,
        "name": quote.instrument.name,
        "last": price_text(quote.last),
        "prev_close": price_text(quote.prev_close),
        "bid": price_text(quote.bid),
        "ask": price_text(quote.ask),
        "bid_volume": quote.bid_volume,
        "ask_volume": quote.ask_volume,
        "updated_at": quote.updated_at,
    }
