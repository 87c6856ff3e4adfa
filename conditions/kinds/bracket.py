"""Stop-loss / take-profit on a long position, as one parent: whichever level the price reaches
first sells, and the other is gone with it (one-cancels-the-other by construction: a parent fires
once). Optionally attached to an entry buy: it waits for the entry's fills and sells what filled."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.utils.translation import gettext_lazy as _

from conditions.kinds import register
from conditions.kinds.base import (
    CreateContext,
    Decision,
    Kind,
    KindParams,
    Price,
    QuoteView,
    Release,
    Thresholds,
    check_level,
    wrong_side,
)
from conditions.models import ConditionalOrder
from trading.errors import InputRule, InvalidOrder
from trading.i18n import bilingual
from trading.market_rules import Side


class BracketParams(KindParams):
    stop_loss: Price | None = None  # sell when the last price is at or below it
    take_profit: Price | None = None  # sell when the last price is at or above it


@register
class Bracket(Kind[BracketParams]):
    code = "bracket"
    title = _("stop-loss / take-profit")
    params_model = BracketParams
    sides = (Side.SELL,)
    attaches_to_entry = True
    prices_itself = True  # price_type LIMIT sells at the level reached

    def validate(self, params: BracketParams, ctx: CreateContext) -> dict[str, Any]:
        if params.stop_loss is None and params.take_profit is None:
            raise InvalidOrder.single("params.stop_loss", InputRule.REQUIRED, bilingual("give stop_loss, take_profit or both"))
        for name, level in (("stop_loss", params.stop_loss), ("take_profit", params.take_profit)):
            if level is not None:
                check_level(name, level, ctx)
        if params.stop_loss is not None and params.take_profit is not None and params.stop_loss >= params.take_profit:
            raise InvalidOrder.single("params.take_profit", InputRule.ORDER, bilingual(
                "take_profit {take_profit} must be above stop_loss {stop_loss}", take_profit=params.take_profit, stop_loss=params.stop_loss))
        last = ctx.last
        if last is not None:
            if params.stop_loss is not None and params.stop_loss >= last:
                raise wrong_side("stop_loss", params.stop_loss, last, must_be=bilingual("below"))
            if params.take_profit is not None and params.take_profit <= last:
                raise wrong_side("take_profit", params.take_profit, last, must_be=bilingual("above"))
        return {}

    def thresholds(self, parent: ConditionalOrder, params: BracketParams) -> Thresholds:
        if parent.quantity <= parent.released_quantity:  # waiting for the entry's fill
            return Thresholds()
        return Thresholds(low=params.stop_loss, high=params.take_profit)

    def on_quote(self, parent: ConditionalOrder, params: BracketParams, quote: QuoteView, at: datetime) -> Decision | None:
        last = quote.last
        assert last is not None
        remaining = parent.quantity - parent.released_quantity
        if remaining <= 0:
            return None
        for leg, level, reached in (("stop_loss", params.stop_loss, params.stop_loss is not None and last <= params.stop_loss),
                                    ("take_profit", params.take_profit, params.take_profit is not None and last >= params.take_profit)):
            if reached:
                return Decision(releases=[Release(Side.SELL, remaining, trigger_price=last, limit_price=level)],
                                finished=True, note=f"{leg} {level} reached at {last}")
        return None
