"""The simulated market's price process: a random walk that moves like a real stock.

Each instrument follows a driftless geometric random walk whose volatility is
given per trading day (``DAILY_VOLATILITY``, about 2 %, of the order of a
large-cap A-share) and scaled to the time between quotes: one step of ``dt``
seconds has sigma ``daily * sqrt(dt / TRADING_SECONDS_PER_DAY)`` (4 trading
hours = 14,400 s), so a quote a second moves about 0.017 % and a minute about
0.13 %; the price a user reads from a quote is still good a minute later.

The walk keeps an exact price between quotes and publishes it rounded to the
tick (a step is smaller than a tick for most stocks; rounding each step would
pin the price). Bid and ask are one tick apart and both stay inside the day's
price band: the walk is reflected at the band.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from trading import market_rules

DAILY_VOLATILITY = 0.02
TRADING_SECONDS_PER_DAY = 4 * 3600


def step_sigma(interval_seconds: float, daily_volatility: float = DAILY_VOLATILITY) -> float:
    """The standard deviation of one step's log return for quotes ``interval_seconds`` apart."""
    return daily_volatility * math.sqrt(max(interval_seconds, 0.0) / TRADING_SECONDS_PER_DAY)


@dataclass
class _Walk:
    ref: market_rules.ReferenceInstrument
    tick: Decimal
    prev_close: Decimal
    low: Decimal  # the lowest ask: limit down + one tick, so the bid stays in the band
    high: Decimal | None  # the highest ask: limit up (None: no band)
    price: float = 0.0  # exact, between ticks


class RandomWalkMarket:
    """Quotes for ``refs`` (reference instruments with a ``prev_close``), one round per :meth:`step`.

    ``start`` gives the price to resume from per symbol (e.g. today's last quote); default: ``prev_close``.
    """

    def __init__(self, refs: list[market_rules.ReferenceInstrument], *, interval_seconds: float, day: date,
                 rng: random.Random | None = None, daily_volatility: float = DAILY_VOLATILITY,
                 start: dict[str, Decimal] | None = None) -> None:
        self.rng = rng or random.Random()
        self.sigma = step_sigma(interval_seconds, daily_volatility)
        self.walks: list[_Walk] = []
        for ref in refs:
            if not ref.prev_close:
                continue
            tick = market_rules.tick_size(ref.board)
            limits = market_rules.limit_prices(ref, ref.prev_close, day)
            low, high = (limits[0] + tick, limits[1]) if limits else (tick * 2, None)
            walk = _Walk(ref, tick, ref.prev_close, low, high)
            walk.price = self._inside(walk, float((start or {}).get(ref.symbol) or ref.prev_close))
            self.walks.append(walk)

    @staticmethod
    def _inside(walk: _Walk, price: float) -> float:
        low, high = float(walk.low), float(walk.high) if walk.high is not None else math.inf
        if high <= low:
            return low
        if price < low:  # reflect at the band
            price = 2 * low - price
        elif price > high:
            price = 2 * high - price
        return min(max(price, low), high)

    def step(self) -> list[dict[str, Any]]:
        """Move every instrument one step and return the quotes to publish (``quotes_publish`` input)."""
        quotes = []
        for walk in self.walks:
            walk.price = self._inside(walk, walk.price * math.exp(self.rng.gauss(0.0, self.sigma)))
            ask = market_rules.round_to_tick(Decimal(repr(walk.price)), walk.tick)
            ask = max(ask, walk.low) if walk.high is None else min(max(ask, walk.low), walk.high)
            quotes.append(
                {
                    "symbol": walk.ref.symbol,
                    "last": ask,
                    "prev_close": walk.prev_close,
                    "bid": ask - walk.tick,
                    "ask": ask,
                    "bid_volume": self.rng.randrange(1, 200) * 100,
                    "ask_volume": self.rng.randrange(1, 200) * 100,
                }
            )
        return quotes
