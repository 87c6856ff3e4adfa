"""Every registered rule at its boundary: just under, at and just over, for pass and fail.

Each case arranges the account, then returns the order to check (pre-trade) or
triggers the protection (post-trade). ``test_every_registered_rule_has_boundary_cases``
fails as soon as a rule is registered without a case here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from orders.models import Order, OrderStatus
from risk.rules import REGISTRY
from risk.rules.base import POST_TRADE
from risk.verdicts import RiskAction
from tests.risk.conftest import Env, outcome_of
from trading import market_rules
from trading.models import TradingState

LEVELS = ("under", "at", "over")


@dataclass(frozen=True)
class Case:
    code: str
    params: dict[str, Any]
    expect: tuple[str, str, str]  # outcome just under, at and just over the boundary
    arrange: Callable[[Env, str], dict[str, Any]]


CASES: dict[str, Case] = {}


def case(name: str, code: str, params: dict[str, Any], expect: tuple[str, str, str]):
    def register(arrange: Callable[[Env, str], dict[str, Any]]):
        CASES[name] = Case(code, params, expect, arrange)
        return arrange

    return register


def by_level(level: str, under: Any, at: Any, over: Any) -> Any:
    return {"under": under, "at": at, "over": over}[level]


# --------------------------------------------------------------------------- capital


@case("max_order_amount", "max_order_amount", {"max_amount": "100000"}, ("pass", "pass", "fail"))
def _(env: Env, level: str) -> dict[str, Any]:
    return {"price": "10.00", "quantity": by_level(level, 9900, 10000, 10100)}


@case("max_order_amount/market-buy-at-limit-up", "max_order_amount", {"max_amount": "110000"}, ("pass", "pass", "fail"))
def _(env: Env, level: str) -> dict[str, Any]:
    # A market buy without protection price counts at the limit up (11.00).
    return {"order_type": "MARKET", "price": None, "quantity": by_level(level, 9900, 10000, 10100)}


@case("max_daily_amount", "max_daily_amount", {"max_amount": "150000"}, ("pass", "pass", "fail"))
def _(env: Env, level: str) -> dict[str, Any]:
    env.submit(price="10.00", quantity=5000)  # 50,000 counted
    env.submit(symbol="000001.SZ", price="10.00", quantity=1000)  # 10,000 counted: both sides, every symbol
    return {"price": "10.00", "quantity": by_level(level, 8900, 9000, 9100)}


@case("max_position_ratio", "max_position_ratio", {"max_ratio": "0.10"}, ("pass", "pass", "fail"))
def _(env: Env, level: str) -> dict[str, Any]:
    env.position("600000.SH", 2000)  # 20,000 at last 10.00; total assets 1,020,000 -> 102,000 allowed
    return {"price": "10.00", "quantity": by_level(level, 8100, 8200, 8300)}


@case("min_cash_reserve_ratio", "min_cash_reserve_ratio", {"min_ratio": "0.899974"}, ("pass", "pass", "fail"))
def _(env: Env, level: str) -> dict[str, Any]:
    # 10,000 x 10.00 freezes 100,000 + commission 25.00 + transfer fee 1.00 = 100,026.00;
    # 899,974 left = 89.9974% of 1,000,000.
    return {"price": "10.00", "quantity": by_level(level, 9900, 10000, 10100)}


# --------------------------------------------------------------------------- position


@case("max_symbol_position/shares", "max_symbol_position", {"max_shares": 10000}, ("pass", "pass", "fail"))
def _(env: Env, level: str) -> dict[str, Any]:
    env.position("600000.SH", 500)
    env.submit(price="9.90", quantity=500)  # still to buy: 500
    return {"price": "10.00", "quantity": by_level(level, 8900, 9000, 9100)}


@case("max_symbol_position/value", "max_symbol_position", {"max_value": "100000"}, ("pass", "pass", "fail"))
def _(env: Env, level: str) -> dict[str, Any]:
    env.position("600000.SH", 1000)  # 10,000 at 10.00
    return {"price": by_level(level, "9.99", "10.00", "10.01"), "quantity": 9000}


@case("max_industry_ratio", "max_industry_ratio", {"max_ratio": "0.20"}, ("pass", "pass", "fail"))
def _(env: Env, level: str) -> dict[str, Any]:
    env.instrument("600000.SH", industry="银行")
    env.instrument("000001.SZ", industry="银行")
    env.instrument("600036.SH", industry="非银金融")
    env.position("000001.SZ", 10000)  # 100,000 of banks; total assets 1,100,000 -> 220,000 allowed
    env.position("600036.SH", 10000)  # another industry: counts in total assets only
    # total assets now 1,200,000 -> 240,000 allowed; 140,000 more of banks
    return {"price": "10.00", "quantity": by_level(level, 13900, 14000, 14100)}


@case("max_total_position_ratio", "max_total_position_ratio", {"max_ratio": "0.5"}, ("pass", "pass", "fail"))
def _(env: Env, level: str) -> dict[str, Any]:
    return {"price": "10.00", "quantity": by_level(level, 49900, 50000, 50100)}


@case("max_leverage", "max_leverage", {"max_leverage": "0.5"}, ("pass", "pass", "fail"))
def _(env: Env, level: str) -> dict[str, Any]:
    env.position("000001.SZ", 10000)  # 100,000; net assets 1,100,000 -> 550,000 exposure allowed
    return {"price": "10.00", "quantity": by_level(level, 44900, 45000, 45100)}


# --------------------------------------------------------------------------- frequency


@case("max_symbol_daily_orders", "max_symbol_daily_orders", {"max_orders": 3}, ("pass", "pass", "fail"))
def _(env: Env, level: str) -> dict[str, Any]:
    for index in range(by_level(level, 1, 2, 3)):
        env.submit(price="9.90", quantity=100, client_order_id=f"prior-{index}")
    env.submit(symbol="000001.SZ", price="9.90", quantity=100)  # another symbol: not counted here
    return {"price": "9.90", "quantity": 100}


@case("max_daily_orders", "max_daily_orders", {"max_orders": 3}, ("pass", "pass", "fail"))
def _(env: Env, level: str) -> dict[str, Any]:
    symbols = ["600000.SH", "000001.SZ", "600036.SH"]
    for index in range(by_level(level, 1, 2, 3)):
        env.submit(symbol=symbols[index], price="9.90", quantity=100)
    return {"price": "9.90", "quantity": 100}


@case("cooldown", "cooldown", {"seconds": "5"}, ("fail", "pass", "pass"))
def _(env: Env, level: str) -> dict[str, Any]:
    env.submit(price="9.90", quantity=100)
    env.clock.advance(by_level(level, 4.999999, 5, 5.000001))
    return {"price": "9.90", "quantity": 100}


@case("max_orders_per_second", "max_orders_per_second", {}, ("warn", "warn", "fail"))
def _(env: Env, level: str) -> dict[str, Any]:
    # Default for an account not registered as high-frequency: 299 (one below 300) per second.
    env.counter(second=int(env.clock().timestamp()), second_count=by_level(level, 297, 298, 299))
    return {"price": "9.90", "quantity": 100}


@case("max_orders_per_second/warn-line", "max_orders_per_second", {}, ("pass", "warn", "warn"))
def _(env: Env, level: str) -> dict[str, Any]:
    # Warn from 65% of the 300/s line = 195.
    env.counter(second=int(env.clock().timestamp()), second_count=by_level(level, 193, 194, 195))
    return {"price": "9.90", "quantity": 100}


@case("max_orders_per_second/explicit-limit", "max_orders_per_second", {"limit": 10, "warn_ratio": "1"}, ("pass", "pass", "fail"))
def _(env: Env, level: str) -> dict[str, Any]:
    env.counter(second=int(env.clock().timestamp()), second_count=by_level(level, 8, 9, 10))
    return {"price": "9.90", "quantity": 100}


@case("max_orders_per_day", "max_orders_per_day", {}, ("warn", "warn", "fail"))
def _(env: Env, level: str) -> dict[str, Any]:
    # Default: 19,999 orders + cancels a day (one below 20,000).
    env.counter(orders=10000, cancels=by_level(level, 9997, 9998, 9999))
    return {"price": "9.90", "quantity": 100}


@case("max_cancel_ratio", "max_cancel_ratio", {"max_ratio": "0.5", "min_orders": 4}, ("pass", "pass", "fail"))
def _(env: Env, level: str) -> dict[str, Any]:
    env.counter(orders=10, cancels=by_level(level, 4, 5, 6))
    return {"price": "9.90", "quantity": 100}


@case("max_cancel_ratio/min-orders", "max_cancel_ratio", {"max_ratio": "0.5", "min_orders": 10}, ("pass", "fail", "fail"))
def _(env: Env, level: str) -> dict[str, Any]:
    env.counter(orders=by_level(level, 9, 10, 11), cancels=9)
    return {"price": "9.90", "quantity": 100}


# --------------------------------------------------------------------------- price


@case("price_limit", "price_limit", {}, ("pass", "pass", "fail"))
def _(env: Env, level: str) -> dict[str, Any]:
    return {"price": by_level(level, "10.99", "11.00", "11.01")}  # limit up 11.00 from 10.00


@case("price_limit/refuse-buy-at-limit-up", "price_limit", {"refuse_buy_at_limit_up": True}, ("pass", "fail", "fail"))
def _(env: Env, level: str) -> dict[str, Any]:
    return {"price": by_level(level, "10.99", "11.00", "11.01")}


@case("price_limit/refuse-sell-at-limit-down", "price_limit", {"refuse_sell_at_limit_down": True}, ("fail", "fail", "pass"))
def _(env: Env, level: str) -> dict[str, Any]:
    return {"side": "SELL", "price": by_level(level, "8.99", "9.00", "9.01")}


@case("price_cage", "price_cage", {}, ("pass", "pass", "fail"))
def _(env: Env, level: str) -> dict[str, Any]:
    # Main board buy: max(102% x ask 10.00, 10.00 + 10 ticks) = 10.20.
    return {"price": by_level(level, "10.19", "10.20", "10.21")}


@case("price_cage/sell", "price_cage", {}, ("fail", "pass", "pass"))
def _(env: Env, level: str) -> dict[str, Any]:
    # Sell: min(98% x bid 9.99, 9.99 - 0.10) = 9.79.
    return {"side": "SELL", "price": by_level(level, "9.78", "9.79", "9.80")}


@case("max_price_deviation", "max_price_deviation", {"max_ratio": "0.05"}, ("pass", "pass", "fail"))
def _(env: Env, level: str) -> dict[str, Any]:
    return {"price": by_level(level, "10.49", "10.50", "10.51")}


@case("max_price_deviation/below", "max_price_deviation", {"max_ratio": "0.05"}, ("fail", "pass", "pass"))
def _(env: Env, level: str) -> dict[str, Any]:
    return {"side": "SELL", "price": by_level(level, "9.49", "9.50", "9.51")}


@case("max_slippage", "max_slippage", {"max_ratio": "0.05"}, ("pass", "pass", "fail"))
def _(env: Env, level: str) -> dict[str, Any]:
    return {"order_type": "MARKET", "price": None, "protection_price": by_level(level, "10.49", "10.50", "10.51")}


@case("max_slippage/default-protection", "max_slippage", {"max_ratio": "0.10"}, ("pass", "pass", "fail"))
def _(env: Env, level: str) -> dict[str, Any]:
    # No protection price: the limit up 11.00 is the worst case; reference = the ask.
    env.quote("600000.SH", last="10.00", prev_close="10.00", bid="9.99", ask=by_level(level, "10.01", "10.00", "9.99"))
    return {"order_type": "MARKET", "price": None}


# --------------------------------------------------------------------------- compliance


@case("restricted_list/valid-to", "restricted_list", {}, ("pass", "fail", "fail"))
def _(env: Env, level: str) -> dict[str, Any]:
    from risk.models import RestrictedSymbol
    from risk.services import restricted_symbol_save

    # valid_to yesterday (expired), today (inclusive), tomorrow
    valid_to = env.today + timedelta(days=by_level(level, -1, 0, 1))
    restricted_symbol_save(restriction=RestrictedSymbol(instrument=env.instrument("600000.SH"), reason="内幕信息知情人",
                                                        valid_to=valid_to))
    return {"price": "9.90"}


@case("restricted_list/valid-from", "restricted_list", {}, ("fail", "fail", "pass"))
def _(env: Env, level: str) -> dict[str, Any]:
    from risk.models import RestrictedSymbol
    from risk.services import restricted_symbol_save

    valid_from = env.today + timedelta(days=by_level(level, -1, 0, 1))
    restricted_symbol_save(restriction=RestrictedSymbol(instrument=env.instrument("600000.SH"), account=env.account,
                                                        reason="定期报告窗口期", valid_from=valid_from))
    return {"price": "9.90"}


@case("st_block", "st_block", {}, ("pass", "fail", "pass"))
def _(env: Env, level: str) -> dict[str, Any]:
    # under: not ST; at: buying ST; over: selling ST (allowed unless block_sells)
    env.instrument("600000.SH", is_st=by_level(level, False, True, True))
    return {"side": by_level(level, "BUY", "BUY", "SELL"), "price": "9.90"}


@case("suitability", "suitability", {}, ("pass", "pass", "fail"))
def _(env: Env, level: str) -> dict[str, Any]:
    # 600000.SH is a main-board stock: R3. Tolerance C4 and C3 cover it, C2 does not.
    from audit.services import Actor
    from trading.services import risk_assessment_record

    risk_assessment_record(owner="acc1", level=by_level(level, "C4", "C3", "C2"), assessed_on=env.today,
                           expires_on=env.today + timedelta(days=365), actor=Actor.system("test"))
    return {"price": "9.90"}


@case("suitability/expiry", "suitability", {}, ("pass", "pass", "fail"))
def _(env: Env, level: str) -> dict[str, Any]:
    # valid through expires_on; the day after, it has expired
    from audit.services import Actor
    from trading.services import risk_assessment_record

    expires = env.today + timedelta(days=by_level(level, 1, 0, -1))
    risk_assessment_record(owner="acc1", level="C5", assessed_on=expires - timedelta(days=365), expires_on=expires,
                           actor=Actor.system("test"))
    return {"price": "9.90"}


@case("self_trade", "self_trade", {}, ("pass", "fail", "fail"))
def _(env: Env, level: str) -> dict[str, Any]:
    env.position("600000.SH", 1000)
    env.submit(side="SELL", price="10.10", quantity=1000)  # rests: the bid is 9.99
    return {"price": by_level(level, "10.09", "10.10", "10.11")}


@case("self_trade/control-group", "self_trade", {}, ("pass", "fail", "fail"))
def _(env: Env, level: str) -> dict[str, Any]:
    from tests import factories

    other = factories.account("acc2", cash="1000000")
    for account in (env.account, other):
        account.control_group = "fund-manager-A"
        account.save(update_fields=["control_group"])
    env.refresh()
    env.submit(account="acc2", price="9.95", quantity=1000)  # a resting buy of the other account
    env.position("600000.SH", 1000)
    return {"side": "SELL", "price": by_level(level, "9.96", "9.95", "9.94")}


@case("max_issuer_share_ratio", "max_issuer_share_ratio", {}, ("warn", "fail", "fail"))
def _(env: Env, level: str) -> dict[str, Any]:
    env.instrument("600000.SH", total_shares=1_000_000)  # 5% = 50,000 shares; reaching it is refused
    return {"price": "9.90", "quantity": by_level(level, 49900, 50000, 50100)}


@case("max_issuer_share_ratio/warn-line", "max_issuer_share_ratio", {}, ("pass", "warn", "warn"))
def _(env: Env, level: str) -> dict[str, Any]:
    env.instrument("600000.SH", total_shares=1_000_000)  # warning from 4.5% = 45,000 shares
    env.position("600000.SH", 5000)
    return {"price": "9.90", "quantity": by_level(level, 39900, 40000, 40100)}


@case("fund_double_ten/nav", "fund_double_ten", {}, ("pass", "pass", "fail"))
def _(env: Env, level: str) -> dict[str, Any]:
    return {"price": by_level(level, "9.99", "10.00", "10.01"), "quantity": 10000}  # 10% of NAV 1,000,000


@case("fund_double_ten/manager", "fund_double_ten", {"max_nav_ratio": "1"}, ("pass", "pass", "fail"))
def _(env: Env, level: str) -> dict[str, Any]:
    from tests import factories

    env.instrument("600000.SH", total_shares=200_000)  # 10% = 20,000 shares for the whole group
    other = factories.account("acc2", cash="1000000")
    for account in (env.account, other):
        account.control_group = "manager-B"
        account.save(update_fields=["control_group"])
    env.refresh()
    env.position("600000.SH", 5000, account=other)
    env.submit(account="acc2", price="9.90", quantity=5000)  # the other fund is still buying 5,000
    return {"price": "9.90", "quantity": by_level(level, 9900, 10000, 10100)}


# --------------------------------------------------------------------------- post-trade protections


def _filled_order(env: Env) -> Order:
    return Order.objects.create(account=env.account, instrument=env.instrument("600000.SH"), client_order_id="filled",
                                side="BUY", order_type="LIMIT", price=Decimal("10.00"), quantity=100, trading_day=env.today,
                                status=OrderStatus.FILLED, filled_quantity=100, submitted_at=env.clock())


@case("daily_loss_limit", "daily_loss_limit", {"max_loss_amount": "1000"}, ("pass", "fail", "fail"))
def _(env: Env, level: str) -> dict[str, Any]:
    cash = env.refresh().cash
    env.counter(start_assets=cash + Decimal(by_level(level, "999.99", "1000.00", "1000.01")))
    return {"order": _filled_order(env), "new_fills": 1}


@case("daily_loss_limit/ratio", "daily_loss_limit", {"max_loss_ratio": "0.02"}, ("pass", "fail", "fail"))
def _(env: Env, level: str) -> dict[str, Any]:
    env.position("600000.SH", 10000, cost="100000")  # worth 100,000 at last 10.00
    # Start of day 1,100,000 (no deposits): 2% = 22,000. Loss through the price of the holding.
    env.counter(start_assets=Decimal("1100000"))
    env.quote("600000.SH", last=by_level(level, "7.81", "7.80", "7.79"), prev_close="10.00", bid="7.78", ask="7.81")
    return {"order": _filled_order(env), "new_fills": 1}


@case("max_drawdown", "max_drawdown", {"max_amount": "5000"}, ("pass", "fail", "fail"))
def _(env: Env, level: str) -> dict[str, Any]:
    cash = env.refresh().cash
    env.counter(start_assets=cash, peak_assets=cash + Decimal(by_level(level, "4999.99", "5000.00", "5000.01")))
    return {"order": _filled_order(env), "new_fills": 1}


@case("max_drawdown/ratio", "max_drawdown", {"max_ratio": "0.01"}, ("pass", "fail", "fail"))
def _(env: Env, level: str) -> dict[str, Any]:
    cash = env.refresh().cash  # 1,000,000: peak 1,010,000 -> 1% = 10,100
    env.counter(start_assets=cash, peak_assets=cash + Decimal(by_level(level, "10101.00", "10101.02", "10101.03")))
    return {"order": _filled_order(env), "new_fills": 1}


@case("broker_rejections", "broker_rejections", {"max_consecutive": 3}, ("pass", "fail", "fail"))
def _(env: Env, level: str) -> dict[str, Any]:
    instrument = env.instrument("600000.SH")
    base = env.clock()
    Order.objects.create(account=env.account, instrument=instrument, client_order_id="accepted", side="BUY",
                         order_type="LIMIT", price=Decimal("9.90"), quantity=100, trading_day=env.today,
                         status=OrderStatus.SUBMITTED, submitted_at=base - timedelta(minutes=10))
    last = None
    for index in range(by_level(level, 2, 3, 4)):
        last = Order.objects.create(account=env.account, instrument=instrument, client_order_id=f"refused-{index}", side="BUY",
                                    order_type="LIMIT", price=Decimal("9.90"), quantity=100, trading_day=env.today,
                                    status=OrderStatus.REJECTED, submitted_at=base - timedelta(minutes=5 - index))
    return {"order": last, "new_fills": 0}


# --------------------------------------------------------------------------- the tests


def test_every_registered_rule_has_boundary_cases() -> None:
    covered = {c.code for c in CASES.values()}
    missing = set(REGISTRY) - covered
    assert not missing, f"registered rules without boundary tests: {sorted(missing)}"


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("level", LEVELS)
def test_boundary(env: Env, name: str, level: str) -> None:
    spec = CASES[name]
    rule = REGISTRY[spec.code]
    env.rule(spec.code, spec.params)
    arranged = spec.arrange(env, level)
    expected = spec.expect[LEVELS.index(level)]
    if rule.phase == POST_TRADE:
        from risk.services import risk_post_trade

        account = env.refresh()
        risk_post_trade(account=account, order=arranged["order"], new_fills=arranged["new_fills"])
        fired = env.refresh().trading_state != TradingState.ACTIVE
        assert ("fail" if fired else "pass") == expected, (name, level)
        return
    verdict = env.verdict(spec.code, **arranged)
    assert outcome_of(verdict) == expected, (name, level, verdict)
    if expected == "fail":
        assert verdict.action == RiskAction.REJECT and "(" in verdict.message, verdict


def test_daily_amount_counts_only_admitted_orders(env: Env) -> None:
    """The counted amount of max_daily_amount: refused orders are not counted."""
    from risk.models import RiskCounter

    env.rule("max_order_amount", {"max_amount": "50000"})
    env.submit(price="9.90", quantity=5000)  # 49,500: admitted
    refused = env.submit(price="9.90", quantity=6000)  # 59,400: refused by max_order_amount
    assert refused.status == OrderStatus.REJECTED
    row = RiskCounter.objects.get(account=env.account, trading_day=env.today, key="")
    assert (row.orders, row.amount, row.rejected) == (1, Decimal("49500.00"), 1)
    symbol_row = RiskCounter.objects.get(account=env.account, trading_day=env.today, key="600000.SH")
    assert (symbol_row.orders, symbol_row.amount) == (1, Decimal("49500.00"))


def test_market_notional_is_the_limit_up_for_buys(env: Env) -> None:
    from risk.context import order_notional

    order = env.build(order_type="MARKET", price=None, quantity=1000)
    assert order_notional(order, env.quote("600000.SH", last="10.00", prev_close="10.00", bid="9.99", ask="10.00")) == Decimal("11000.00")
    assert market_rules.limit_prices(order.instrument, Decimal("10.00"), env.today) == (Decimal("9.00"), Decimal("11.00"))
