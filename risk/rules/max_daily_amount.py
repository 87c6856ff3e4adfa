"""Capital: the amount of all orders of the account on one trading day."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.utils.translation import gettext_lazy

from risk.rules.base import Money, Rule, RuleParams, money
from risk.verdicts import Verdict
from trading.i18n import bilingual

if TYPE_CHECKING:
    from orders.models import Order
    from risk.context import RiskContext


class MaxDailyAmountParams(RuleParams):
    max_amount: Money


class MaxDailyAmount(Rule[MaxDailyAmountParams]):
    """Refuses an order that would bring today's ordered amount (both sides) above ``max_amount``.

    Today's amount counts every order admitted by risk control today (passed,
    warned or held); an order that later ends REJECTED, or EXPIRED in review,
    gives its amount back; a cancelled order stays counted.
    """

    code = "max_daily_amount"
    title = gettext_lazy("maximum order amount per day")
    category = "capital"
    params_model = MaxDailyAmountParams
    generous_params = {"max_amount": "1000000000000000"}

    def check(self, order: Order, context: RiskContext) -> Verdict:
        today = context.account_counter.amount
        after, limit = today + context.amount, self.params.max_amount
        values = {"amount_today": today, "amount": context.amount, "amount_after": after, "max_amount": limit}
        if after > limit:
            return self.fail(bilingual("amount today {money_today} + this order {money_amount} = {money_after} exceeds max {money_limit}", money_today=money(today), money_amount=money(context.amount), money_after=money(after), money_limit=money(limit)),
                             **values)
        return self.ok(**values)
