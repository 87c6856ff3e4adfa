"""Position: gross exposure after the order over net assets."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.utils.translation import gettext_lazy

from risk.rules.base import PositiveDecimal, Rule, RuleParams, money, ratio_of
from risk.verdicts import Verdict
from trading.i18n import bilingual

if TYPE_CHECKING:
    from orders.models import Order
    from risk.context import RiskContext


class MaxLeverageParams(RuleParams):
    max_leverage: PositiveDecimal


class MaxLeverage(Rule[MaxLeverageParams]):
    """Refuses a buy after which gross exposure (market value + open buys + this order) exceeds
    ``max_leverage`` x net assets (equal passes). Net assets = total assets minus liabilities; cash
    accounts have none, so this equals ``max_total_position_ratio`` until margin accounts exist.
    Sells pass."""

    code = "max_leverage"
    title = gettext_lazy("maximum leverage")
    category = "position"
    params_model = MaxLeverageParams
    generous_params = {"max_leverage": "10"}

    def check(self, order: Order, context: RiskContext) -> Verdict:
        if not context.is_buy:
            return self.ok(bilingual("a sell lowers leverage"))
        exposure, net_assets, limit = context.gross_exposure_after, context.total_assets, self.params.max_leverage
        leverage = ratio_of(exposure, net_assets)
        values = {"exposure_after": exposure, "net_assets": net_assets, "leverage": leverage, "max_leverage": limit}
        if exposure > limit * net_assets:
            return self.fail(bilingual("leverage after the order {leverage}x (exposure {money_exposure} / net assets {money_net_assets}) exceeds max {limit}x", leverage=leverage, money_exposure=money(exposure), money_net_assets=money(net_assets), limit=limit), **values)
        return self.ok(**values)
