"""Compliance: no trading in ST / *ST stocks."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.utils.translation import gettext_lazy

from risk.rules.base import Rule, RuleParams
from risk.verdicts import Verdict
from trading.i18n import bilingual

if TYPE_CHECKING:
    from orders.models import Order
    from risk.context import RiskContext


class StBlockParams(RuleParams):
    block_sells: bool = False


class StBlock(Rule[StBlockParams]):
    """Refuses buying an instrument flagged ST (Instrument.is_st); selling one too with ``block_sells``
    (off by default, so a holding can still be cut)."""

    code = "st_block"
    title = gettext_lazy("no trading in ST stocks")
    category = "compliance"
    params_model = StBlockParams

    def check(self, order: Order, context: RiskContext) -> Verdict:
        if order.instrument.is_st and (context.is_buy or self.params.block_sells):
            side = "买入" if context.is_buy else "卖出"
            return self.fail(bilingual("{side_lower} of ST stock {symbol} is not allowed", side=side, symbol=order.instrument.symbol, name=order.instrument.name, side_lower=order.side.lower()), is_st=True)
        return self.ok(is_st=order.instrument.is_st)
