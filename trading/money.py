"""Money and price numbers: the places, the rounding and the limits, set once here.

Money is CNY ``Decimal`` with 2 places (``trading.models.money_field``); a price has 4 places
(``price_field``), which hold both the stock tick (0.01) and the fund and bond tick (0.001).
Rounding to a tick lives in ``trading.market_rules.round_to_tick``.

Rounding: money is rounded half up to the cent (:func:`to_cent`), as the fee schedule and the
paper broker do. A few places still round with the decimal context's default, half even
(``to_cent(value, ROUND_HALF_EVEN)``); they say so where they call, so that a change to half up
is one visible edit each, not a silent change of behaviour.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal

__all__ = [
    "CENT",
    "MAX_PRICE",
    "MAX_QUANTITY",
    "MAX_STORED_PRICE",
    "PRICE_PLACES",
    "RATIO_PLACES",
    "ROUND_HALF_EVEN",
    "ROUND_HALF_UP",
    "ZERO",
    "to_cent",
    "to_price_places",
    "to_ratio_places",
]

ZERO = Decimal("0")
# Money precision: 2 places (money_field).
CENT = Decimal("0.01")
# Price precision: 4 places (price_field).
PRICE_PLACES = Decimal("0.0001")
# Ratios shown to operators and API clients: 6 places.
RATIO_PLACES = Decimal("0.000001")

# Input limits. Far above any A-share price; keeps values inside the price columns (16 digits,
# 4 places).
MAX_PRICE = Decimal("1000000")
# Far above any per-order maximum; keeps values (and their products) inside the columns.
MAX_QUANTITY = 10**9
# The largest magnitude a price column holds (16 digits, 4 of them decimals): a computed price
# at or above it is not stored.
MAX_STORED_PRICE = Decimal("999999999999")


def to_cent(value: Decimal, rounding: str = ROUND_HALF_UP) -> Decimal:
    """``value`` rounded to the cent, half up unless ``rounding`` says otherwise."""
    return value.quantize(CENT, rounding)


def to_price_places(value: Decimal, rounding: str = ROUND_HALF_UP) -> Decimal:
    """``value`` rounded to a price's 4 places, half up unless ``rounding`` says otherwise."""
    return value.quantize(PRICE_PLACES, rounding)


def to_ratio_places(value: Decimal, rounding: str = ROUND_HALF_UP) -> Decimal:
    """``value`` rounded to a displayed ratio's 6 places, half up unless ``rounding`` says otherwise."""
    return value.quantize(RATIO_PLACES, rounding)
