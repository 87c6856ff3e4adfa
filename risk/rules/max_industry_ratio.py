"""Position: one industry's value after the order as a share of total assets."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.utils.translation import gettext_lazy

from risk.rules.base import Ratio, Rule, RuleParams, money, pct, ratio_of
from risk.verdicts import Verdict
from trading.i18n import bilingual

if TYPE_CHECKING:
    from orders.models import Order
    from risk.context import RiskContext


class MaxIndustryRatioParams(RuleParams):
    max_ratio: Ratio


class MaxIndustryRatio(Rule[MaxIndustryRatioParams]):
    """Refuses a buy after which the instrument's industry (Instrument.industry) exceeds
    ``max_ratio`` of total assets (equal passes): holdings at market + open buys + this order,
    over every instrument of that industry. Instruments without an industry pass. Sells pass."""

    code = "max_industry_ratio"
    title = gettext_lazy("maximum holding ratio in one industry")
    category = "position"
    params_model = MaxIndustryRatioParams
    generous_params = {"max_ratio": "1"}

    def check(self, order: Order, context: RiskContext) -> Verdict:
        if not context.is_buy:
            return self.ok(bilingual("a sell reduces the position"))
        industry = order.instrument.industry
        if not industry:
            return self.ok(bilingual("instrument has no industry"))
        value, total, limit = context.industry_value_after(industry), context.total_assets, self.params.max_ratio
        ratio = ratio_of(value, total)
        values = {"industry": industry, "value_after": value, "total_assets": total, "ratio": ratio, "max_ratio": limit}
        if value > limit * total:
            return self.fail(bilingual("industry {industry} value after the order {money_value} is {pct_ratio} of total assets {money_total}, above max {pct_limit}", industry=industry, money_value=money(value), pct_ratio=pct(ratio), pct_limit=pct(limit), money_total=money(total)), **values)
        return self.ok(**values)
