"""Frequency: orders plus cancels of the account within one second (programme trading)."""

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


class MaxOrdersPerSecond(Rule[ProgrammeRateParams]):
    """Orders plus cancels in the current wall-clock second (a fixed one-second window), this
    order included: refused above ``limit`` (default 299 = one below the 300/s line, for accounts
    not registered as high-frequency), warned from ``warn_ratio`` of the line. Not re-checked on approval."""

    code = "max_orders_per_second"
    title = gettext_lazy("maximum orders plus cancels per second (programme trading)")
    category = "frequency"
    params_model = ProgrammeRateParams
    recheck_on_approval = False
    generous_params = {"limit": 1_000_000_000, "warn_ratio": "1000000"}

    def check(self, order: Order, context: RiskContext) -> Verdict:
        return programme_verdict(self, count_after=context.account_counter.second_count + 1,
                                 line=market_rules.hf_orders_per_second(context.day),
                                 registered=context.account.is_high_frequency, zh_unit="每秒", en_unit="in one second")
