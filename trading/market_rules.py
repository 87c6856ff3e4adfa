"""A-share market rules (shared/MARKET_RULES.md) as dated parameters in one place.

Every figure that an exchange or regulator has changed, or may change, lives
in a ``DatedValue`` table below and is looked up for the trading day in
question; functions never carry their own literals. Units: ``*_PCT`` values
are percentages (``Decimal("10")`` is ±10%), ``*_RATE`` values are fractions
(``Decimal("0.0005")`` is 0.05%).

Instruments are duck-typed (``InstrumentLike``): anything with ``exchange``,
``code`` and ``board`` (empty board = inferred from the code), plus the
optional reference-data attributes ``is_st``, ``listing_date``,
``registration_listing``, ``limit_pct`` (percent override) and ``t0``.

Pure module: no model imports, importable without Django being set up.

Why one module of about a thousand lines: the rules are one reference (MARKET_RULES.md) that
compliance reads side by side with it, section by section (boards, lots, ticks, limits, cages,
sessions, fees, T+1, programme trading); the sections share the dated tables and the instrument
protocol, and splitting them would scatter the one place every figure lives.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, ROUND_UP, Decimal, InvalidOperation, localcontext
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

from django.db.models import TextChoices

from trading.calendar import (
    SHANGHAI,
    accepts_market_orders,
    accepts_new_orders,
    session_phase,
    trading_day_of,
    trading_days_between,
)
from trading.clock import now
from trading.errors import InputRule
from trading.i18n import bilingual
from trading.money import to_cent

T = TypeVar("T")

# ---------------------------------------------------------------------------
# Choices and errors
# ---------------------------------------------------------------------------


class Exchange(TextChoices):
    SH = "SH", "上交所"
    SZ = "SZ", "深交所"
    BJ = "BJ", "北交所"


class Board(TextChoices):
    MAIN = "MAIN", "主板"
    CHINEXT = "CHINEXT", "创业板"
    STAR = "STAR", "科创板"
    BSE = "BSE", "北交所"
    FUND = "FUND", "基金"
    CONVERTIBLE_BOND = "CONVERTIBLE_BOND", "可转债"
    B_SHARE = "B_SHARE", "B股"
    INDEX = "INDEX", "指数"
    OTHER = "OTHER", "其他"


class Side(TextChoices):
    BUY = "BUY", "买入"
    SELL = "SELL", "卖出"


class OrderType(TextChoices):
    LIMIT = "LIMIT", "限价"
    MARKET = "MARKET", "市价"


# Django's key for errors that belong to no single input field.
NON_FIELD = "__all__"


class MarketRuleViolation(Exception):
    """An order or input the exchange would refuse.

    ``field`` names the offending input ("symbol", "price", "quantity",
    "order_type", or ``NON_FIELD``), ``rule`` is a stable code, ``message``
    is Chinese then English and names the numbers involved.
    """

    def __init__(self, field: str, rule: str, message: str) -> None:
        super().__init__(field, rule, message)  # all three in args: picklable
        self.field = field
        self.rule = rule
        self.message = message

    def __str__(self) -> str:
        return self.message


# ---------------------------------------------------------------------------
# Dated parameters
# ---------------------------------------------------------------------------

ALWAYS = date.min


@dataclass(frozen=True)
class DatedValue(Generic[T]):
    """A parameter as periods ``(effective_from, effective_to or None, value)``.

    Both ends are inclusive; periods must be in order and must not overlap.
    """

    name: str
    periods: tuple[tuple[date, date | None, T], ...]

    def __post_init__(self) -> None:
        previous_end: date | None = None
        for index, (start, end, _) in enumerate(self.periods):
            if end is not None and end < start:
                raise ValueError(f"{self.name}: period {index} ends before it starts")
            if index and (previous_end is None or start <= previous_end):
                raise ValueError(f"{self.name}: period {index} overlaps the one before")
            previous_end = end

    def on(self, day: date) -> T:
        """The value in force on ``day``; LookupError when no period covers it."""
        for start, end, value in self.periods:
            if start <= day and (end is None or day <= end):
                return value
        raise LookupError(f"{self.name}: no value in force on {day}")


def constant(name: str, value: T) -> DatedValue[T]:
    """A parameter that has had one value so far (kept dated so it can change)."""
    return DatedValue(name, ((ALWAYS, None, value),))


def changed_on(name: str, before: T, switch: date, after: T) -> DatedValue[T]:
    """A parameter that took value ``after`` on ``switch`` (``before`` until the day before)."""
    return DatedValue(name, ((ALWAYS, date.fromordinal(switch.toordinal() - 1), before), (switch, None, after)))


D = Decimal
CHINEXT_REFORM = date(2020, 8, 24)  # ChiNext registration reform: ±20%, cage, no-limit days
MAIN_REGISTRATION = date(2023, 4, 10)  # main-board registration listings, main-board cage
FEE_CUT_2023 = date(2023, 8, 28)  # stamp duty halved, handling fee cut
TRANSFER_FEE_CUT = date(2022, 4, 29)
CONVERTIBLE_BOND_REFORM = date(2022, 8, 1)  # SSE/SZSE convertible-bond rules: ±20%
ST_LIMIT_WIDENED = date(2026, 7, 6)

# --- price limits (percent); None = no daily limit -------------------------
PRICE_LIMIT_PCT: dict[str, DatedValue[Decimal | None]] = {
    Board.MAIN: constant("main_limit_pct", D("10")),
    Board.CHINEXT: changed_on("chinext_limit_pct", D("10"), CHINEXT_REFORM, D("20")),
    Board.STAR: constant("star_limit_pct", D("20")),
    Board.BSE: constant("bse_limit_pct", D("30")),
    Board.FUND: constant("fund_limit_pct", D("10")),
    Board.CONVERTIBLE_BOND: changed_on("convertible_bond_limit_pct", None, CONVERTIBLE_BOND_REFORM, D("20")),
    Board.B_SHARE: constant("b_share_limit_pct", D("10")),
    Board.INDEX: constant("index_limit_pct", None),
    Board.OTHER: constant("other_limit_pct", D("10")),
}
# ST/*ST where it differs from the board's own limit (ChiNext, STAR, BSE: same).
ST_PRICE_LIMIT_PCT: dict[str, DatedValue[Decimal | None]] = {
    Board.MAIN: changed_on("main_st_limit_pct", D("5"), ST_LIMIT_WIDENED, D("10")),
    Board.B_SHARE: changed_on("b_share_st_limit_pct", D("5"), ST_LIMIT_WIDENED, D("10")),
}
# Trading days without a limit from listing, looked up by the LISTING date
# (the regime the IPO came under). Main board: registration listings only.
NO_LIMIT_DAYS_AFTER_LISTING: dict[str, DatedValue[int]] = {
    Board.STAR: constant("star_no_limit_days", 5),
    Board.CHINEXT: changed_on("chinext_no_limit_days", 0, CHINEXT_REFORM, 5),
    Board.BSE: constant("bse_no_limit_days", 1),
    # The first day's asymmetric +57.3%/-43.3% band is not modelled: no limit.
    Board.CONVERTIBLE_BOND: changed_on("convertible_bond_no_limit_days", 0, CONVERTIBLE_BOND_REFORM, 1),
}
MAIN_REGISTRATION_NO_LIMIT_DAYS = changed_on("main_registration_no_limit_days", 0, MAIN_REGISTRATION, 5)

# --- tick (not dated: the API takes no date and it has not changed) --------
STOCK_TICK = D("0.01")
FUND_TICK = D("0.001")
TICK_SIZE: dict[str, Decimal] = {Board.FUND: FUND_TICK, Board.CONVERTIBLE_BOND: FUND_TICK}

# --- price cage (percent of the reference; None = no cage) -----------------
PRICE_CAGE_PCT: dict[str, DatedValue[Decimal | None]] = {
    Board.MAIN: changed_on("main_cage_pct", None, MAIN_REGISTRATION, D("2")),
    Board.CHINEXT: changed_on("chinext_cage_pct", None, CHINEXT_REFORM, D("2")),
    Board.STAR: constant("star_cage_pct", D("2")),
    Board.BSE: constant("bse_cage_pct", D("5")),
}
PRICE_CAGE_TICKS = constant("cage_tick_allowance", 10)


@dataclass(frozen=True)
class CageSettings:
    """Configurable parts of the price cage (MARKET_RULES *(config)* items).

    ``outside_action``: what the paper broker does with an order outside the
    cage, "reject" (default) or "hold" until the cage moves to include it.
    """

    star_chinext_tick_allowance: bool = False
    bse_tick_allowance: bool = True
    outside_action: str = "reject"


# --- quantity -------------------------------------------------------------
@dataclass(frozen=True)
class QuantityRule:
    """``lot``: the buy minimum and the odd-lot threshold for sells; ``step``:
    the increment above it; maxima per order (``max_market`` None = market
    orders not allowed)."""

    lot: int
    step: int
    max_limit: int
    max_market: int | None
    unit: str = "股"


QUANTITY_RULES: dict[str, DatedValue[QuantityRule]] = {
    # Main-board market-order maximum is *(config)*: default = limit maximum.
    Board.MAIN: constant("main_quantity", QuantityRule(100, 100, 1_000_000, 1_000_000)),
    Board.FUND: constant("fund_quantity", QuantityRule(100, 100, 1_000_000, 1_000_000, "份")),
    Board.CHINEXT: changed_on(
        "chinext_quantity",
        QuantityRule(100, 100, 1_000_000, 1_000_000),
        CHINEXT_REFORM,
        QuantityRule(100, 100, 300_000, 150_000),
    ),
    Board.STAR: constant("star_quantity", QuantityRule(200, 1, 100_000, 50_000)),
    # BSE maxima are *(config)*: default 1,000,000 for both.
    Board.BSE: constant("bse_quantity", QuantityRule(100, 1, 1_000_000, 1_000_000)),
    # Bonds count in units (张) of 100 face; 1 lot = 10 units; 100,000 units per order.
    Board.CONVERTIBLE_BOND: constant("convertible_bond_quantity", QuantityRule(10, 10, 100_000, None, "张")),
    Board.B_SHARE: constant("b_share_quantity", QuantityRule(100, 100, 1_000_000, None)),
    Board.OTHER: constant("other_quantity", QuantityRule(100, 100, 1_000_000, None)),
}
ST_DAILY_BUY_LIMIT = constant("st_daily_buy_limit", 500_000)

# --- programme trading (CSRC 2024-10-08; exchange lines 2025-07-07) --------
# Applied to all dates: the back office enforces them as an internal control.
HF_ORDERS_PER_SECOND = constant("hf_orders_per_second", 300)
HF_ORDERS_PER_DAY = constant("hf_orders_per_day", 20_000)
HF_WARN_SHARE_DEFAULT = D("0.65")  # *(config)*: warn at this share of a line

# --- fees (fractions) -----------------------------------------------------
STAMP_DUTY_SELL_RATE = changed_on("stamp_duty_rate", D("0.001"), FEE_CUT_2023, D("0.0005"))
TRANSFER_FEE_RATE = changed_on("transfer_fee_rate", D("0.00002"), TRANSFER_FEE_CUT, D("0.00001"))
HANDLING_FEE_RATE: dict[str, DatedValue[Decimal]] = {
    Exchange.SH: changed_on("sse_handling_fee_rate", D("0.0000487"), FEE_CUT_2023, D("0.0000341")),
    Exchange.SZ: changed_on("szse_handling_fee_rate", D("0.0000487"), FEE_CUT_2023, D("0.0000341")),
    Exchange.BJ: constant("bse_handling_fee_rate", D("0.000125")),
}
REGULATORY_FEE_RATE = constant("regulatory_fee_rate", D("0.00002"))
# Stamp duty is on stocks only; transfer fee on SSE/SZSE stocks only (ETFs
# and bonds pay neither).
STOCK_BOARDS = frozenset({Board.MAIN, Board.CHINEXT, Board.STAR, Board.BSE, Board.B_SHARE})
TRANSFER_FEE_EXCHANGES = frozenset({Exchange.SH, Exchange.SZ})

# --- symbols: exchange and board by code prefix ---------------------------
SUFFIX_EXCHANGE = {"SH": "SH", "SS": "SH", "XSHG": "SH", "SZ": "SZ", "XSHE": "SZ", "BJ": "BJ"}
PREFIX_EXCHANGE = {"SH": "SH", "SZ": "SZ", "BJ": "BJ"}
# Bare codes, longest prefix first. 4/8 (NEEQ or legacy BSE) is deliberately absent.
BARE_CODE_EXCHANGE: tuple[tuple[str, str], ...] = (
    ("920", "BJ"),
    ("11", "SH"),
    ("12", "SZ"),
    ("15", "SZ"),
    ("16", "SZ"),
    ("5", "SH"),
    ("6", "SH"),
    ("9", "SH"),
    ("0", "SZ"),
    ("2", "SZ"),
    ("3", "SZ"),
)
BOARD_BY_PREFIX: dict[str, tuple[tuple[str, Board], ...]] = {
    "SH": (
        ("600", Board.MAIN),
        ("601", Board.MAIN),
        ("603", Board.MAIN),
        ("605", Board.MAIN),
        ("688", Board.STAR),
        ("689", Board.STAR),
        ("5", Board.FUND),
        ("110", Board.CONVERTIBLE_BOND),
        ("111", Board.CONVERTIBLE_BOND),
        ("113", Board.CONVERTIBLE_BOND),
        ("118", Board.CONVERTIBLE_BOND),
        ("900", Board.B_SHARE),
        ("000", Board.INDEX),
    ),
    "SZ": (
        ("000", Board.MAIN),
        ("001", Board.MAIN),
        ("002", Board.MAIN),
        ("003", Board.MAIN),
        ("30", Board.CHINEXT),
        ("15", Board.FUND),
        ("16", Board.FUND),
        ("12", Board.CONVERTIBLE_BOND),
        ("200", Board.B_SHARE),
        ("399", Board.INDEX),
    ),
    "BJ": (
        ("920", Board.BSE),
        ("43", Board.BSE),
        ("83", Board.BSE),
        ("87", Board.BSE),
        ("899", Board.INDEX),
    ),
}


# ---------------------------------------------------------------------------
# Symbols and boards
# ---------------------------------------------------------------------------

_SYMBOL_RE = re.compile(r"(?:(?P<prefix>sh|sz|bj))?(?P<code>\d{6})(?:\.(?P<suffix>[a-z]+))?", re.IGNORECASE)


def _symbol_error(text: str, why: str) -> MarketRuleViolation:
    return MarketRuleViolation(
        "symbol",
        InputRule.SYMBOL_FORMAT,
        bilingual("bad symbol {text!r}: {why}; use e.g. 600000.SH, 000001.SZ, 920001.BJ", text=text, why=why),
    )


def normalize_symbol(text: str) -> tuple[str, str]:
    """Parse a symbol in any accepted form into ``(code, exchange)``, e.g. ("600000", "SH").

    Accepts ``600000.SH``/``.sh``/``.SS``/``.XSHG``/``.XSHE``/``.BJ``,
    ``sh600000``/``SZ000001``/``bj920001`` and a bare ``600000`` (exchange
    inferred from the code prefix; a bare 4/8 code is refused because NEEQ
    shares use those prefixes too).
    """
    match = _SYMBOL_RE.fullmatch(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise _symbol_error(str(text), "expected a 6-digit code with an exchange")
    code, prefix, suffix = match["code"], match["prefix"], match["suffix"]
    if prefix and suffix:
        raise _symbol_error(text, "exchange given twice")
    if suffix:
        exchange = SUFFIX_EXCHANGE.get(suffix.upper())
        if exchange is None:
            raise _symbol_error(text, f"unknown exchange suffix .{suffix}")
        return code, exchange
    if prefix:
        return code, PREFIX_EXCHANGE[prefix.upper()]
    for code_prefix, exchange in BARE_CODE_EXCHANGE:
        if code.startswith(code_prefix):
            return code, exchange
    raise _symbol_error(text, "cannot infer the exchange from the code, add .SH/.SZ/.BJ")


def format_symbol(code: str, exchange: str) -> str:
    """The canonical ``CODE.EX`` form, e.g. "600000.SH"."""
    return f"{code}.{exchange}"


def infer_board(exchange: str, code: str) -> Board:
    """The board implied by the code prefix (MARKET_RULES "Board by code prefix")."""
    for code_prefix, board in BOARD_BY_PREFIX.get(str(exchange), ()):
        if code.startswith(code_prefix):
            return board
    return Board.OTHER


class InstrumentLike(Protocol):
    """What the rules read from an instrument; optional attributes via getattr."""

    @property
    def exchange(self) -> str: ...

    @property
    def code(self) -> str: ...

    @property
    def board(self) -> str: ...


def board_of(inst: InstrumentLike) -> Board:
    """The instrument's board: reference data when set, else inferred from the code."""
    return Board(inst.board) if inst.board else infer_board(inst.exchange, inst.code)


