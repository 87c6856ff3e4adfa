"""Compliance: self-trade prevention (MARKET_RULES "Programme trading and surveillance")."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.utils.translation import gettext_lazy

from risk.rules.base import Rule, RuleParams
from risk.verdicts import Verdict
from trading.i18n import bilingual

if TYPE_CHECKING:
    from orders.models import Order
    from risk.context import RiskContext


class SelfTradeParams(RuleParams):
    include_control_group: bool = True


class SelfTrade(Rule[SelfTradeParams]):
    """Refuses an order that could cross a resting opposite-side order of the same account or, with
    ``include_control_group``, of any account in the same ``control_group``: a buy at P crosses a sell
    at or below P, a sell at P a buy at or above P, and a market order (resting or incoming) crosses
    any. Open orders not yet at the broker (NEW, held) count as resting."""

    code = "self_trade"
    title = gettext_lazy("self-trade prevention (controlling group included)")
    category = "compliance"
    params_model = SelfTradeParams

    def check(self, order: Order, context: RiskContext) -> Verdict:
        crossing = context.crossing_orders(include_group=self.params.include_control_group)
        if crossing:
            first = crossing[0]
            price = first["price"] if first["order_type"] != "MARKET" else "市价/market"
            ids = [c["pk"] for c in crossing]
            return self.fail(bilingual("could trade against resting {side_lower} order #{pk} @ {price} of account {account_name} (same account or control group)", account_name=first['account__name'], pk=first['pk'], side=first['side'], price=price, side_lower=first['side'].lower()), crossing_orders=ids)
        return self.ok()
