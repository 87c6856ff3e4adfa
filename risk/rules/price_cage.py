"""Price: the price cage of continuous trading (MARKET_RULES "Price cage")."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.utils.translation import gettext_lazy

from risk.rules.base import Rule, RuleParams
from risk.verdicts import Verdict
from trading import calendar, market_rules
from trading.i18n import bilingual
from trading.market_rules import CageSettings, OrderType, Side
from trading.models import SessionMode

if TYPE_CHECKING:
    from orders.models import Order
    from risk.context import RiskContext


class PriceCageParams(RuleParams):
    star_chinext_tick_allowance: bool = False
    bse_tick_allowance: bool = True


class PriceCage(Rule[PriceCageParams]):
    """Refuses a limit buy above the cage bound or a limit sell below it (the bound itself passes),
    with the reference price of ``market_rules.cage_reference``. Only limit orders, only in continuous
    trading (always, for accounts on the paper clock); instruments without a cage pass."""

    code = "price_cage"
    title = gettext_lazy("price cage")
    category = "price"
    params_model = PriceCageParams

    def check(self, order: Order, context: RiskContext) -> Verdict:
        if order.order_type != OrderType.LIMIT or order.price is None:
            return self.ok(bilingual("not a limit order"))
        if context.account.session_mode == SessionMode.REAL and calendar.session_phase(context.at) != calendar.Phase.CONTINUOUS:
            return self.ok(bilingual("not continuous trading"))
        if not market_rules.has_price_cage(order.instrument, order.trading_day):
            return self.ok(bilingual("no price cage for this instrument"))
        quote = context.quote
        reference = market_rules.cage_reference(order.side, quote.bid if quote else None, quote.ask if quote else None,
                                                quote.last if quote else None, quote.prev_close if quote else None)
        if reference is None:
            return self.ok(bilingual("no reference price"))
        settings = CageSettings(star_chinext_tick_allowance=self.params.star_chinext_tick_allowance,
                                bse_tick_allowance=self.params.bse_tick_allowance)
        bound = market_rules.price_cage(order.instrument, order.side, reference, order.trading_day, settings)
        values = {"price": order.price, "bound": bound, "reference": reference}
        if order.side == Side.BUY and order.price > bound:
            return self.fail(bilingual("buy price {price} is above the cage bound {bound} from reference {reference}", price=order.price, bound=bound, reference=reference), **values)
        if order.side == Side.SELL and order.price < bound:
            return self.fail(bilingual("sell price {price} is below the cage bound {bound} from reference {reference}", price=order.price, bound=bound, reference=reference), **values)
        return self.ok(**values)
