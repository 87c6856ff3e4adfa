"""Capital: cash that must stay available after a buy, as a share of total assets."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.utils.translation import gettext_lazy

from risk.rules.base import NonNegativeRatio, Rule, RuleParams, money, pct, ratio_of
from risk.verdicts import Verdict
from trading.i18n import bilingual

if TYPE_CHECKING:
    from orders.models import Order
    from risk.context import RiskContext


class MinCashReserveRatioParams(RuleParams):
    min_ratio: NonNegativeRatio


class MinCashReserveRatio(Rule[MinCashReserveRatioParams]):
    """Refuses a buy after which available cash (minus this order's freeze incl. fees) falls below
    ``min_ratio`` of total assets (equal passes). Sells pass."""

    code = "min_cash_reserve_ratio"
    title = gettext_lazy("minimum cash reserve ratio")
    category = "capital"
    params_model = MinCashReserveRatioParams
    generous_params = {"min_ratio": "0"}

    def check(self, order: Order, context: RiskContext) -> Verdict:
        if not context.is_buy:
            return self.ok(bilingual("a sell adds cash"))
        after = context.available_before - context.buy_freeze
        total, limit = context.total_assets, self.params.min_ratio
        ratio = ratio_of(after, total)
        values = {"available_after": after, "total_assets": total, "ratio": ratio, "min_ratio": limit}
        if after < limit * total:
            return self.fail(bilingual("available cash after the order {money_after} is {pct_ratio} of total assets {money_total}, below min {pct_limit}", money_after=money(after), money_total=money(total), pct_ratio=pct(ratio), pct_limit=pct(limit)), **values)
        return self.ok(**values)