def _symbol(inst: InstrumentLike) -> str:
    return format_symbol(inst.code, str(inst.exchange))


def _today() -> date:
    return trading_day_of(now())


def _tradable_board(inst: InstrumentLike) -> Board:
    board = board_of(inst)
    if board == Board.INDEX:
        raise MarketRuleViolation("symbol", InputRule.NOT_TRADABLE, bilingual("{symbol_inst} is an index, not tradable", symbol_inst=_symbol(inst)))
    return board


# ---------------------------------------------------------------------------
# Tick, lot, settlement
# ---------------------------------------------------------------------------


def tick_size(board: str) -> Decimal:
    """Minimum price step: 0.001 for funds and convertible bonds, 0.01 otherwise."""
    return TICK_SIZE.get(board, STOCK_TICK)


def is_on_tick(price: Decimal, tick: Decimal) -> bool:
    """Whether ``price`` is a whole number of ticks, exactly: no digit beyond the tick is
    lost to the context's precision ("9.9000000000000000000000000000001" is not on 0.01)."""
    with localcontext() as context:
        context.prec = max(context.prec, price.adjusted() - tick.adjusted() + 3)
        return price % tick == 0


def round_to_tick(price: Decimal, tick: Decimal) -> Decimal:
    """``price`` rounded half up to a multiple of ``tick`` (never ``round()``: half-even)."""
    return (price / tick).quantize(D(1), ROUND_HALF_UP) * tick


