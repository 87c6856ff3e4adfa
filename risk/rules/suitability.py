"""Compliance: the instrument's risk level (R1-R5) within the owner's risk tolerance (C1-C5)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.utils.translation import gettext_lazy

from risk.rules.base import Rule, RuleParams
from risk.verdicts import Verdict
from trading.suitability import instrument_risk_level, suitability_gap

if TYPE_CHECKING:
    from orders.models import Order
    from risk.context import RiskContext


class SuitabilityParams(RuleParams):
    check_sells: bool = False
    require_assessment: bool = True  # False: an owner without any assessment is not checked


class Suitability(Rule[SuitabilityParams]):
    """Fails a buy when the account owner's risk-tolerance assessment (cached on the account row:
    ``Account.risk_tolerance``, ``risk_tolerance_expires_on``) is missing, expired (the day after
    ``expires_on``) or below the instrument's risk level (``trading.suitability.instrument_risk_level``:
    Cn covers R1..Rn; equal passes). Sells are not checked unless ``check_sells``: cutting a holding
    reduces risk. Its action is the row's: WARN lets the order pass with a risk event, REJECT
    refuses it, REVIEW holds it. With ``require_assessment`` off, an owner never assessed passes
    (an expired assessment still fails). Reads nothing beyond the order's account and instrument."""

    code = "suitability"
    title = gettext_lazy("investor suitability: risk level within the owner's tolerance")
    category = "compliance"
    params_model = SuitabilityParams
    generous_params = {"require_assessment": False}

    def check(self, order: Order, context: RiskContext) -> Verdict:
        account = order.account
        level = instrument_risk_level(order.instrument)
        values = {"risk_level": level, "risk_tolerance": account.risk_tolerance,
                  "expires_on": account.risk_tolerance_expires_on}
        if not context.is_buy and not self.params.check_sells:
            return self.ok(**values)
        gap = suitability_gap(tolerance=account.risk_tolerance, expires_on=account.risk_tolerance_expires_on,
                              instrument=order.instrument, today=context.day)
        if gap is None or (gap.reason == "no_assessment" and not self.params.require_assessment):
            return self.ok(**values)
        return self.fail(gap.describe(order.instrument), reason=gap.reason, **values)
