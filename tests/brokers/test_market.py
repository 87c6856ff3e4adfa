"""The simulated market moves like a real stock: a first order priced from a quote is still good a minute later."""

from __future__ import annotations

import random
import statistics
from datetime import date
from decimal import Decimal

from brokers.market import RandomWalkMarket, step_sigma
from trading import market_rules

DAY = date(2026, 11, 30)


def _walk(seconds: int, seed: int, **kwargs) -> dict[str, list[dict]]:
    refs = [r for r in market_rules.load_reference_instruments() if r.prev_close]
    market = RandomWalkMarket(refs, interval_seconds=1.0, day=DAY, rng=random.Random(seed), **kwargs)
    series: dict[str, list[dict]] = {}
    for _ in range(seconds):
        for quote in market.step():
            series.setdefault(quote["symbol"], []).append(quote)
    return series


def test_one_minute_moves_are_small_like_a_real_stock() -> None:
    series = _walk(3600, seed=7)  # an hour of quotes a second
    returns = []
    for quotes in series.values():
        asks = [q["ask"] for q in quotes]
        returns += [float(asks[i + 60] / asks[i] - 1) for i in range(0, len(asks) - 60, 60)]
    # 2 %/day over 14,400 s: about 0.13 % a minute (tick rounding adds a little on cheap codes).
    assert statistics.pstdev(returns) < 0.005
    assert max(abs(r) for r in returns) < 0.02  # the reported 2.5 % in one minute does not happen
    assert step_sigma(1.0) == 0.02 / 120


def test_the_readme_first_order_price_stays_inside_the_cage_for_a_minute() -> None:
    for seed in range(20):
        asks = [q["ask"] for q in _walk(61, seed=seed)["600000.SH"]]
        first, later = asks[0], asks[60]
        # A buy at the first ask is inside the price cage (<= 102 % of the ask) a minute later.
        assert first <= later * Decimal("1.02")


def test_quotes_stay_on_tick_and_inside_the_band() -> None:
    refs = {r.symbol: r for r in market_rules.load_reference_instruments() if r.prev_close}
    # A volatile day (50 %/day) pushes the walk against the band.
    for symbol, quotes in _walk(3000, seed=3, daily_volatility=0.5).items():
        ref = refs[symbol]
        tick = market_rules.tick_size(ref.board)
        limits = market_rules.limit_prices(ref, ref.prev_close, DAY)
        for quote in quotes:
            for side in ("bid", "ask"):
                price = quote[side]
                assert price % tick == 0, (symbol, side, price)
                assert price > 0
                if limits:
                    assert limits[0] <= price <= limits[1], (symbol, side, price, limits)
            assert quote["bid"] < quote["ask"]


def test_the_walk_resumes_from_a_given_price() -> None:
    refs = [r for r in market_rules.load_reference_instruments() if r.symbol == "600000.SH"]
    market = RandomWalkMarket(refs, interval_seconds=1.0, day=DAY, rng=random.Random(1), start={"600000.SH": Decimal("10.50")})
    assert abs(market.step()[0]["ask"] - Decimal("10.50")) <= Decimal("0.02")
