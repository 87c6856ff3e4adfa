"""The released order's price and quantity: the parent's price type applied to a release, rounded to
the tick and lot, clipped to the day's price limits. Tick and lot rounding are the market rules'
(``trading.market_rules.round_to_tick``, ``round_down_to_lots``); nothing here writes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from conditions.kinds.base import QuoteView, Release
from conditions.models import ChildPriceType, ConditionalOrder
from trading import market_rules
from trading.market_rules import OrderType, Side


@dataclass(frozen=True)
class ChildPrice:
    order_type: str
    price: Decimal | None
    protection_price: Decimal | None


def child_price(parent: ConditionalOrder, release: Release, quote: QuoteView | None, day: date) -> ChildPrice:
    """The order type and price of the child ``release`` asks for.

    LIMIT: the release's limit price, else the parent's; TRIGGER_OFFSET: the trigger price plus
    ``offset_ticks`` ticks for a buy, minus for a sell (more aggressive when positive);
    BEST_OPPOSITE: the ask for a buy, the bid for a sell (the last price when that side is empty, as
    at a sealed limit); MARKET: a market order, its protection price the parent's (intake's default
    otherwise). Every price is rounded to the tick and clipped to the day's limits."""
    inst = parent.instrument
    tick = market_rules.tick_size(market_rules.board_of(inst))
    prev_close = quote.prev_close if quote else None
    limits = market_rules.limit_prices(inst, prev_close, day) if prev_close else None
    buy = release.side == Side.BUY

    def fit(value: Decimal | None) -> Decimal | None:
        if value is None:
            return None
        value = market_rules.round_to_tick(value, tick)
        if limits is not None:
            value = min(max(value, limits[0]), limits[1])
        return max(value, tick)

    if parent.price_type == ChildPriceType.MARKET:
        return ChildPrice(OrderType.MARKET, None, fit(parent.protection_price))
    last = quote.last if quote else None
    if parent.price_type == ChildPriceType.LIMIT:
        price = release.limit_price or parent.limit_price
    elif parent.price_type == ChildPriceType.TRIGGER_OFFSET:
        base = release.trigger_price if release.trigger_price is not None else last
        price = None if base is None else base + (tick * parent.offset_ticks if buy else -tick * parent.offset_ticks)
    else:  # BEST_OPPOSITE
        opposite = (quote.ask if buy else quote.bid) if quote else None
        price = opposite if opposite is not None else last
        if opposite is None and limits is not None:  # a sealed limit: the whole band's far end
            price = limits[1] if buy else limits[0]
    return ChildPrice(OrderType.LIMIT, fit(price), None)


def child_quantity(parent: ConditionalOrder, side: str, wanted: int, *, position_quantity: int, sellable: int,
                   day: date) -> int:
    """How many shares the child may carry: ``wanted`` in whole lots; a sell at most ``sellable``,
    whose odd lot may go out whole (the exchange lets the holding's odd remainder be sold in one order)."""
    inst = parent.instrument
    if side == Side.SELL:
        wanted = min(wanted, sellable)
        try:
            market_rules.check_quantity(inst, side, OrderType.LIMIT, wanted, position_quantity, day)
            return wanted
        except market_rules.MarketRuleViolation:
            pass
    return market_rules.round_down_to_lots(inst, wanted, day)
