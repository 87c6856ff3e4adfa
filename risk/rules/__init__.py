"""The registry of risk rules: explicit, in display order (no scanning).

A new rule is one class in ``risk/rules/<code>.py`` added to ``RULE_CLASSES``
below, and a row in the boundary tests (``tests/risk/test_rules.py`` fails
while a registered rule has none).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from risk.rules.base import POST_TRADE, PRE_TRADE, Rule, RuleConfigError
from risk.rules.broker_rejections import BrokerRejections
from risk.rules.cooldown import Cooldown
from risk.rules.daily_loss_limit import DailyLossLimit
from risk.rules.fund_double_ten import FundDoubleTen
from risk.rules.max_cancel_ratio import MaxCancelRatio
from risk.rules.max_daily_amount import MaxDailyAmount
from risk.rules.max_daily_orders import MaxDailyOrders
from risk.rules.max_drawdown import MaxDrawdown
from risk.rules.max_industry_ratio import MaxIndustryRatio
from risk.rules.max_issuer_share_ratio import MaxIssuerShareRatio
from risk.rules.max_leverage import MaxLeverage
from risk.rules.max_order_amount import MaxOrderAmount
from risk.rules.max_orders_per_day import MaxOrdersPerDay
from risk.rules.max_orders_per_second import MaxOrdersPerSecond
from risk.rules.max_position_ratio import MaxPositionRatio
from risk.rules.max_price_deviation import MaxPriceDeviation
from risk.rules.max_slippage import MaxSlippage
from risk.rules.max_symbol_daily_orders import MaxSymbolDailyOrders
from risk.rules.max_symbol_position import MaxSymbolPosition
from risk.rules.max_total_position_ratio import MaxTotalPositionRatio
from risk.rules.min_cash_reserve_ratio import MinCashReserveRatio
from risk.rules.price_cage import PriceCage
from risk.rules.price_limit import PriceLimit
from risk.rules.restricted_list import RestrictedList
from risk.rules.self_trade import SelfTrade
from risk.rules.st_block import StBlock
from risk.rules.suitability import Suitability
from trading.i18n import bilingual

RULE_CLASSES: tuple[type[Rule[Any]], ...] = (
    # compliance and price first: the cheapest and the most decisive
    RestrictedList,
    StBlock,
    Suitability,
    PriceLimit,
    PriceCage,
    MaxPriceDeviation,
    MaxSlippage,
    # capital
    MaxOrderAmount,
    MaxDailyAmount,
    MaxPositionRatio,
    MinCashReserveRatio,
    # position
    MaxSymbolPosition,
    MaxIndustryRatio,
    MaxTotalPositionRatio,
    MaxLeverage,
    # frequency
    MaxSymbolDailyOrders,
    MaxDailyOrders,
    Cooldown,
    MaxOrdersPerSecond,
    MaxOrdersPerDay,
    MaxCancelRatio,
    # compliance needing holdings
    SelfTrade,
    MaxIssuerShareRatio,
    FundDoubleTen,
    # post-trade protections
    DailyLossLimit,
    MaxDrawdown,
    BrokerRejections,
)

REGISTRY: dict[str, type[Rule[Any]]] = {cls.code: cls for cls in RULE_CLASSES}
assert len(REGISTRY) == len(RULE_CLASSES), "duplicate rule code"


def rule_class(code: str) -> type[Rule[Any]]:
    try:
        return REGISTRY[code]
    except KeyError:
        raise RuleConfigError(bilingual("unknown rule code {code!r}; known: {value}", code=code, value=', '.join(REGISTRY)), field="code") from None


def validate_rule_config(code: str, params: Mapping[str, Any] | None) -> dict[str, Any]:
    """Validate a rule's code and raw parameters; returns the parameters as stored.

    Raises django ValidationError (for model/admin validation) naming the field.
    """
    from django.core.exceptions import ValidationError

    try:
        return rule_class(code).normalize_params(params)
    except RuleConfigError as exc:
        raise ValidationError({"code" if exc.field == "code" else "params": exc.message}) from None


def rule_choices() -> list[tuple[str, str]]:
    return [(cls.code, f"{cls.code} · {cls.title}") for cls in RULE_CLASSES]


__all__ = ["POST_TRADE", "PRE_TRADE", "REGISTRY", "RULE_CLASSES", "Rule", "RuleConfigError", "rule_class",
           "rule_choices", "validate_rule_config"]
