"""Trailing stop: once the price reaches an activation level, release when it falls back (sell) or
rebounds (buy) by an amount or a percentage from the extreme since activation."""

from __future__ import annotations

from datetime import datetime
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

from django.utils.translation import gettext_lazy as _

from conditions.kinds import register
from conditions.kinds.base import (
    CreateContext,
    Decision,
    Kind,
    KindParams,
    Percent,
    Price,
    QuoteView,
    Release,
    Thresholds,
    check_level,
    exactly_one,
    tick_of,
)
from conditions.models import ConditionalOrder
from trading import market_rules
from trading.errors import InputRule, InvalidOrder
from trading.i18n import bilingual
from trading.market_rules import Side
from trading.money import PRICE_PLACES
from trading.selectors import price_text


class TrailingParams(KindParams):
    activation_price: Price | None = None  # None: active at once, from the last price
    trail_amount: Price | None = None  # the fall (sell) or rebound (buy) that releases, in price
    trail_pct: Percent | None = None  # or in percent of the extreme


def _activates(side: str, activation: Decimal, last: Decimal) -> bool:
    return last >= activation if side == Side.SELL else last <= activation


def _beyond(side: str, last: Decimal, extreme: Decimal) -> bool:
    return last > extreme if side == Side.SELL else last < extreme


def stop_of(side: str, params: TrailingParams, extreme: Decimal) -> Decimal:
    """The exact price that releases: the extreme less (sell) or plus (buy) the trail."""
    if params.trail_amount is not None:
        return extreme - params.trail_amount if side == Side.SELL else extreme + params.trail_amount
    assert params.trail_pct is not None
    sign = -1 if side == Side.SELL else 1
    return extreme * (100 + sign * params.trail_pct) / 100


@register
class TrailingStop(Kind[TrailingParams]):
    code = "trailing"
    title = _("trailing stop")
    params_model = TrailingParams

    def validate(self, params: TrailingParams, ctx: CreateContext) -> dict[str, Any]:
        exactly_one(("trail_amount", "trail_pct"), (params.trail_amount, params.trail_pct))
        if params.trail_amount is not None and not market_rules.is_on_tick(params.trail_amount, ctx.tick):
            raise InvalidOrder.single("params.trail_amount", InputRule.TICK_SIZE, bilingual(
                "trail_amount must be a multiple of {tick}; got {value}", tick=ctx.tick, value=params.trail_amount))
        if params.activation_price is not None:
            check_level("activation_price", params.activation_price, ctx)
        if ctx.last is None:
            raise InvalidOrder.single("symbol", InputRule.REQUIRED, bilingual("a trailing stop needs a last price of {symbol}", symbol=ctx.instrument.symbol))
        if params.activation_price is None or _activates(ctx.side, params.activation_price, ctx.last):
            return {"active": True, "extreme": price_text(ctx.last)}
        return {"active": False, "extreme": None}

    def thresholds(self, parent: ConditionalOrder, params: TrailingParams) -> Thresholds:
        tick = tick_of(parent)
        sell = parent.side == Side.SELL
        if not parent.memory.get("active"):
            assert params.activation_price is not None
            return Thresholds(high=params.activation_price) if sell else Thresholds(low=params.activation_price)
        extreme = Decimal(parent.memory["extreme"])
        stop = stop_of(parent.side, params, extreme)
        if sell:  # a new high moves the extreme; a fall to the stop releases
            return Thresholds(low=stop.quantize(PRICE_PLACES, ROUND_CEILING), high=extreme + tick)
        return Thresholds(low=extreme - tick, high=stop.quantize(PRICE_PLACES, ROUND_FLOOR))

    def on_quote(self, parent: ConditionalOrder, params: TrailingParams, quote: QuoteView, at: datetime) -> Decision | None:
        last = quote.last
        assert last is not None
        memory = parent.memory
        if not memory.get("active"):
            assert params.activation_price is not None
            if not _activates(parent.side, params.activation_price, last):
                return None
            return Decision(memory={"active": True, "extreme": price_text(last)}, note=f"activated at {last}")
        extreme = Decimal(memory["extreme"])
        if _beyond(parent.side, last, extreme):
            return Decision(memory={**memory, "extreme": price_text(last)})
        stop = stop_of(parent.side, params, extreme)
        if (last <= stop) if parent.side == Side.SELL else (last >= stop):
            return Decision(releases=[Release(parent.side, parent.quantity - parent.released_quantity, trigger_price=last)],
                            finished=True, note=f"last {last} came back to {stop} from the extreme {extreme}")
        return None
