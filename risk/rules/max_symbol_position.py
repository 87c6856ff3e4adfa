"""Position: the holding in one symbol after the order, in shares and/or value."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.utils.translation import gettext_lazy
from pydantic import model_validator

from risk.rules.base import Count, Money, Rule, RuleParams, money
from risk.verdicts import Verdict
from trading.i18n import bilingual

if TYPE_CHECKING:
    from orders.models import Order
    from risk.context import RiskContext


class MaxSymbolPositionParams(RuleParams):
    max_shares: Count | None = None
    max_value: Money | None = None

    @model_validator(mode="after")
    def _one_given(self) -> MaxSymbolPositionParams:
        if self.max_shares is None and self.max_value is None:
            raise ValueError(bilingual("give max_shares and/or max_value"))
        return self


class MaxSymbolPosition(Rule[MaxSymbolPositionParams]):
    """Refuses a buy after which the symbol's shares exceed ``max_shares`` or its value exceeds
    ``max_value`` (equal passes). Shares after = held + still to buy by open orders + this order;
    value after as in ``max_position_ratio``. Sells pass."""

    code = "max_symbol_position"
    title = gettext_lazy("maximum holding in one symbol (shares or market value)")
    category = "position"
    params_model = MaxSymbolPositionParams
    generous_params = {"max_shares": 10_000_000_000, "max_value": "1000000000000000"}

    def check(self, order: Order, context: RiskContext) -> Verdict:
        if not context.is_buy:
            return self.ok(bilingual("a sell reduces the position"))
        shares, value = context.symbol_shares_after, context.symbol_value_after
        max_shares, max_value = self.params.max_shares, self.params.max_value
        values = {"shares_after": shares, "max_shares": max_shares, "value_after": value, "max_value": max_value}
        symbol = order.instrument.symbol
        if max_shares is not None and shares > max_shares:
            return self.fail(bilingual("{symbol} holding after the order {shares} shares exceeds max {max_shares}", symbol=symbol, shares=shares, max_shares=max_shares), **values)
        if max_value is not None and value > max_value:
            return self.fail(bilingual("{symbol} value after the order {money_value} exceeds max {money_max_value}", symbol=symbol, money_value=money(value), money_max_value=money(max_value)), **values)
        return self.ok(**values)
