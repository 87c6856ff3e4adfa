"""Compliance: the funds' "double ten" (MARKET_RULES "Concentration")."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from django.utils.translation import gettext_lazy

from risk.rules.base import Ratio, Rule, RuleParams, money, pct, ratio_of
from risk.verdicts import Verdict
from trading.i18n import bilingual

if TYPE_CHECKING:
    from orders.models import Order
    from risk.context import RiskContext


class FundDoubleTenParams(RuleParams):
    max_nav_ratio: Ratio = Decimal("0.10")
    max_manager_share_ratio: Ratio = Decimal("0.10")


class FundDoubleTen(Rule[FundDoubleTenParams]):
    """For a fund account: one stock at most ``max_nav_ratio`` (10%) of the fund's NAV (total assets),
    and all funds of one manager (the account's control group) at most ``max_manager_share_ratio``
    (10%) of the company's shares; equal passes. Value and shares after the order as in
    ``max_position_ratio`` / ``max_issuer_share_ratio``. Sells pass."""

    code = "fund_double_ten"
    title = gettext_lazy("fund double-ten rule")
    category = "compliance"
    params_model = FundDoubleTenParams
    generous_params = {"max_nav_ratio": "1", "max_manager_share_ratio": "1"}

    def check(self, order: Order, context: RiskContext) -> Verdict:
        if not context.is_buy:
            return self.ok(bilingual("a sell reduces the stake"))
        symbol = order.instrument.symbol
        value, nav, nav_limit = context.symbol_value_after, context.total_assets, self.params.max_nav_ratio
        nav_ratio = ratio_of(value, nav)
        values: dict[str, object] = {"value_after": value, "nav": nav, "nav_ratio": nav_ratio, "max_nav_ratio": nav_limit}
        if value > nav_limit * nav:
            return self.fail(bilingual("{symbol} value after the order {money_value} is {pct_nav_ratio} of the fund's NAV {money_nav}, above {pct_nav_limit}", symbol=symbol, money_value=money(value), money_nav=money(nav), pct_nav_ratio=pct(nav_ratio), pct_nav_limit=pct(nav_limit)), **values)
        total_shares = order.instrument.total_shares
        if total_shares:
            shares = context.symbol_shares_after + context.group_other_shares
            share_ratio = ratio_of(Decimal(shares), Decimal(total_shares))
            share_limit = self.params.max_manager_share_ratio
            values.update(manager_shares_after=shares, total_shares=total_shares, share_ratio=share_ratio,
                          max_manager_share_ratio=share_limit)
            if shares > share_limit * total_shares:
                return self.fail(bilingual("funds of one manager would hold {shares} shares of {symbol} = {pct_share_ratio} of total shares, above {pct_share_limit}", symbol=symbol, shares=shares, pct_share_ratio=pct(share_ratio), pct_share_limit=pct(share_limit)), **values)
        return self.ok(**values)
