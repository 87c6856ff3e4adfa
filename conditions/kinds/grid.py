"""Grid on one symbol: buy a fixed quantity every step down, sell it every step up, between a lower
and an upper bound, holding at most a position cap. The reference level moves with every step
released, so each level trades once per crossing (the parent's row lock makes it exactly once)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import pydantic
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
)
from conditions.models import ConditionalOrder
from orders.models import TERMINAL_STATUSES, Order
from trading import market_rules
from trading.calendar import trading_day_of
from trading.errors import InputRule, InvalidOrder
from trading.i18n import bilingual
from trading.market_rules import OrderType, Side
from trading.models import Position
from trading.selectors import price_text


class GridParams(KindParams):
    lower: Price
    upper: Price
    step: Price  # the price distance between levels
    lot_quantity: int = pydantic.Field(gt=0, le=10**9)  # shares bought or sold per step
    max_position: int = pydantic.Field(ge=0, le=10**9)  # the position the grid never buys beyond
    reference: Price | None = None  # the level the grid starts from; default: the last price


def _buys_working(parent: ConditionalOrder) -> int:
    """Shares the parent's buy children may still fill."""
    from conditions.models import ParentEvent

    working = (Order.objects.filter(pk__in=ParentEvent.objects.filter(parent=parent, child__isnull=False).values("child_id"),
                                    side=Side.BUY).exclude(status__in=TERMINAL_STATUSES).values_list("quantity", "filled_quantity"))
    return sum(quantity - filled for quantity, filled in working)


@register
class Grid(Kind[GridParams]):
    code = "grid"
    title = _("grid")
    params_model = GridParams
    repeating = True
    sides = ("",)
    quantity_free = True
    prices_itself = True  # price_type LIMIT buys and sells at the grid's levels

    def validate(self, params: GridParams, ctx: CreateContext) -> dict[str, Any]:
        for name in ("lower", "upper", "step"):
            check_level(name, getattr(params, name), ctx, band=False)
        if params.lower >= params.upper:
            raise InvalidOrder.single("params.upper", InputRule.ORDER, bilingual("upper {upper} must be above lower {lower}",
                                                                                 upper=params.upper, lower=params.lower))
        try:
            market_rules.check_quantity(ctx.instrument, Side.BUY, OrderType.LIMIT, params.lot_quantity, 0, ctx.day)
        except market_rules.MarketRuleViolation as exc:
            raise InvalidOrder.single("params.lot_quantity", exc.rule, exc.message) from None
        if params.max_position < params.lot_quantity:
            raise InvalidOrder.single("params.max_position", InputRule.ORDER, bilingual(
                "max_position {max_position} must be at least lot_quantity {lot_quantity}", max_position=params.max_position,
                lot_quantity=params.lot_quantity))
        reference = params.reference if params.reference is not None else ctx.last
        if reference is None:
            raise InvalidOrder.single("params.reference", InputRule.REQUIRED, bilingual("no last price: give reference"))
        check_level("reference", reference, ctx)
        if not params.lower <= reference <= params.upper:
            raise InvalidOrder.single("params.reference", InputRule.ORDER, bilingual("reference {reference} must lie between lower and upper",
                                                                                     reference=reference))
        return {"reference": price_text(reference)}

    def thresholds(self, parent: ConditionalOrder, params: GridParams) -> Thresholds:
        reference = Decimal(parent.memory["reference"])
        down, up = reference - params.step, reference + params.step
        return Thresholds(low=down if down >= params.lower else None, high=up if up <= params.upper else None)

    def on_quote(self, parent: ConditionalOrder, params: GridParams, quote: QuoteView, at: datetime) -> Decision | None:
        last = quote.last
        assert last is not None
        reference = Decimal(parent.memory["reference"])
        if last <= reference - params.step:
            steps = int((reference - max(last, params.lower)) // params.step)
            side = Side.BUY
        elif last >= reference + params.step:
            steps = int((min(last, params.upper) - reference) // params.step)
            side = Side.SELL
        else:
            return None
        if steps <= 0:
            return None
        level = reference - steps * params.step if side == Side.BUY else reference + steps * params.step
        memory = {**parent.memory, "reference": price_text(level)}
        position = Position.objects.filter(account_id=parent.account_id, instrument_id=parent.instrument_id).first()
        held = position.quantity if position else 0
        if side == Side.BUY:  # the cap counts what is held and what the grid's buys may still fill
            quantity = min(steps * params.lot_quantity, params.max_position - held - _buys_working(parent))
        else:
            quantity = min(steps * params.lot_quantity, position.sellable_quantity(trading_day_of(at)) if position else 0)
        if quantity <= 0:  # at the cap, or nothing sellable: the grid follows the price without trading
            return Decision(memory=memory, note=f"{side} at {level}: nothing to trade (held {held})")
        return Decision(releases=[Release(side, quantity, trigger_price=last, limit_price=level)], memory=memory,
                        note=f"{side} {quantity} at {level}")