def _quantity_rule(inst: InstrumentLike, on: date) -> QuantityRule:
    return QUANTITY_RULES.get(board_of(inst), QUANTITY_RULES[Board.OTHER]).on(on)


def lot_size(inst: InstrumentLike, on: date | None = None) -> int:
    """Board lot: the buy minimum and odd-lot threshold (100; STAR 200; bonds 10 units)."""
    return _quantity_rule(inst, on or _today()).lot


def round_down_to_lots(inst: InstrumentLike, quantity: int, on: date | None = None) -> int:
    """The most of ``quantity`` an order may carry in whole steps: at least one lot, then whole
    steps (main board: 250 -> 200; STAR, lot 200 and step 1: 250 -> 250, 150 -> 0)."""
    rule = _quantity_rule(inst, on or _today())
    if quantity < rule.lot:
        return 0
    return rule.lot + (quantity - rule.lot) // rule.step * rule.step


def is_t0(inst: InstrumentLike) -> bool:
    """Whether shares bought today can be sold today (reference-data flag ``t0``)."""
    return bool(getattr(inst, "t0", False))


def st_max_daily_buy(on: date) -> int:
    """Most shares of one ST stock one account may buy on day ``on``."""
    return ST_DAILY_BUY_LIMIT.on(on)


def hf_orders_per_second(on: date) -> int:
    """Orders plus cancels in one second that make an account high-frequency."""
    return HF_ORDERS_PER_SECOND.on(on)


