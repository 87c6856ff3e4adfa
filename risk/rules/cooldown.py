"""Frequency: minimum time between two orders of the account on one symbol."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from django.utils.translation import gettext_lazy

from risk.rules.base import NonNegativeDecimal, Rule, RuleParams
from risk.verdicts import Verdict
from trading.i18n import bilingual

if TYPE_CHECKING:
    from orders.models import Order
    from risk.context import RiskContext


class CooldownParams(RuleParams):
    seconds: NonNegativeDecimal


class Cooldown(Rule[CooldownParams]):
    """Refuses an order entered less than ``seconds`` after the account's previous admitted order on
    the same symbol (exactly ``seconds`` later passes). Not re-checked on approval."""

    code = "cooldown"
    title = gettext_lazy("interval between orders in one symbol")
    category = "frequency"
    params_model = CooldownParams
    recheck_on_approval = False
    generous_params = {"seconds": "0"}

    def check(self, order: Order, context: RiskContext) -> Verdict:
        last = context.symbol_counter.last_order_at
        wait = self.params.seconds
        if last is None:
            return self.ok(seconds=wait)
        # Clocks of several machines may disagree by a little: never less than 0.
        since = max(Decimal((context.at - last) // timedelta(microseconds=1)) / 1_000_000, Decimal(0))
        values = {"seconds_since_last": since, "seconds": wait, "last_order_at": last}
        if since < wait:
            return self.fail(bilingual("{since}s since the previous order on {symbol}; cooldown is {wait}s", symbol=order.instrument.symbol, since=since, wait=wait), **values)
        return self.ok(**values)
