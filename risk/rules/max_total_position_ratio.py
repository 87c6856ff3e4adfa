"""Position: all holdings after the order as a share of total assets."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.utils.translation import gettext_lazy

from risk.rules.base import Ratio, Rule, RuleParams, money, pct, ratio_of
from risk.verdicts import Verdict
from trading.i18n import bilingual

if TYPE_CHECKING:
    from orders.models import Order
    from risk.context import RiskContext


class MaxTotalPositionRatioParams(RuleParams):
    max_ratio: Ratio


class MaxTotalPositionRatio(Rule[MaxTotalPositionRatioParams]):
    """Refuses a buy after which market value + cash held by open buys + this order exceeds
    ``max_ratio`` of total assets (equal passes). Sells pass."""

    code = "max_total_position_ratio"
    title = gettext_lazy("maximum total position ratio")
    category = "position"
    params_model = MaxTotalPositionRatioParams
    generous_params = {"max_ratio": "1"}

    def check(self, order: Order, context: RiskContext) -> Verdict:
        if not context.is_buy:
            return self.ok(bilingual("a sell reduces the position"))
        exposure, total, limit = context.gross_exposure_after, context.total_assets, self.params.max_ratio
        ratio = ratio_of(exposure, total)
        values = {"exposure_after": exposure, "total_assets": total, "ratio": ratio, "max_ratio": limit}
        if exposure > limit * total:
            return self.fail(bilingual("total position after the order {money_exposure} is {pct_ratio} of total assets {money_total}, above max {pct_limit}", money_exposure=money(exposure), money_total=money(total), pct_ratio=pct(ratio), pct_limit=pct(limit)), **values)
        return self.ok(**values)