def hf_orders_per_day(on: date) -> int:
    """Orders plus cancels in one day that make an account high-frequency."""
    return HF_ORDERS_PER_DAY.on(on)


def hf_warn_at(line: int, share: Decimal) -> int:
    """The count from which an account is warned it nears a high-frequency ``line``: ``share`` of
    it, rounded up (65% of 300 is 195). Risk control's rate rules and the monitors both use it."""
    return math.ceil(Decimal(line) * share)


# ---------------------------------------------------------------------------
# Price limits
# ---------------------------------------------------------------------------


def _in_no_limit_period(inst: InstrumentLike, board: Board, on: date) -> bool:
    listing_date: date | None = getattr(inst, "listing_date", None)
    if listing_date is None or on < listing_date:
        return False
    if board == Board.MAIN:
        days = MAIN_REGISTRATION_NO_LIMIT_DAYS.on(listing_date) if getattr(inst, "registration_listing", False) else 0
    elif board in NO_LIMIT_DAYS_AFTER_LISTING:
        days = NO_LIMIT_DAYS_AFTER_LISTING[board].on(listing_date)
    else:
        days = 0
    # No run of closures is longer than a few weeks: skip the count for old listings.
    if days == 0 or (on - listing_date).days > 7 * days + 31:
        return False
    return trading_days_between(listing_date, on) <= days


def price_limit_pct(inst: InstrumentLike, on: date) -> Decimal | None:
    """Daily limit in percent (``Decimal("10")`` = ±10%) on ``on``; None = no limit that day.

    Order: no limit in the first trading days after listing, then the
    instrument's own ``limit_pct`` override, then ST, then the board.
    """
    board = board_of(inst)
    if _in_no_limit_period(inst, board, on):
        return None
    override = getattr(inst, "limit_pct", None)
    if override is not None:
        return D(override)
    if getattr(inst, "is_st", False) and board in ST_PRICE_LIMIT_PCT:
        return ST_PRICE_LIMIT_PCT[board].on(on)
    return PRICE_LIMIT_PCT[board].on(on)


def limit_prices(inst: InstrumentLike, prev_close: Decimal, on: date) -> tuple[Decimal, Decimal] | None:
    """``(limit_down, limit_up)`` from the reference price, half up to the tick; None without limit.

    ``prev_close`` is the previous close or the ex-rights reference price (> 0).
    """
    if prev_close <= 0:
        raise ValueError(f"reference price must be positive, got {prev_close}")
    pct = price_limit_pct(inst, on)
    if pct is None:
        return None
    tick = tick_size(board_of(inst))
    down = round_to_tick(prev_close * (100 - pct) / 100, tick)
    up = round_to_tick(prev_close * (100 + pct) / 100, tick)
    return down, up


