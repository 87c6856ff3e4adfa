"""Price trigger: release when the last price is at or above / at or below a level, or when its
change from the previous close is at or beyond a percentage."""

from __future__ import annotations

from datetime import datetime
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any, Literal

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
    wrong_side,
)
from conditions.models import ConditionalOrder
from trading.errors import InputRule, InvalidOrder
from trading.i18n import bilingual
from trading.money import PRICE_PLACES
from trading.selectors import price_text

ABOVE = "AT_OR_ABOVE"
BELOW = "AT_OR_BELOW"


class PriceParams(KindParams):
    direction: Literal["AT_OR_ABOVE", "AT_OR_BELOW"]
    level: Price | None = None  # the last price to reach
    change_pct: Percent | None = None  # or: the change from the previous close, in percent (a magnitude)


def level_of(params: PriceParams, prev_close: Decimal | None) -> Decimal | None:
    """The price the trigger fires at: ``level``, or ``prev_close`` moved by ``change_pct`` (exact,
    not rounded: a last price on the tick is compared with it as it is). None without a previous close."""
    if params.level is not None:
        return params.level
    if prev_close is None or params.change_pct is None:
        return None
    sign = 1 if params.direction == ABOVE else -1
    return prev_close * (100 + sign * params.change_pct) / 100


def reached(params: PriceParams, level: Decimal, last: Decimal) -> bool:
    return last >= level if params.direction == ABOVE else last <= level


@register
class PriceTrigger(Kind[PriceParams]):
    code = "price"
    title = _("price trigger")
    params_model = PriceParams
    follows_reference = True  # change_pct: the level moves with the previous close

    def validate(self, params: PriceParams, ctx: CreateContext) -> dict[str, Any]:
        exactly_one(("level", "change_pct"), (params.level, params.change_pct))
        if params.level is not None:
            check_level("level", params.level, ctx)
        prev_close = ctx.quote.prev_close if ctx.quote else None
        level = level_of(params, prev_close)
        if level is None:
            raise InvalidOrder.single("params.change_pct", InputRule.REQUIRED,
                                      bilingual("change_pct needs the symbol's previous close; no quote has one yet"))
        if ctx.last is not None and reached(params, level, ctx.last):
            name = "level" if params.level is not None else "change_pct"
            raise wrong_side(name, level, ctx.last, must_be=bilingual("above") if params.direction == ABOVE else bilingual("below"))
        return {"prev_close": price_text(prev_close)}

    def thresholds(self, parent: ConditionalOrder, params: PriceParams) -> Thresholds:
        prev_close = parent.memory.get("prev_close")
        level = level_of(params, Decimal(prev_close) if prev_close else None)
        if level is None:
            return Thresholds()
        if params.direction == ABOVE:  # index a level at or below the exact one: a quote reaching it is found
            return Thresholds(high=level.quantize(PRICE_PLACES, ROUND_FLOOR))
        return Thresholds(low=level.quantize(PRICE_PLACES, ROUND_CEILING))

    def stale(self, parent: ConditionalOrder, params: PriceParams, quote: QuoteView) -> bool:
        return params.change_pct is not None and quote.prev_close is not None \
            and parent.memory.get("prev_close") != price_text(quote.prev_close)

    def on_quote(self, parent: ConditionalOrder, params: PriceParams, quote: QuoteView, at: datetime) -> Decision | None:
        assert quote.last is not None
        memory = None
        if params.change_pct is not None and quote.prev_close is not None \
                and parent.memory.get("prev_close") != price_text(quote.prev_close):
            memory = {**parent.memory, "prev_close": price_text(quote.prev_close)}  # a new day's reference
        level = level_of(params, quote.prev_close)
        if level is None or not reached(params, level, quote.last):
            return Decision(memory=memory) if memory else None
        return Decision(releases=[Release(parent.side, parent.quantity - parent.released_quantity, trigger_price=quote.last)],
                        memory=memory, finished=True, note=f"last {quote.last} reached {level}")
