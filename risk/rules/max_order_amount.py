"""Capital: the amount of one order (quantity x price; market orders at their protection or limit price)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.utils.translation import gettext_lazy

from risk.rules.base import Money, Rule, RuleParams, money
from risk.verdicts import Verdict
from trading.i18n import bilingual

if TYPE_CHECKING:
    from orders.models import Order
    from risk.context import RiskContext


class MaxOrderAmountParams(RuleParams):
    max_amount: Money


class MaxOrderAmount(Rule[MaxOrderAmountParams]):
    """Refuses an order whose amount exceeds ``max_amount`` (equal passes). Both sides."""

    code = "max_order_amount"
    title = gettext_lazy("maximum amount per order")
    category = "capital"
    params_model = MaxOrderAmountParams
    generous_params = {"max_amount": "1000000000000"}

    def check(self, order: Order, context: RiskContext) -> Verdict:
        amount, limit = context.amount, self.params.max_amount
        if amount > limit:
            return self.fail(bilingual("order amount {money_amount} exceeds max {money_limit}", money_amount=money(amount), money_limit=money(limit)), amount=amount, max_amount=limit)
        return self.ok(amount=amount, max_amount=limit)
