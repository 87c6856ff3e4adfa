"""Price: how far a market order may trade from the touch, through its protection price."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.utils.translation import gettext_lazy

from risk.rules.base import Ratio, Rule, RuleParams, pct, ratio_of
from risk.verdicts import Verdict
from trading import market_rules
from trading.i18n import bilingual
from trading.market_rules import OrderType

if TYPE_CHECKING:
    from orders.models import Order
    from risk.context import RiskContext


class MaxSlippageParams(RuleParams):
    max_ratio: Ratio


class MaxSlippage(Rule[MaxSlippageParams]):
    """Refuses a market order whose protection price (given, else the limit up for a buy / the limit
    down for a sell) lies further than ``max_ratio`` beyond the reference (buy: ask, else last, else
    previous close; sell: bid, ...) — equal passes. Limit orders pass."""

    code = "max_slippage"
    title = gettext_lazy("maximum slippage of market orders (protection price)")
    category = "price"
    params_model = MaxSlippageParams
    generous_params = {"max_ratio": "1"}

    def check(self, order: Order, context: RiskContext) -> Verdict:
        if order.order_type != OrderType.MARKET:
            return self.ok(bilingual("not a market order"))
        quote = context.quote
        if quote is None:
            return self.fail(bilingual("no quote: cannot bound the slippage of a market order"))
        touch = quote.ask if context.is_buy else quote.bid
        reference = touch or quote.last or quote.prev_close
        protection = order.protection_price
        if protection is None and quote.prev_close:
            protection = market_rules.protection_price(order.instrument, order.side, quote.prev_close, order.trading_day)
        if protection is None or not reference:
            return self.fail(bilingual("a market order needs a protection price"), protection_price=protection,
                             reference=reference)
        slip = (protection - reference) if context.is_buy else (reference - protection)
        limit = self.params.max_ratio
        ratio = ratio_of(slip, reference)
        values = {"protection_price": protection, "reference": reference, "slippage": ratio, "max_ratio": limit}
        if slip > limit * reference:
            return self.fail(bilingual("protection price {protection} allows {pct_ratio} slippage from {reference}, above max {pct_limit}", protection=protection, reference=reference, pct_ratio=pct(ratio), pct_limit=pct(limit)),
                             **values)
        return self.ok(**values)
