"""Price: inside the day's price-limit band; optionally no buying at limit up / selling at limit down."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.utils.translation import gettext_lazy

from risk.rules.base import Rule, RuleParams
from risk.verdicts import Verdict
from trading import market_rules
from trading.i18n import bilingual
from trading.market_rules import OrderType

if TYPE_CHECKING:
    from orders.models import Order
    from risk.context import RiskContext


class PriceLimitParams(RuleParams):
    refuse_buy_at_limit_up: bool = False
    refuse_sell_at_limit_down: bool = False


class PriceLimit(Rule[PriceLimitParams]):
    """Refuses a limit price (or a market order's protection price) outside [limit down, limit up]
    (the limits themselves pass). With ``refuse_buy_at_limit_up``: a limit buy at the limit up, or a
    market buy while the last price is at the limit up, is refused (one tick below passes); likewise
    ``refuse_sell_at_limit_down``. No previous close or no limit that day: passes."""

    code = "price_limit"
    title = gettext_lazy("daily price limits")
    category = "price"
    params_model = PriceLimitParams

    def check(self, order: Order, context: RiskContext) -> Verdict:
        quote = context.quote
        prev_close = quote.prev_close if quote else None
        if not prev_close:
            return self.ok(bilingual("no previous close: not checked"))
        limits = market_rules.limit_prices(order.instrument, prev_close, order.trading_day)
        if limits is None:
            return self.ok(bilingual("no price limit today"))
        down, up = limits
        is_market = order.order_type == OrderType.MARKET
        price = order.protection_price if is_market else order.price
        values = {"price": price, "limit_down": down, "limit_up": up, "prev_close": prev_close}
        if price is not None and not down <= price <= up:
            return self.fail(bilingual("price {price} is outside the day's limits {down}-{up}", price=price, down=down, up=up), **values)
        last = quote.last if quote else None
        if context.is_buy and self.params.refuse_buy_at_limit_up:
            at_limit = (last is not None and last >= up) if is_market else (price is not None and price >= up)
            if at_limit:
                return self.fail(bilingual("buying at the limit up {up} is not allowed", up=up), last=last, **values)
        if not context.is_buy and self.params.refuse_sell_at_limit_down:
            at_limit = (last is not None and last <= down) if is_market else (price is not None and price <= down)
            if at_limit:
                return self.fail(bilingual("selling at the limit down {down} is not allowed", down=down), last=last, **values)
        return self.ok(**values)
