"""Compliance: the 5% stake line of one issuer (举牌), with an early warning."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from django.utils.translation import gettext_lazy
from pydantic import model_validator

from risk.rules.base import Ratio, Rule, RuleParams, pct, ratio_of
from risk.verdicts import Verdict
from trading.i18n import bilingual

if TYPE_CHECKING:
    from orders.models import Order
    from risk.context import RiskContext


class MaxIssuerShareRatioParams(RuleParams):
    limit_ratio: Ratio = Decimal("0.05")
    warn_ratio: Ratio = Decimal("0.045")
    include_control_group: bool = True

    @model_validator(mode="after")
    def _warn_below_limit(self) -> MaxIssuerShareRatioParams:
        if self.warn_ratio > self.limit_ratio:
            raise ValueError(bilingual("warn_ratio must not exceed limit_ratio"))
        return self


class MaxIssuerShareRatio(Rule[MaxIssuerShareRatioParams]):
    """Shares of the issuer after a buy (held + open buys + this order, plus the control group's with
    ``include_control_group``) over Instrument.total_shares: REACHING ``limit_ratio`` (default 5%,
    which triggers disclosure and a trading freeze) is refused; reaching ``warn_ratio`` (default 4.5%)
    warns. Unknown total shares or a sell: passes."""

    code = "max_issuer_share_ratio"
    title = gettext_lazy("issuer stake disclosure line (5%)")
    category = "compliance"
    params_model = MaxIssuerShareRatioParams
    generous_params = {"limit_ratio": "1", "warn_ratio": "1"}

    def check(self, order: Order, context: RiskContext) -> Verdict:
        total_shares = order.instrument.total_shares
        if not context.is_buy:
            return self.ok(bilingual("a sell reduces the stake"))
        if not total_shares:
            return self.ok(bilingual("total shares unknown"))
        shares = context.symbol_shares_after + (context.group_other_shares if self.params.include_control_group else 0)
        ratio = ratio_of(Decimal(shares), Decimal(total_shares))
        limit, warn = self.params.limit_ratio, self.params.warn_ratio
        values = {"shares_after": shares, "total_shares": total_shares, "ratio": ratio, "limit_ratio": limit, "warn_ratio": warn}
        if shares >= limit * total_shares:
            return self.fail(bilingual("after the order the stake in {symbol} is {shares} shares = {pct_ratio} of total shares, reaching the {pct_limit} disclosure line", symbol=order.instrument.symbol, shares=shares, pct_ratio=pct(ratio), pct_limit=pct(limit)), **values)
        if shares >= warn * total_shares:
            return self.warn(bilingual("the stake in {symbol} after the order is {pct_ratio} of total shares, near the {pct_limit} line (warning at {pct_warn})", symbol=order.instrument.symbol, pct_ratio=pct(ratio), pct_limit=pct(limit), pct_warn=pct(warn)), **values)
        return self.ok(**values)