def protection_price(inst: InstrumentLike, side: str, prev_close: Decimal | None, on: date) -> Decimal | None:
    """Default protection price of a market order: limit up to buy, limit down to sell.

    None when there is no limit that day or no reference price (the client must give one).
    """
    if prev_close is None or prev_close <= 0:
        return None
    limits = limit_prices(inst, prev_close, on)
    if limits is None:
        return None
    return limits[1] if side == Side.BUY else limits[0]


# ---------------------------------------------------------------------------
# Price checks
# ---------------------------------------------------------------------------


def _check_price_value(
    inst: InstrumentLike, board: Board, price: Decimal, prev_close: Decimal | None, on: date, field: str = "price"
) -> None:
    symbol = _symbol(inst)
    if price <= 0:
        raise MarketRuleViolation(
            field, InputRule.POSITIVE, bilingual("{field} must be positive for {symbol}; got {price}", field=field, symbol=symbol, price=price)
        )
    tick = tick_size(board)
    if not is_on_tick(price, tick):
        raise MarketRuleViolation(
            field,
            InputRule.TICK_SIZE,
            bilingual("{field} must be a multiple of {tick} for {symbol}; got {price}", tick=tick, field=field, symbol=symbol, price=price),
        )
    if prev_close is None or prev_close <= 0:
        return  # no reference price (e.g. listing day before the open): no band to check
    limits = limit_prices(inst, prev_close, on)
    if limits is not None and not limits[0] <= price <= limits[1]:
        raise MarketRuleViolation(
            field,
            InputRule.PRICE_LIMIT,
            bilingual("{field} {price} for {symbol} is outside the daily limits {value}-{value2} from previous close {prev_close}", value=limits[0], value2=limits[1], field=field, price=price, symbol=symbol, prev_close=prev_close),
        )


def check_protection_price(
    inst: InstrumentLike, protection_price: Decimal, prev_close: Decimal | None, on: date
) -> None:
    """Raise MarketRuleViolation (field ``protection_price``) if the exchange would refuse a market
    order's protection price: it is a price like any other, a whole number of ticks inside the
    day's limits (a buy's goes up to the limit up at most, a sell's down to the limit down)."""
    _check_price_value(inst, _tradable_board(inst), protection_price, prev_close, on, field="protection_price")


def check_price(
    inst: InstrumentLike,
    side: str,
    order_type: str,
    price: Decimal | None,
    prev_close: Decimal | None,
    on: date,
) -> None:
    """Raise MarketRuleViolation if the exchange would refuse this price.

    LIMIT: price required, positive, a whole number of ticks, inside the
    daily limits (when ``prev_close`` is known). MARKET: refused for
    convertible bonds and on days without a limit, except STAR, where a
    protection price (``price``) is then required; a given protection price
    is checked like a limit price.
    """
    board = _tradable_board(inst)
    symbol = _symbol(inst)
    if order_type == OrderType.MARKET:
        if board == Board.CONVERTIBLE_BOND:
            raise MarketRuleViolation(
                "order_type", InputRule.MARKET_ORDER_NOT_ALLOWED, bilingual("no market orders for bond {symbol}", symbol=symbol)
            )
        if price_limit_pct(inst, on) is None:
            if board != Board.STAR:
                raise MarketRuleViolation(
                    "order_type",
                    InputRule.MARKET_ORDER_NOT_ALLOWED,
                    bilingual("no market orders for {symbol} on {on}: no price limit that day", symbol=symbol, on=on),
                )
            if price is None:
                raise MarketRuleViolation(
                    "price",
                    InputRule.REQUIRED,
                    bilingual("a protection price is required for market orders on {symbol} on {on}", symbol=symbol, on=on),
                )
        if price is not None:
            _check_price_value(inst, board, price, prev_close, on)
        return
    if price is None:
        raise MarketRuleViolation("price", InputRule.REQUIRED, bilingual("a limit order on {symbol} needs a price", symbol=symbol))
    _check_price_value(inst, board, price, prev_close, on)


# ---------------------------------------------------------------------------
# Price cage
# ---------------------------------------------------------------------------

NO_CAGE_BUY_BOUND = D("Infinity")
NO_CAGE_SELL_BOUND = D("0")


def cage_reference(
    side: str,
    bid: Decimal | None,
    ask: Decimal | None,
    last: Decimal | None,
    prev_close: Decimal | None,
) -> Decimal | None:
    """Cage reference price: buy = ask, bid, last, prev close (first present);
    sell = bid, ask, last, prev close. None or 0 means absent."""
    order = (ask, bid, last, prev_close) if side == Side.BUY else (bid, ask, last, prev_close)
    for value in order:
        if value is not None and value > 0:
            return value
    return None


def has_price_cage(inst: InstrumentLike, on: date) -> bool:
    """Whether limit orders on this instrument are caged on ``on`` (stocks of
    main board, ChiNext, STAR, BSE; not funds, bonds or B shares)."""
    board = board_of(inst)
    return board in PRICE_CAGE_PCT and PRICE_CAGE_PCT[board].on(on) is not None


def _tick_allowance(board: Board, settings: CageSettings) -> bool:
    if board in (Board.STAR, Board.CHINEXT):
        return settings.star_chinext_tick_allowance
    if board == Board.BSE:
        return settings.bse_tick_allowance
    return True  # main board: the 10-tick allowance is part of the rule


