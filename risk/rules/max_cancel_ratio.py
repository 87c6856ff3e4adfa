"""Frequency: the account's cancels today as a share of its orders today (spoofing alert)."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from django.utils.translation import gettext_lazy

from risk.rules.base import Count, Ratio, Rule, RuleParams, pct, ratio_of
from risk.verdicts import Verdict
from trading.i18n import bilingual

if TYPE_CHECKING:
    from orders.models import Order
    from risk.context import RiskContext


class MaxCancelRatioParams(RuleParams):
    max_ratio: Ratio = Decimal("0.8")
    min_orders: Count = 20


class MaxCancelRatio(Rule[MaxCancelRatioParams]):
    """Refuses new orders while today's cancels / orders exceeds ``max_ratio`` (default 80%, the
    internal spoofing alert of MARKET_RULES; equal passes), once the account has at least
    ``min_orders`` orders today (so the first cancel of the day is not 100%). Cancels themselves
    are never blocked."""

    code = "max_cancel_ratio"
    title = gettext_lazy("maximum cancel ratio")
    category = "frequency"
    params_model = MaxCancelRatioParams
    generous_params = {"max_ratio": "1"}

    def check(self, order: Order, context: RiskContext) -> Verdict:
        counter = context.account_counter
        orders, cancels, limit = counter.orders, counter.cancels, self.params.max_ratio
        ratio = ratio_of(Decimal(cancels), Decimal(orders))
        values = {"orders_today": orders, "cancels_today": cancels, "ratio": ratio, "max_ratio": limit,
                  "min_orders": self.params.min_orders}
        if orders >= self.params.min_orders and cancels > limit * orders:
            return self.fail(bilingual("cancels today {cancels} / orders {orders} = {pct_ratio} exceeds max {pct_limit}", cancels=cancels, orders=orders, pct_ratio=pct(ratio), pct_limit=pct(limit)), **values)
        return self.ok(**values)
