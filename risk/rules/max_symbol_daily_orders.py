"""Frequency: orders on one symbol per trading day."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.utils.translation import gettext_lazy

from risk.rules.base import Count, Rule, RuleParams
from risk.verdicts import Verdict
from trading.i18n import bilingual

if TYPE_CHECKING:
    from orders.models import Order
    from risk.context import RiskContext


class MaxSymbolDailyOrdersParams(RuleParams):
    max_orders: Count


class MaxSymbolDailyOrders(Rule[MaxSymbolDailyOrdersParams]):
    """Refuses the order that would make today's orders on this symbol exceed ``max_orders``
    (the max-th order passes). Counts orders admitted by risk control (not those it refused)."""

    code = "max_symbol_daily_orders"
    title = gettext_lazy("maximum orders per day in one symbol")
    category = "frequency"
    params_model = MaxSymbolDailyOrdersParams
    generous_params = {"max_orders": 1_000_000_000}

    def check(self, order: Order, context: RiskContext) -> Verdict:
        after, limit = context.symbol_counter.orders + 1, self.params.max_orders
        values = {"orders_after": after, "max_orders": limit}
        if after > limit:
            return self.fail(bilingual("this would be order {after} on {symbol} today, above max {limit}", symbol=order.instrument.symbol, after=after, limit=limit), **values)
        return self.ok(**values)
