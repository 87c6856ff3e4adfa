"""Capital: one symbol's value after the order as a share of total assets."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.utils.translation import gettext_lazy

from risk.rules.base import Ratio, Rule, RuleParams, money, pct, ratio_of
from risk.verdicts import Verdict
from trading.i18n import bilingual

if TYPE_CHECKING:
    from orders.models import Order
    from risk.context import RiskContext


class MaxPositionRatioParams(RuleParams):
    max_ratio: Ratio


class MaxPositionRatio(Rule[MaxPositionRatioParams]):
    """Refuses a buy after which the symbol's value exceeds ``max_ratio`` of total assets (equal passes).

    Value after = holding at the last price + cash held by open buys of the
    symbol + this order's amount; total assets = cash + market value. Sells pass.
    """

    code = "max_position_ratio"
    title = gettext_lazy("maximum holding ratio in one symbol")
    category = "capital"
    params_model = MaxPositionRatioParams
    generous_params = {"max_ratio": "1"}

    def check(self, order: Order, context: RiskContext) -> Verdict:
        if not context.is_buy:
            return self.ok(bilingual("a sell reduces the position"))
        value, total, limit = context.symbol_value_after, context.total_assets, self.params.max_ratio
        ratio = ratio_of(value, total)
        values = {"value_after": value, "total_assets": total, "ratio": ratio, "max_ratio": limit}
        if value > limit * total:
            return self.fail(bilingual("{symbol} value after the order {money_value} is {pct_ratio} of total assets {money_total}, above max {pct_limit}", symbol=order.instrument.symbol, money_value=money(value), money_total=money(total), pct_ratio=pct(ratio), pct_limit=pct(limit)), **values)
        return self.ok(**values)
