"""Frequency: orders plus cancels of the account in one trading day (programme trading)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.utils.translation import gettext_lazy

from risk.rules._programme import ProgrammeRateParams, programme_verdict
from risk.rules.base import Rule
from risk.verdicts import Verdict
from trading import market_rules

if TYPE_CHECKING:
    from orders.models import Order
    from risk.context import RiskContext


class MaxOrdersPerDay(Rule[ProgrammeRateParams]):
    """Orders admitted today plus cancels today, this order included: refused above ``limit``
    (default 19,999 = one below the 20,000/day line, for accounts not registered as
    high-frequency), warned from ``warn_ratio`` of the line. Not re-checked on approval."""

    code = "max_orders_per_day"
    title = gettext_lazy("maximum orders plus cancels per day (programme trading)")
    category = "frequency"
    params_model = ProgrammeRateParams
    recheck_on_approval = False
    generous_params = {"limit": 1_000_000_000, "warn_ratio": "1000000"}

    def check(self, order: Order, context: RiskContext) -> Verdict:
        counter = context.account_counter
        return programme_verdict(self, count_after=counter.orders + counter.cancels + 1,
                                 line=market_rules.hf_orders_per_day(context.day),
                                 registered=context.account.is_high_frequency, zh_unit="当日", en_unit="today")