def price_cage(
    inst: InstrumentLike,
    side: str,
    reference: Decimal,
    on: date,
    settings: CageSettings | None = None,
) -> Decimal:
    """The cage bound: highest buy price or lowest sell price allowed, half up to the tick.

    Main board: buy ≤ max(102% ref, ref + 10 ticks), sell ≥ min(98% ref,
    ref − 10 ticks); STAR/ChiNext 102%/98% (ticks per settings); BSE
    105%/95% (ticks per settings). Without a cage (funds, bonds, B shares,
    or before a board's cage started) the bound is ``Infinity`` for buys and
    0 for sells, so comparisons need no special case.
    """
    settings = settings or CageSettings()
    board = board_of(inst)
    pct = PRICE_CAGE_PCT[board].on(on) if board in PRICE_CAGE_PCT else None
    if pct is None:
        return NO_CAGE_BUY_BOUND if side == Side.BUY else NO_CAGE_SELL_BOUND
    tick = tick_size(board)
    allowance = PRICE_CAGE_TICKS.on(on) * tick if _tick_allowance(board, settings) else None
    if side == Side.BUY:
        bound = reference * (100 + pct) / 100
        if allowance is not None:
            bound = max(bound, reference + allowance)
    else:
        bound = reference * (100 - pct) / 100
        if allowance is not None:
            bound = min(bound, reference - allowance)
    return max(round_to_tick(bound, tick), NO_CAGE_SELL_BOUND)


def check_cage(
    inst: InstrumentLike,
    side: str,
    price: Decimal,
    bid: Decimal | None,
    ask: Decimal | None,
    last: Decimal | None,
    prev_close: Decimal | None,
    on: date,
    settings: CageSettings | None = None,
) -> None:
    """Raise ``price_cage`` if a limit order is outside the cage.

    Call for limit orders in continuous trading only (the caller knows the
    phase and order type). No reference price at all: nothing to check.
    """
    reference = cage_reference(side, bid, ask, last, prev_close)
    if reference is None or not has_price_cage(inst, on):
        return
    bound = price_cage(inst, side, reference, on, settings)
    if side == Side.BUY and price > bound:
        raise MarketRuleViolation(
            "price",
            InputRule.PRICE_CAGE,
            bilingual("buy price {price} for {symbol_inst} is above the cage bound {bound} from reference {reference}", bound=bound, price=price, symbol_inst=_symbol(inst), reference=reference),
        )
    if side == Side.SELL and price < bound:
        raise MarketRuleViolation(
            "price",
            InputRule.PRICE_CAGE,
            bilingual("sell price {price} for {symbol_inst} is below the cage bound {bound} from reference {reference}", bound=bound, price=price, symbol_inst=_symbol(inst), reference=reference),
        )


# ---------------------------------------------------------------------------
# Quantity
# ---------------------------------------------------------------------------


def check_quantity(
    inst: InstrumentLike,
    side: str,
    order_type: str,
    quantity: int,
    position_quantity: int = 0,
    on: date | None = None,
) -> None:
    """Raise MarketRuleViolation if the exchange would refuse this quantity.

    Buys: at least one lot, then whole steps (main/ChiNext/funds: multiples
    of 100; STAR ≥ 200 then any share; BSE ≥ 100 then any share; bonds:
    multiples of 10 units), at most the per-order maximum for the order
    type, and for ST stocks at most the daily ST buy limit in one order.
    Sells follow the same steps, except that a remainder below one lot
    (``position_quantity`` modulo the lot; below 200 on STAR) may be sold,
    only in one order that contains all of it. Whether the account holds
    enough is not checked here. ``on`` defaults to today (Asia/Shanghai).
    """
    day = on or _today()
    _tradable_board(inst)
    rule = _quantity_rule(inst, day)
    symbol, unit = _symbol(inst), rule.unit
    if quantity <= 0:
        raise MarketRuleViolation(
            "quantity", InputRule.POSITIVE, bilingual("quantity must be positive for {symbol}; got {quantity}", symbol=symbol, quantity=quantity)
        )
    is_market = order_type == OrderType.MARKET
    maximum, kind = (rule.max_market, "市价") if is_market else (rule.max_limit, "限价")
    if maximum is None:
        raise MarketRuleViolation(
            "order_type", InputRule.MARKET_ORDER_NOT_ALLOWED, bilingual("no market orders for {symbol}", symbol=symbol)
        )
    if quantity > maximum:
        raise MarketRuleViolation(
            "quantity",
            InputRule.MAX_QUANTITY,
            bilingual("quantity must be at most {maximum} per {value} order for {symbol}; got {quantity}", kind=kind, maximum=maximum, unit=unit, value=str(order_type).lower(), symbol=symbol, quantity=quantity),
        )
    if side == Side.BUY:
        _check_buy_quantity(inst, rule, quantity, day)
    else:
        _check_sell_quantity(symbol, rule, quantity, position_quantity)


def _step_error(symbol: str, rule: QuantityRule, quantity: int) -> MarketRuleViolation:
    if rule.step == rule.lot:
        return MarketRuleViolation(
            "quantity",
            InputRule.LOT_SIZE,
            bilingual("quantity must be a multiple of {lot} for {symbol}; got {quantity}", lot=rule.lot, unit=rule.unit, symbol=symbol, quantity=quantity),
        )
    return MarketRuleViolation(
        "quantity",
        InputRule.MIN_QUANTITY,
        bilingual("quantity must be at least {lot} for {symbol}; got {quantity}", lot=rule.lot, unit=rule.unit, symbol=symbol, quantity=quantity),
    )


def _is_whole_lots(rule: QuantityRule, quantity: int) -> bool:
    return quantity >= rule.lot and (quantity - rule.lot) % rule.step == 0


