"""Price: a limit price's distance from the last price."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.utils.translation import gettext_lazy

from risk.rules.base import Ratio, Rule, RuleParams, pct, ratio_of
from risk.verdicts import Verdict
from trading.i18n import bilingual
from trading.market_rules import OrderType

if TYPE_CHECKING:
    from orders.models import Order
    from risk.context import RiskContext


class MaxPriceDeviationParams(RuleParams):
    max_ratio: Ratio


class MaxPriceDeviation(Rule[MaxPriceDeviationParams]):
    """Refuses a limit order whose price is further than ``max_ratio`` from the last price (else the
    previous close), either way (equal passes). Market orders: see ``max_slippage``."""

    code = "max_price_deviation"
    title = gettext_lazy("maximum deviation of the order price from the last price")
    category = "price"
    params_model = MaxPriceDeviationParams
    generous_params = {"max_ratio": "1"}

    def check(self, order: Order, context: RiskContext) -> Verdict:
        if order.order_type != OrderType.LIMIT or order.price is None:
            return self.ok(bilingual("not a limit order"))
        quote = context.quote
        reference = (quote.last or quote.prev_close) if quote else None
        if not reference:
            return self.ok(bilingual("no last price"))
        distance = abs(order.price - reference)
        limit = self.params.max_ratio
        ratio = ratio_of(distance, reference)
        values = {"price": order.price, "reference": reference, "deviation": ratio, "max_ratio": limit}
        if distance > limit * reference:
            return self.fail(bilingual("price {price} deviates {pct_ratio} from the last price {reference}, above max {pct_limit}", price=order.price, reference=reference, pct_ratio=pct(ratio), pct_limit=pct(limit)),
                             **values)
        return self.ok(**values)
