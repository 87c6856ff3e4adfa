"""Factories for tests: one place that knows how to build accounts, instruments, quotes and keys."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from brokers.services import account_create
from trading.market_rules import load_reference_instruments
from trading.models import Account, Instrument, Quote
from trading.selectors import quote_cache_clear
from trading.suitability import ALL_PERMISSIONS

_REFERENCE = {r.symbol: r for r in load_reference_instruments()}


def instrument(symbol: str = "600000.SH", **overrides: Any) -> Instrument:
    """An Instrument from the shipped reference data (or made up with overrides)."""
    ref = _REFERENCE.get(symbol)
    code, exchange = symbol.split(".")
    values: dict[str, Any] = {
        "name": ref.name if ref else symbol,
        "board": ref.board if ref else "MAIN",
        "is_st": ref.is_st if ref else False,
        "listing_date": ref.listing_date if ref else None,
        "registration_listing": ref.registration_listing if ref else False,
        "t0": ref.t0 if ref else False,
        "limit_pct": ref.limit_pct if ref else None,
        "industry": ref.industry if ref else "",
        "total_shares": (ref.total_shares or 0) if ref else 0,
    }
    values.update(overrides)
    obj, _ = Instrument.objects.update_or_create(exchange=exchange, code=code, defaults=values)
    return obj


def quote(symbol: str = "600000.SH", *, last: str | None = None, prev_close: str = "10.00", bid: str | None = None,
          ask: str | None = None, bid_volume: int = 100000, ask_volume: int = 100000) -> Quote:
    """Set the latest quote directly (no matching); use brokers.services.quotes_publish to match."""
    inst = instrument(symbol)
    values = {
        "last": Decimal(last or prev_close),
        "prev_close": Decimal(prev_close),
        "bid": Decimal(bid) if bid else None,
        "ask": Decimal(ask) if ask else None,
        "bid_volume": bid_volume,
        "ask_volume": ask_volume,
    }
    obj, _ = Quote.objects.update_or_create(instrument=inst, defaults=values)
    quote_cache_clear()
    return obj


def account(name: str = "acc1", *, cash: str = "1000000", broker_kind: str = "paper", **kwargs: Any) -> Account:
    """An account (made once); unless ``permissions`` says otherwise it may trade every board, like
    the accounts that existed before trading permissions (migration trading 0004)."""
    existing = Account.objects.filter(name=name).first()
    kwargs.setdefault("permissions", ALL_PERMISSIONS)
    return existing or account_create(name=name, broker_kind=broker_kind, cash=Decimal(cash), **kwargs)


def api_key(name: str = "key1", *, accounts: list[str] | None = None, can_trade: bool = True, market_data: bool = False,
            acknowledged: bool = True) -> str:
    """A raw key; its owner acknowledged the risk disclosure unless ``acknowledged=False``."""
    from trading.auth import api_key_create

    _, raw = api_key_create(name=name, accounts=accounts or ["acc1"], can_trade=can_trade, market_data=market_data,
                            disclosure_acknowledged_by=f"owner of {name}" if acknowledged else "")
    return raw


def order_body(**overrides: Any) -> dict[str, Any]:
    """The JSON body of POST /orders: a 1,000-share limit buy of 600000.SH at 10.00 for ``acc1``."""
    body: dict[str, Any] = {"account": "acc1", "symbol": "600000.SH", "side": "BUY", "order_type": "LIMIT",
                            "price": "10.00", "quantity": 1000, "client_order_id": "s1-0001", "strategy": "s1"}
    body.update(overrides)
    return body