def _check_buy_quantity(inst: InstrumentLike, rule: QuantityRule, quantity: int, day: date) -> None:
    symbol = _symbol(inst)
    if not _is_whole_lots(rule, quantity):
        raise _step_error(symbol, rule, quantity)
    limit = st_max_daily_buy(day)
    if getattr(inst, "is_st", False) and quantity > limit:
        raise MarketRuleViolation(
            "quantity",
            InputRule.ST_DAILY_BUY_LIMIT,
            bilingual("at most {limit} shares of ST stock {symbol} may be bought per day; got {quantity}", limit=limit, symbol=symbol, quantity=quantity),
        )


def _check_sell_quantity(symbol: str, rule: QuantityRule, quantity: int, position_quantity: int) -> None:
    if _is_whole_lots(rule, quantity):
        return
    if rule.step == rule.lot:
        # Odd part of the holding (e.g. 50 of 250): sellable alone or with whole lots, all at once.
        remainder = position_quantity % rule.lot
        if remainder and quantity % rule.lot == remainder and quantity <= position_quantity:
            return
    else:
        # STAR/BSE: above the minimum any step is fine; below it only the whole holding.
        remainder = position_quantity if 0 < position_quantity < rule.lot else 0
        if quantity == remainder:
            return
    if not remainder:
        raise _step_error(symbol, rule, quantity)
    raise MarketRuleViolation(
        "quantity",
        InputRule.ODD_LOT_SELL,
        bilingual("the odd lot of {remainder} below {lot} in the holding of {position_quantity} {symbol} must be sold whole in one order; got {quantity}", lot=rule.lot, unit=rule.unit, remainder=remainder, position_quantity=position_quantity, symbol=symbol, quantity=quantity),
    )


# ---------------------------------------------------------------------------
# Sessions
# ---------------------------------------------------------------------------


def check_session(order_type: str, at: datetime) -> None:
    """Raise if no new order of ``order_type`` is accepted at aware datetime ``at``.

    ``session_closed`` outside the order-entry phases; market orders only
    in continuous trading (``market_order_not_allowed``).
    """
    phase = session_phase(at)
    local = at.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")
    if not accepts_new_orders(phase):
        raise MarketRuleViolation(
            NON_FIELD, InputRule.SESSION_CLOSED, bilingual("no new orders at {local} Asia/Shanghai: {phase}", local=local, phase=phase)
        )
    if order_type == OrderType.MARKET and not accepts_market_orders(phase):
        raise MarketRuleViolation(
            "order_type",
            InputRule.MARKET_ORDER_NOT_ALLOWED,
            bilingual("market orders only in continuous trading; {local} is {phase}", local=local, phase=phase),
        )


# ---------------------------------------------------------------------------
# Fees
# ---------------------------------------------------------------------------


def _money(amount: Decimal) -> Decimal:
    return to_cent(amount)


def _parse_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in {"true", "1", "yes", "on", "false", "0", "no", "off", ""}:
        return value.strip().lower() in {"true", "1", "yes", "on"}
    raise ValueError(f"not a boolean: {value!r}")


