"""Compliance: symbols an account, or everyone, may not trade (insider lists...), from RestrictedSymbol."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.utils.translation import gettext_lazy

from risk.rules.base import Rule, RuleParams
from risk.verdicts import Verdict
from trading.i18n import bilingual

if TYPE_CHECKING:
    from orders.models import Order
    from risk.context import RiskContext


class RestrictedListParams(RuleParams):
    pass


class RestrictedList(Rule[RestrictedListParams]):
    """Refuses an order on a symbol restricted for this account or for every account, on the order's
    side, on a day within [valid_from, valid_to] (both inclusive; empty = open). The list is edited in
    admin (禁止交易证券) and cached per process until it changes."""

    code = "restricted_list"
    title = gettext_lazy("restricted list")
    category = "compliance"
    params_model = RestrictedListParams

    def check(self, order: Order, context: RiskContext) -> Verdict:
        from risk.controller import restrictions_for

        for entry in restrictions_for(context.config, order.instrument.pk):
            if entry.applies(account_id=context.account.pk, side=order.side, day=order.trading_day):
                scope = "本账户" if entry.account_id else "全部账户"
                return self.fail(bilingual("{symbol} is restricted ({value}): {reason}", symbol=order.instrument.symbol, scope=scope, reason=entry.reason, value='this account' if entry.account_id else 'all accounts'), restriction=entry.pk, reason=entry.reason, valid_from=entry.valid_from,
                                 valid_to=entry.valid_to)
        return self.ok()