@dataclass(frozen=True)
class FeeSchedule:
    """Per-account fee settings. JSON form: Decimals as strings (``to_dict``/``from_dict``)."""

    commission_rate: Decimal = D("0.00025")
    commission_min: Decimal = D("5")
    waive_commission_min: bool = False
    commission_includes_exchange_fees: bool = True

    def __post_init__(self) -> None:
        if self.commission_rate < 0 or self.commission_min < 0:
            raise ValueError("commission rate and minimum must not be negative")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeeSchedule:
        """Build from a JSON dict; missing keys take the defaults; floats are refused."""
        defaults = cls()
        try:
            return cls(
                commission_rate=_decimal(data.get("commission_rate", defaults.commission_rate)),
                commission_min=_decimal(data.get("commission_min", defaults.commission_min)),
                waive_commission_min=_parse_bool(data.get("waive_commission_min", defaults.waive_commission_min)),
                commission_includes_exchange_fees=_parse_bool(
                    data.get("commission_includes_exchange_fees", defaults.commission_includes_exchange_fees)
                ),
            )
        except InvalidOperation as exc:
            raise ValueError(f"bad fee schedule: {dict(data)!r}") from exc

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (Decimals as strings)."""
        return {
            "commission_rate": str(self.commission_rate),
            "commission_min": str(self.commission_min),
            "waive_commission_min": self.waive_commission_min,
            "commission_includes_exchange_fees": self.commission_includes_exchange_fees,
        }


def _decimal(value: Any) -> Decimal:
    # A float would smuggle binary rounding error into money.
    if isinstance(value, float):
        raise ValueError(f"use a string, not a float: {value!r}")
    return D(value)


@dataclass(frozen=True)
class FeeBreakdown:
    """Fees of one fill in CNY, each rounded to 0.01 half up."""

    commission: Decimal = D("0.00")
    stamp_duty: Decimal = D("0.00")
    transfer_fee: Decimal = D("0.00")
    handling_fee: Decimal = D("0.00")
    regulatory_fee: Decimal = D("0.00")

    @property
    def total(self) -> Decimal:
        return self.commission + self.stamp_duty + self.transfer_fee + self.handling_fee + self.regulatory_fee

    def to_dict(self) -> dict[str, str]:
        """JSON-ready dict (Decimals as strings), with the total."""
        return {
            "commission": str(self.commission),
            "stamp_duty": str(self.stamp_duty),
            "transfer_fee": str(self.transfer_fee),
            "handling_fee": str(self.handling_fee),
            "regulatory_fee": str(self.regulatory_fee),
            "total": str(self.total),
        }


def fill_fees(
    schedule: FeeSchedule,
    inst: InstrumentLike,
    side: str,
    fill_amount: Decimal,
    order_amount_before: Decimal,
    commission_charged_before: Decimal,
    on: date,
) -> FeeBreakdown:
    """Fees for one fill of an order (amounts in CNY, ``on`` = trade date).

    The commission minimum is charged once per order: this fill pays
    max(min, rate × order amount so far) − commission already charged on
    earlier fills (never negative). Stamp duty on stock sells only; transfer
    fee on SSE/SZSE stocks only; handling and regulatory fees only when the
    account's commission does not include them.
    """
    board = board_of(inst)
    exchange = str(inst.exchange)
    commission_total = _money(schedule.commission_rate * (order_amount_before + fill_amount))
    if not schedule.waive_commission_min:
        commission_total = max(commission_total, schedule.commission_min)
    commission = _money(max(D(0), commission_total - commission_charged_before))
    is_stock = board in STOCK_BOARDS
    stamp_duty = _money(fill_amount * STAMP_DUTY_SELL_RATE.on(on)) if side == Side.SELL and is_stock else D("0.00")
    transfer_fee = (
        _money(fill_amount * TRANSFER_FEE_RATE.on(on)) if is_stock and exchange in TRANSFER_FEE_EXCHANGES else D("0.00")
    )
    handling_fee = regulatory_fee = D("0.00")
    if not schedule.commission_includes_exchange_fees:
        handling_fee = _money(fill_amount * HANDLING_FEE_RATE[exchange].on(on))
        regulatory_fee = _money(fill_amount * REGULATORY_FEE_RATE.on(on))
    return FeeBreakdown(commission, stamp_duty, transfer_fee, handling_fee, regulatory_fee)


def estimate_buy_freeze(
    schedule: FeeSchedule, inst: InstrumentLike, price: Decimal, quantity: int, on: date
) -> Decimal:
    """Cash to freeze when a buy is accepted: price × quantity + its fees as one fill.

    Market buys pass the limit-up or protection price. Rounded up to the
    cent: a freeze must never fall short of what the fills can cost.
    """
    amount = price * quantity
    fees = fill_fees(schedule, inst, Side.BUY, amount, D(0), D(0), on)
    return to_cent(amount + fees.total, ROUND_UP)


# ---------------------------------------------------------------------------
# Reference data file
# ---------------------------------------------------------------------------

DEFAULT_INSTRUMENTS_PATH = Path(__file__).resolve().parent / "data" / "instruments.csv"
INSTRUMENT_CSV_FIELDS = (
    "symbol",
    "name",
    "board",
    "is_st",
    "listing_date",
    "registration_listing",
    "t0",
    "limit_pct",
    "industry",
    "total_shares",
    "prev_close",
    "delisting",  # optional: in the delisting-arrangement period (退市整理期)
    "risk_level",  # optional: R1-R5, overriding the level by board (trading/suitability.py)
)


@dataclass(frozen=True)
class ReferenceInstrument:
    """One row of ``instruments.csv``; satisfies ``InstrumentLike``."""

    exchange: str
    code: str
    name: str
    board: Board
    is_st: bool = False
    listing_date: date | None = None
    registration_listing: bool = False
    t0: bool = False
    limit_pct: Decimal | None = None
    industry: str = ""
    total_shares: int | None = None
    prev_close: Decimal | None = None
    delisting: bool = False
    risk_level: str = ""

    @property
    def symbol(self) -> str:
        return format_symbol(self.code, self.exchange)


def load_reference_instruments(path: Path | str | None = None) -> list[ReferenceInstrument]:
    """Parse the instruments file (default ``trading/data/instruments.csv``).

    Empty board = inferred from the code. Raises ValueError naming the line
    on any bad value (symbol, board, boolean, date, decimal, price off tick).
    """
    path = Path(path) if path is not None else DEFAULT_INSTRUMENTS_PATH
    result: list[ReferenceInstrument] = []
    with open(path, newline="", encoding="utf-8") as handle:
        for line_number, row in enumerate(csv.DictReader(handle), start=2):
            try:
                result.append(_parse_instrument_row(row))
            except (ValueError, InvalidOperation, MarketRuleViolation) as exc:
                raise ValueError(f"{path}:{line_number}: {exc}") from exc
    return result


def _parse_instrument_row(row: Mapping[str, str | None]) -> ReferenceInstrument:
    def text(key: str) -> str:
        return (row.get(key) or "").strip()

    code, exchange = normalize_symbol(text("symbol"))
    board = Board(text("board")) if text("board") else infer_board(exchange, code)
    prev_close = D(text("prev_close")) if text("prev_close") else None
    if prev_close is not None and (prev_close <= 0 or prev_close % tick_size(board)):
        raise ValueError(f"prev_close {prev_close} is not a positive multiple of {tick_size(board)}")
    return ReferenceInstrument(
        exchange=exchange,
        code=code,
        name=text("name"),
        board=board,
        is_st=_parse_bool(text("is_st")),
        listing_date=date.fromisoformat(text("listing_date")) if text("listing_date") else None,
        registration_listing=_parse_bool(text("registration_listing")),
        t0=_parse_bool(text("t0")),
        limit_pct=D(text("limit_pct")) if text("limit_pct") else None,
        industry=text("industry"),
        total_shares=int(text("total_shares")) if text("total_shares") else None,
        prev_close=prev_close,
        delisting=_parse_bool(text("delisting")),
        risk_level=_risk_level(text("risk_level")),
    )


def _risk_level(value: str) -> str:
    level = value.upper()
    if level and level not in ("R1", "R2", "R3", "R4", "R5"):
        raise ValueError(f"risk_level must be R1-R5 or empty; got {value!r}")
    return level
