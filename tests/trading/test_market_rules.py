"""A-share market rules (shared/MARKET_RULES.md), each at its boundary; no database needed."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from datetime import date, time
from datetime import datetime as dt
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from trading.calendar import SHANGHAI
from trading.market_rules import (
    Board,
    CageSettings,
    DatedValue,
    FeeBreakdown,
    FeeSchedule,
    MarketRuleViolation,
    OrderType,
    Side,
    cage_reference,
    check_cage,
    check_price,
    check_quantity,
    check_session,
    estimate_buy_freeze,
    fill_fees,
    format_symbol,
    has_price_cage,
    hf_orders_per_day,
    hf_orders_per_second,
    infer_board,
    is_t0,
    limit_prices,
    load_reference_instruments,
    lot_size,
    normalize_symbol,
    price_cage,
    price_limit_pct,
    protection_price,
    round_to_tick,
    st_max_daily_buy,
    tick_size,
)

D = Decimal
DAY = date(2024, 10, 8)  # an ordinary trading day (Tuesday)
BUY, SELL, LIMIT, MARKET = Side.BUY, Side.SELL, OrderType.LIMIT, OrderType.MARKET


def inst(symbol: str, **attributes: Any) -> SimpleNamespace:
    """An instrument as the rules see it; board empty = inferred from the code."""
    code, exchange = normalize_symbol(symbol)
    defaults: dict[str, Any] = {
        "board": "",
        "is_st": False,
        "listing_date": None,
        "registration_listing": False,
        "limit_pct": None,
        "t0": False,
    }
    return SimpleNamespace(exchange=exchange, code=code, **{**defaults, **attributes})


MAIN_SH = inst("600000.SH")
MAIN_SZ = inst("000001.SZ")
CHINEXT = inst("300750.SZ")
STAR = inst("688981.SH")
BSE = inst("920001.BJ")
ETF = inst("510300.SH")
BOND = inst("113050.SH", t0=True)
INDEX = inst("000001.SH")


def violation(func: Callable[..., Any], *args: Any, **kwargs: Any) -> MarketRuleViolation:
    with pytest.raises(MarketRuleViolation) as info:
        func(*args, **kwargs)
    return info.value


# --- errors and dated parameters --------------------------------------------


def test_violation_carries_field_rule_message_and_pickles() -> None:
    error = MarketRuleViolation("quantity", "lot_size", "数量 (quantity 150)")
    assert (error.field, error.rule, str(error)) == ("quantity", "lot_size", "数量 (quantity 150)")
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.field, copy.rule, str(copy)) == ("quantity", "lot_size", "数量 (quantity 150)")


def test_dated_value_inclusive_ends_gaps_and_overlaps() -> None:
    value = DatedValue("x", ((date(2020, 1, 1), date(2020, 1, 31), 1), (date(2020, 2, 1), None, 2)))
    assert value.on(date(2020, 1, 31)) == 1
    assert value.on(date(2020, 2, 1)) == 2
    with pytest.raises(LookupError):
        value.on(date(2019, 12, 31))
    with pytest.raises(ValueError):
        DatedValue("y", ((date(2020, 1, 1), date(2020, 2, 1), 1), (date(2020, 2, 1), None, 2)))
    with pytest.raises(ValueError):
        DatedValue("z", ((date(2020, 2, 1), date(2020, 1, 1), 1),))


# --- symbols and boards -------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("600000.SH", ("600000", "SH")),
        ("600000.sh", ("600000", "SH")),
        (" 600000.SH ", ("600000", "SH")),
        ("sh600000", ("600000", "SH")),
        ("SH600000", ("600000", "SH")),
        ("600000", ("600000", "SH")),
        ("600000.XSHG", ("600000", "SH")),
        ("600000.xshg", ("600000", "SH")),
        ("600000.SS", ("600000", "SH")),
        ("000001.SZ", ("000001", "SZ")),
        ("000001.XSHE", ("000001", "SZ")),
        ("sz000001", ("000001", "SZ")),
        ("000001", ("000001", "SZ")),  # a bare 000001 is the SZSE stock, not the SSE index
        ("000001.SH", ("000001", "SH")),
        ("920001", ("920001", "BJ")),
        ("bj920001", ("920001", "BJ")),
        ("920001.BJ", ("920001", "BJ")),
        ("430047.BJ", ("430047", "BJ")),
        ("BJ830799", ("830799", "BJ")),
        ("688981", ("688981", "SH")),
        ("510300", ("510300", "SH")),
        ("113050", ("113050", "SH")),
        ("110059", ("110059", "SH")),
        ("900901", ("900901", "SH")),
        ("300750", ("300750", "SZ")),
        ("200002", ("200002", "SZ")),
        ("159915", ("159915", "SZ")),
        ("161725", ("161725", "SZ")),
        ("123107", ("123107", "SZ")),
    ],
)
def test_normalize_symbol_accepts(text: str, expected: tuple[str, str]) -> None:
    assert normalize_symbol(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "60000",
        "6000000",
        "60000a",
        "600000.",
        "600000.SX",
        "600000.HK",
        "sh600000.SH",  # exchange given twice
        "xx600000",
        "SH 600000",
        "430047",  # bare 4/8 codes: NEEQ or legacy BSE, cannot be inferred
        "830799",
        "871981",
        "100000",  # 10x: no inference rule
        "700000",
    ],
)
def test_normalize_symbol_rejects(text: str) -> None:
    error = violation(normalize_symbol, text)
    assert (error.field, error.rule) == ("symbol", "symbol_format")


def test_format_symbol() -> None:
    assert format_symbol("600000", "SH") == "600000.SH"
    assert format_symbol(*normalize_symbol("sz000001")) == "000001.SZ"


@pytest.mark.parametrize(
    ("exchange", "code", "board"),
    [
        ("SH", "600000", Board.MAIN),
        ("SH", "601318", Board.MAIN),
        ("SH", "603288", Board.MAIN),
        ("SH", "605499", Board.MAIN),
        ("SH", "688981", Board.STAR),
        ("SH", "689009", Board.STAR),
        ("SH", "510300", Board.FUND),
        ("SH", "588000", Board.FUND),
        ("SH", "110059", Board.CONVERTIBLE_BOND),
        ("SH", "111000", Board.CONVERTIBLE_BOND),
        ("SH", "113050", Board.CONVERTIBLE_BOND),
        ("SH", "118000", Board.CONVERTIBLE_BOND),
        ("SH", "900901", Board.B_SHARE),
        ("SH", "000001", Board.INDEX),
        ("SH", "112000", Board.OTHER),
        ("SZ", "000001", Board.MAIN),
        ("SZ", "001286", Board.MAIN),
        ("SZ", "002594", Board.MAIN),
        ("SZ", "003816", Board.MAIN),
        ("SZ", "300750", Board.CHINEXT),
        ("SZ", "301269", Board.CHINEXT),
        ("SZ", "159915", Board.FUND),
        ("SZ", "161725", Board.FUND),
        ("SZ", "123107", Board.CONVERTIBLE_BOND),
        ("SZ", "128136", Board.CONVERTIBLE_BOND),
        ("SZ", "200002", Board.B_SHARE),
        ("SZ", "399001", Board.INDEX),
        ("BJ", "920001", Board.BSE),
        ("BJ", "430047", Board.BSE),
        ("BJ", "835185", Board.BSE),
        ("BJ", "871981", Board.BSE),
    ],
)
def test_infer_board(exchange: str, code: str, board: Board) -> None:
    assert infer_board(exchange, code) == board


def test_reference_board_overrides_inference() -> None:
    assert price_limit_pct(inst("600000.SH", board=Board.FUND), DAY) == D("10")
    assert tick_size(Board.FUND) == D("0.001")
    assert lot_size(inst("600000.SH", board=Board.STAR), DAY) == 200


# --- tick -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("board", "tick"),
    [
        (Board.MAIN, "0.01"),
        (Board.CHINEXT, "0.01"),
        (Board.STAR, "0.01"),
        (Board.BSE, "0.01"),
        (Board.FUND, "0.001"),
        (Board.CONVERTIBLE_BOND, "0.001"),
    ],
)
def test_tick_size(board: Board, tick: str) -> None:
    assert tick_size(board) == D(tick)


def test_round_to_tick_is_half_up_not_half_even() -> None:
    assert round_to_tick(D("11.045"), D("0.01")) == D("11.05")
    assert round(D("11.045"), 2) == D("11.04")  # why round() is banned
    assert round_to_tick(D("11.0449"), D("0.01")) == D("11.04")
    assert round_to_tick(D("1.1055"), D("0.001")) == D("1.106")


# --- price limits ----------------------------------------------------------------


def test_worked_example_600000_limits() -> None:
    assert limit_prices(inst("600000.SH"), D("10.05"), DAY) == (D("9.05"), D("11.06"))


@pytest.mark.parametrize(
    ("instrument", "on", "pct"),
    [
        (MAIN_SH, DAY, "10"),
        (MAIN_SZ, DAY, "10"),
        (inst("600265.SH", is_st=True), date(2026, 7, 3), "5"),
        (inst("600265.SH", is_st=True), date(2026, 7, 5), "5"),  # last day at ±5%
        (inst("600265.SH", is_st=True), date(2026, 7, 6), "10"),  # first day at ±10%
        (inst("002005.SZ", is_st=True), date(2026, 7, 5), "5"),
        (inst("002005.SZ", is_st=True), date(2026, 7, 6), "10"),
        (CHINEXT, date(2020, 8, 21), "10"),
        (CHINEXT, date(2020, 8, 24), "20"),
        (inst("300096.SZ", is_st=True), date(2024, 10, 8), "20"),  # ChiNext ST: same as the board
        (STAR, DAY, "20"),
        (inst("688001.SH", is_st=True), DAY, "20"),
        (BSE, DAY, "30"),
        (inst("430047.BJ", is_st=True), DAY, "30"),
        (ETF, DAY, "10"),
        (inst("588000.SH", limit_pct=D("20")), DAY, "20"),  # configured ETF at ±20%
        (BOND, date(2022, 7, 29), None),
        (BOND, date(2022, 8, 1), "20"),
        (INDEX, DAY, None),
    ],
)
def test_price_limit_pct(instrument: SimpleNamespace, on: date, pct: str | None) -> None:
    assert price_limit_pct(instrument, on) == (None if pct is None else D(pct))


def test_st_limit_prices_switch_on_2026_07_06() -> None:
    st = inst("600265.SH", is_st=True)
    assert limit_prices(st, D("10.05"), date(2026, 7, 3)) == (D("9.55"), D("10.55"))  # 9.5475 / 10.5525
    assert limit_prices(st, D("10.05"), date(2026, 7, 6)) == (D("9.05"), D("11.06"))


@pytest.mark.parametrize(
    ("instrument", "prev_close", "limits"),
    [
        (CHINEXT, "250.00", ("200.00", "300.00")),
        (STAR, "90.05", ("72.04", "108.06")),
        (BSE, "12.35", ("8.65", "16.06")),  # 8.645 / 16.055 half up
        (ETF, "3.950", ("3.555", "4.345")),
        (ETF, "1.005", ("0.905", "1.106")),  # fund tick 0.001: 0.9045 / 1.1055 half up
    ],
)
def test_limit_prices_round_half_up_to_the_tick(
    instrument: SimpleNamespace, prev_close: str, limits: tuple[str, str]
) -> None:
    assert limit_prices(instrument, D(prev_close), DAY) == (D(limits[0]), D(limits[1]))


def test_limit_prices_none_without_limit_and_positive_reference_required() -> None:
    assert limit_prices(INDEX, D("3300"), DAY) is None
    with pytest.raises(ValueError):
        limit_prices(MAIN_SH, D("0"), DAY)


@pytest.mark.parametrize(
    ("instrument", "limited_on", "last_free_day", "first_limited_day"),
    [
        # STAR IPO 2025-06-11: trading days 11, 12, 13, 16, 17 free; 18th limited.
        (inst("688775.SH", listing_date=date(2025, 6, 11)), "20", date(2025, 6, 17), date(2025, 6, 18)),
        # Listed the Friday before National Day 2024: counts trading days, not calendar days.
        (inst("688001.SH", listing_date=date(2024, 9, 27)), "20", date(2024, 10, 10), date(2024, 10, 11)),
        (inst("301001.SZ", listing_date=date(2020, 8, 24)), "20", date(2020, 8, 28), date(2020, 8, 31)),
        (
            inst("001286.SZ", listing_date=date(2023, 4, 10), registration_listing=True),
            "10",
            date(2023, 4, 14),
            date(2023, 4, 17),
        ),
        (inst("832982.BJ", listing_date=date(2023, 7, 20)), "30", date(2023, 7, 20), date(2023, 7, 21)),
    ],
)
def test_no_limit_days_after_listing(
    instrument: SimpleNamespace, limited_on: str, last_free_day: date, first_limited_day: date
) -> None:
    listing = instrument.listing_date
    assert price_limit_pct(instrument, listing) is None
    assert price_limit_pct(instrument, last_free_day) is None
    assert limit_prices(instrument, D("10.00"), last_free_day) is None
    assert price_limit_pct(instrument, first_limited_day) == D(limited_on)


def test_no_limit_days_do_not_apply_outside_their_regime() -> None:
    # Main board without registration listing, or registered before 2023-04-10: limited from day 1.
    assert price_limit_pct(inst("001286.SZ", listing_date=date(2023, 4, 10)), date(2023, 4, 10)) == D("10")
    old_registration = inst("601000.SH", listing_date=date(2023, 4, 7), registration_listing=True)
    assert price_limit_pct(old_registration, date(2023, 4, 7)) == D("10")
    # ChiNext IPOs before the 2020-08-24 reform had no 5 free days.
    assert price_limit_pct(inst("300999.SZ", listing_date=date(2020, 8, 21)), date(2020, 8, 24)) == D("20")
    # Not yet listed: the board limit, not "no limit".
    assert price_limit_pct(inst("688775.SH", listing_date=date(2025, 6, 11)), date(2025, 6, 10)) == D("20")


def test_listing_override_takes_priority_over_limit_pct_override() -> None:
    etf = inst("588001.SH", listing_date=date(2024, 10, 8), limit_pct=D("20"))
    assert price_limit_pct(etf, DAY) == D("20")  # funds have no free days
    star = inst("688999.SH", listing_date=DAY, limit_pct=D("20"))
    assert price_limit_pct(star, DAY) is None


# --- check_price -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("price", "ok"),
    [
        ("9.04", False),
        ("9.05", True),
        ("9.06", True),
        ("11.05", True),
        ("11.06", True),
        ("11.07", False),
    ],
)
def test_check_price_limit_band(price: str, ok: bool) -> None:
    for side in (BUY, SELL):
        if ok:
            check_price(MAIN_SH, side, LIMIT, D(price), D("10.05"), DAY)
        else:
            error = violation(check_price, MAIN_SH, side, LIMIT, D(price), D("10.05"), DAY)
            assert (error.field, error.rule) == ("price", "price_limit")
            assert price in error.message and "11.06" in error.message and "9.05" in error.message


def test_check_price_required_positive_and_tick() -> None:
    assert violation(check_price, MAIN_SH, BUY, LIMIT, None, D("10.05"), DAY).rule == "required"
    assert violation(check_price, MAIN_SH, BUY, LIMIT, D("0"), D("10.05"), DAY).rule == "positive"
    assert violation(check_price, MAIN_SH, BUY, LIMIT, D("-10.00"), None, DAY).rule == "positive"
    error = violation(check_price, MAIN_SH, BUY, LIMIT, D("10.005"), D("10.05"), DAY)
    assert (error.field, error.rule) == ("price", "tick_size")
    assert "0.01" in error.message and "10.005" in error.message
    check_price(MAIN_SH, BUY, LIMIT, D("10.01"), D("10.05"), DAY)
    check_price(MAIN_SH, BUY, LIMIT, D("10.010"), D("10.05"), DAY)  # trailing zero is still on tick
    assert violation(check_price, ETF, BUY, LIMIT, D("3.9505"), D("3.950"), DAY).rule == "tick_size"
    check_price(ETF, BUY, LIMIT, D("3.951"), D("3.950"), DAY)
    assert violation(check_price, BOND, SELL, LIMIT, D("125.0005"), D("125.000"), DAY).rule == "tick_size"
    check_price(BOND, SELL, LIMIT, D("125.001"), D("125.000"), DAY)


def test_check_price_without_reference_skips_band_only() -> None:
    check_price(MAIN_SH, BUY, LIMIT, D("100.00"), None, DAY)
    assert violation(check_price, MAIN_SH, BUY, LIMIT, D("100.001"), None, DAY).rule == "tick_size"


def test_check_price_on_no_limit_day_accepts_any_positive_price() -> None:
    new_star = inst("688775.SH", listing_date=date(2025, 6, 11))
    check_price(new_star, BUY, LIMIT, D("500.00"), D("47.27"), date(2025, 6, 11))
    assert (
        violation(check_price, new_star, BUY, LIMIT, D("500.00"), D("47.27"), date(2025, 6, 18)).rule == "price_limit"
    )


def test_index_is_not_tradable() -> None:
    assert violation(check_price, INDEX, BUY, LIMIT, D("3300.00"), None, DAY).rule == "not_tradable"
    assert violation(check_quantity, INDEX, BUY, LIMIT, 100, 0, DAY).rule == "not_tradable"


@pytest.mark.parametrize(
    ("instrument", "pct", "down", "up", "tick"),
    [
        (MAIN_SH, "10", "9.00", "11.00", "0.01"),
        (MAIN_SZ, "10", "9.00", "11.00", "0.01"),
        (CHINEXT, "20", "8.00", "12.00", "0.01"),
        (STAR, "20", "8.00", "12.00", "0.01"),
        (BSE, "30", "7.00", "13.00", "0.01"),
        (ETF, "10", "9.000", "11.000", "0.001"),
    ],
    ids=["main-sh", "main-sz", "chinext", "star", "bse", "etf"],
)
def test_market_orders_allowed_with_price_limits(instrument: Any, pct: str, down: str, up: str, tick: str) -> None:
    """A market order on a day with price limits is accepted without a protection price, which
    then defaults to the limit (up to buy, down to sell); one it is given must lie in the band."""
    prev_close = D("10.00")
    assert price_limit_pct(instrument, DAY) == D(pct)
    assert limit_prices(instrument, prev_close, DAY) == (D(down), D(up))
    for side in (BUY, SELL):
        assert check_price(instrument, side, MARKET, None, prev_close, DAY) is None
    assert protection_price(instrument, BUY, prev_close, DAY) == D(up)
    assert protection_price(instrument, SELL, prev_close, DAY) == D(down)
    assert check_price(instrument, BUY, MARKET, D(up), prev_close, DAY) is None
    error = violation(check_price, instrument, BUY, MARKET, D(up) + D(tick), prev_close, DAY)
    assert (error.field, error.rule) == ("price", "price_limit")


def test_market_orders_refused_for_bonds_and_no_limit_days() -> None:
    error = violation(check_price, BOND, BUY, MARKET, None, D("125.000"), DAY)
    assert (error.field, error.rule) == ("order_type", "market_order_not_allowed")
    new_chinext = inst("301001.SZ", listing_date=date(2020, 8, 24))
    assert violation(check_price, new_chinext, BUY, MARKET, None, None, date(2020, 8, 28)).rule == (
        "market_order_not_allowed"
    )
    check_price(new_chinext, BUY, MARKET, None, D("10.00"), date(2020, 8, 31))
    new_main = inst("001286.SZ", listing_date=date(2023, 4, 10), registration_listing=True)
    assert violation(check_price, new_main, SELL, MARKET, None, None, date(2023, 4, 14)).rule == (
        "market_order_not_allowed"
    )


def test_star_market_orders_on_no_limit_days_need_a_protection_price() -> None:
    new_star = inst("688775.SH", listing_date=date(2025, 6, 11))
    error = violation(check_price, new_star, BUY, MARKET, None, D("47.27"), date(2025, 6, 12))
    assert (error.field, error.rule) == ("price", "required")
    check_price(new_star, BUY, MARKET, D("120.00"), D("47.27"), date(2025, 6, 12))
    assert violation(check_price, new_star, BUY, MARKET, D("120.005"), None, date(2025, 6, 12)).rule == "tick_size"


def test_market_order_protection_price_is_checked_against_the_band() -> None:
    check_price(MAIN_SH, BUY, MARKET, D("11.06"), D("10.05"), DAY)
    assert violation(check_price, MAIN_SH, BUY, MARKET, D("11.07"), D("10.05"), DAY).rule == "price_limit"


def test_protection_price_defaults_to_limits() -> None:
    assert protection_price(MAIN_SH, BUY, D("10.05"), DAY) == D("11.06")
    assert protection_price(MAIN_SH, SELL, D("10.05"), DAY) == D("9.05")
    assert (
        protection_price(inst("688775.SH", listing_date=date(2025, 6, 11)), BUY, D("47.27"), date(2025, 6, 11)) is None
    )
    assert protection_price(MAIN_SH, BUY, None, DAY) is None


# --- price cage ------------------------------------------------------------------------


def test_cage_reference_order() -> None:
    bid, ask, last, close = D("9.99"), D("10.01"), D("10.00"), D("9.80")
    assert cage_reference(BUY, bid, ask, last, close) == ask
    assert cage_reference(SELL, bid, ask, last, close) == bid
    assert cage_reference(BUY, bid, None, last, close) == bid
    assert cage_reference(BUY, bid, D("0"), last, close) == bid  # 0 = no ask (sealed limit up)
    assert cage_reference(SELL, None, ask, last, close) == ask
    assert cage_reference(BUY, None, None, last, close) == last
    assert cage_reference(SELL, D("0"), None, D("0"), close) == close
    assert cage_reference(BUY, None, None, None, None) is None


@pytest.mark.parametrize(
    ("reference", "buy_bound", "sell_bound"),
    [
        ("20.00", "20.40", "19.60"),  # 102% / 98% branch
        ("5.00", "5.10", "4.90"),  # both branches meet: 2% = 10 ticks
        ("3.00", "3.10", "2.90"),  # 10-tick branch
        ("10.75", "10.97", "10.54"),  # 10.965 rounds half up (half-even would give 10.96); 10.535 -> 10.54
        ("0.05", "0.15", "0.00"),  # a sell bound never goes below zero
    ],
)
def test_main_board_cage_bounds(reference: str, buy_bound: str, sell_bound: str) -> None:
    assert price_cage(MAIN_SH, BUY, D(reference), DAY) == D(buy_bound)
    assert price_cage(MAIN_SZ, SELL, D(reference), DAY) == D(sell_bound)


@pytest.mark.parametrize(
    ("ask", "price", "ok"),
    [
        ("20.00", "20.39", True),
        ("20.00", "20.40", True),
        ("20.00", "20.41", False),
        ("3.00", "3.09", True),
        ("3.00", "3.10", True),
        ("3.00", "3.11", False),
    ],
)
def test_check_cage_main_board_buy(ask: str, price: str, ok: bool) -> None:
    args = (MAIN_SH, BUY, D(price), D("2.00"), D(ask), None, None, DAY)
    if ok:
        check_cage(*args)
    else:
        error = violation(check_cage, *args)
        assert (error.field, error.rule) == ("price", "price_cage")
        assert price in error.message and ask in error.message


@pytest.mark.parametrize(
    ("bid", "price", "ok"),
    [
        ("20.00", "19.61", True),
        ("20.00", "19.60", True),
        ("20.00", "19.59", False),
        ("3.00", "2.90", True),
        ("3.00", "2.89", False),
    ],
)
def test_check_cage_main_board_sell(bid: str, price: str, ok: bool) -> None:
    args = (MAIN_SH, SELL, D(price), D(bid), D("99.00"), None, None, DAY)
    if ok:
        check_cage(*args)
    else:
        assert violation(check_cage, *args).rule == "price_cage"


def test_check_cage_uses_the_side_reference() -> None:
    # Buy is caged on the ask (10.00 -> 10.20), not the bid (9.00 -> 9.18).
    check_cage(MAIN_SH, BUY, D("10.20"), D("9.00"), D("10.00"), None, None, DAY)
    # Sell is caged on the bid (9.00 -> 8.82), not the ask.
    check_cage(MAIN_SH, SELL, D("8.82"), D("9.00"), D("10.00"), None, None, DAY)
    assert violation(check_cage, MAIN_SH, SELL, D("8.81"), D("9.00"), D("10.00"), None, None, DAY).rule == "price_cage"
    # Empty book: last, then previous close.
    assert violation(check_cage, MAIN_SH, BUY, D("10.21"), None, None, D("10.00"), D("5.00"), DAY).rule == "price_cage"
    check_cage(MAIN_SH, BUY, D("5.10"), None, None, None, D("5.00"), DAY)
    check_cage(MAIN_SH, BUY, D("999.00"), None, None, None, None, DAY)  # no reference at all


def test_main_board_cage_starts_2023_04_10() -> None:
    assert not has_price_cage(MAIN_SH, date(2023, 4, 7))
    assert has_price_cage(MAIN_SH, date(2023, 4, 10))
    assert price_cage(MAIN_SH, BUY, D("10.00"), date(2023, 4, 7)) == D("Infinity")
    check_cage(MAIN_SH, BUY, D("10.50"), None, D("10.00"), None, None, date(2023, 4, 7))
    assert (
        violation(check_cage, MAIN_SH, BUY, D("10.50"), None, D("10.00"), None, None, date(2023, 4, 10)).rule
        == "price_cage"
    )


@pytest.mark.parametrize("instrument", [STAR, CHINEXT])
def test_star_chinext_cage_without_and_with_tick_allowance(instrument: SimpleNamespace) -> None:
    assert price_cage(instrument, BUY, D("100.00"), DAY) == D("102.00")
    assert price_cage(instrument, SELL, D("100.00"), DAY) == D("98.00")
    assert price_cage(instrument, BUY, D("3.00"), DAY) == D("3.06")  # allowance off by default
    assert price_cage(instrument, SELL, D("3.00"), DAY) == D("2.94")
    allowance = CageSettings(star_chinext_tick_allowance=True)
    assert price_cage(instrument, BUY, D("3.00"), DAY, allowance) == D("3.10")
    assert price_cage(instrument, SELL, D("3.00"), DAY, allowance) == D("2.90")
    check_cage(instrument, BUY, D("102.00"), None, D("100.00"), None, None, DAY)
    assert violation(check_cage, instrument, BUY, D("102.01"), None, D("100.00"), None, None, DAY).rule == "price_cage"
    check_cage(instrument, SELL, D("98.00"), D("100.00"), None, None, None, DAY)
    assert violation(check_cage, instrument, SELL, D("97.99"), D("100.00"), None, None, None, DAY).rule == "price_cage"


def test_chinext_cage_starts_2020_08_24() -> None:
    assert not has_price_cage(CHINEXT, date(2020, 8, 21))
    assert has_price_cage(CHINEXT, date(2020, 8, 24))


def test_bse_cage_with_and_without_tick_allowance() -> None:
    assert price_cage(BSE, BUY, D("10.00"), DAY) == D("10.50")
    assert price_cage(BSE, SELL, D("10.00"), DAY) == D("9.50")
    assert price_cage(BSE, BUY, D("1.00"), DAY) == D("1.10")  # allowance on by default
    assert price_cage(BSE, SELL, D("1.00"), DAY) == D("0.90")
    no_allowance = CageSettings(bse_tick_allowance=False)
    assert price_cage(BSE, BUY, D("1.00"), DAY, no_allowance) == D("1.05")
    assert price_cage(BSE, SELL, D("1.00"), DAY, no_allowance) == D("0.95")
    check_cage(BSE, BUY, D("10.50"), None, D("10.00"), None, None, DAY)
    assert violation(check_cage, BSE, BUY, D("10.51"), None, D("10.00"), None, None, DAY).rule == "price_cage"


@pytest.mark.parametrize("instrument", [ETF, BOND])
def test_funds_and_bonds_have_no_cage(instrument: SimpleNamespace) -> None:
    assert not has_price_cage(instrument, DAY)
    assert price_cage(instrument, BUY, D("1.000"), DAY) == D("Infinity")
    assert price_cage(instrument, SELL, D("1.000"), DAY) == D("0")
    check_cage(instrument, BUY, D("9.999"), None, D("1.000"), None, None, DAY)


# --- quantity ---------------------------------------------------------------------------


def test_worked_examples_quantity() -> None:
    check_quantity(STAR, BUY, LIMIT, 200, 0, DAY)
    check_quantity(STAR, BUY, LIMIT, 201, 0, DAY)
    error = violation(check_quantity, STAR, BUY, LIMIT, 199, 0, DAY)
    assert (error.field, error.rule) == ("quantity", "min_quantity")
    check_quantity(CHINEXT, BUY, LIMIT, 100, 0, DAY)
    error = violation(check_quantity, CHINEXT, BUY, LIMIT, 150, 0, DAY)
    assert (error.field, error.rule) == ("quantity", "lot_size")
    assert "100" in error.message and "150" in error.message and "300750.SZ" in error.message


@pytest.mark.parametrize("quantity", [0, -100])
def test_quantity_must_be_positive(quantity: int) -> None:
    assert violation(check_quantity, MAIN_SH, BUY, LIMIT, quantity, 0, DAY).rule == "positive"


@pytest.mark.parametrize(
    ("instrument", "ok", "bad", "rule"),
    [
        (MAIN_SH, [100, 200, 1000], [50, 99, 150, 101], "lot_size"),
        (ETF, [100, 300], [50, 150], "lot_size"),
        (BSE, [100, 101, 12345], [99, 1], "min_quantity"),
        (STAR, [200, 201, 999], [1, 100, 199], "min_quantity"),
        (BOND, [10, 20, 1000], [5, 15, 11], "lot_size"),
    ],
)
def test_buy_steps(instrument: SimpleNamespace, ok: list[int], bad: list[int], rule: str) -> None:
    for quantity in ok:
        check_quantity(instrument, BUY, LIMIT, quantity, 0, DAY)
    for quantity in bad:
        assert violation(check_quantity, instrument, BUY, LIMIT, quantity, 0, DAY).rule == rule


@pytest.mark.parametrize(
    ("instrument", "order_type", "maximum", "step", "on"),
    [
        (MAIN_SH, LIMIT, 1_000_000, 100, DAY),
        (MAIN_SZ, MARKET, 1_000_000, 100, DAY),
        (ETF, LIMIT, 1_000_000, 100, DAY),
        (CHINEXT, LIMIT, 300_000, 100, DAY),
        (CHINEXT, MARKET, 150_000, 100, DAY),
        (CHINEXT, LIMIT, 1_000_000, 100, date(2020, 8, 21)),  # before the ChiNext reform
        (STAR, LIMIT, 100_000, 1, DAY),
        (STAR, MARKET, 50_000, 1, DAY),
        (BSE, LIMIT, 1_000_000, 1, DAY),
        (BSE, MARKET, 1_000_000, 1, DAY),
        (BOND, LIMIT, 100_000, 10, DAY),
    ],
)
def test_per_order_maximum(instrument: SimpleNamespace, order_type: str, maximum: int, step: int, on: date) -> None:
    check_quantity(instrument, BUY, order_type, maximum - step, 0, on)
    check_quantity(instrument, BUY, order_type, maximum, 0, on)
    check_quantity(instrument, SELL, order_type, maximum, 0, on)
    error = violation(check_quantity, instrument, BUY, order_type, maximum + step, 0, on)
    assert (error.field, error.rule) == ("quantity", "max_quantity")
    assert str(maximum) in error.message
    assert violation(check_quantity, instrument, SELL, order_type, maximum + step, 0, on).rule == "max_quantity"


def test_bonds_take_no_market_orders_by_quantity_either() -> None:
    error = violation(check_quantity, BOND, BUY, MARKET, 10, 0, DAY)
    assert (error.field, error.rule) == ("order_type", "market_order_not_allowed")


def test_st_buy_limit_per_order() -> None:
    st = inst("600265.SH", is_st=True)
    assert st_max_daily_buy(DAY) == 500_000
    check_quantity(st, BUY, LIMIT, 500_000, 0, DAY)
    error = violation(check_quantity, st, BUY, LIMIT, 500_100, 0, DAY)
    assert (error.field, error.rule) == ("quantity", "st_daily_buy_limit")
    check_quantity(st, SELL, LIMIT, 500_100, 600_000, DAY)  # sells are not limited
    check_quantity(MAIN_SH, BUY, LIMIT, 500_100, 0, DAY)


@pytest.mark.parametrize(
    ("position", "quantity", "result"),
    [
        (250, 200, None),
        (250, 50, None),  # the whole odd lot alone
        (250, 150, None),  # the whole odd lot with one whole lot
        (250, 250, None),
        (250, 30, "odd_lot_sell"),  # part of the odd lot
        (250, 130, "odd_lot_sell"),
        (250, 350, "odd_lot_sell"),  # more than the holding
        (50, 50, None),
        (50, 49, "odd_lot_sell"),
        (300, 50, "lot_size"),  # no odd lot to sell
        (0, 50, "lot_size"),
    ],
)
def test_odd_lot_sells_main_board(position: int, quantity: int, result: str | None) -> None:
    if result is None:
        check_quantity(MAIN_SZ, SELL, LIMIT, quantity, position, DAY)
    else:
        error = violation(check_quantity, MAIN_SZ, SELL, LIMIT, quantity, position, DAY)
        assert (error.field, error.rule) == ("quantity", result)
        if result == "odd_lot_sell":
            assert str(position % 100 or position) in error.message


@pytest.mark.parametrize(
    ("instrument", "position", "quantity", "result"),
    [
        (STAR, 150, 150, None),  # remainder below 200 sold whole
        (STAR, 199, 199, None),
        (STAR, 150, 100, "odd_lot_sell"),
        (STAR, 350, 200, None),
        (STAR, 350, 201, None),
        (STAR, 350, 350, None),
        (STAR, 350, 150, "min_quantity"),
        (STAR, 200, 199, "min_quantity"),
        (BSE, 50, 50, None),
        (BSE, 50, 40, "odd_lot_sell"),
        (BSE, 150, 101, None),
        (BSE, 150, 50, "min_quantity"),
        (BOND, 25, 5, None),
        (BOND, 25, 15, None),
        (BOND, 25, 25, None),
        (BOND, 25, 3, "odd_lot_sell"),
        (ETF, 1050, 50, None),
        (ETF, 1050, 1050, None),
        (ETF, 1050, 60, "odd_lot_sell"),
    ],
)
def test_odd_lot_sells_other_boards(
    instrument: SimpleNamespace, position: int, quantity: int, result: str | None
) -> None:
    if result is None:
        check_quantity(instrument, SELL, LIMIT, quantity, position, DAY)
    else:
        assert violation(check_quantity, instrument, SELL, LIMIT, quantity, position, DAY).rule == result


def test_check_quantity_defaults_to_today() -> None:
    check_quantity(MAIN_SH, BUY, LIMIT, 100)
    assert violation(check_quantity, MAIN_SH, BUY, LIMIT, 150).rule == "lot_size"


def test_lot_size() -> None:
    assert [lot_size(x, DAY) for x in (MAIN_SH, CHINEXT, STAR, BSE, ETF, BOND)] == [100, 100, 200, 100, 100, 10]
    assert lot_size(MAIN_SH) == 100


# --- sessions -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("clock", "order_type", "rule"),
    [
        (time(9, 14, 59), LIMIT, "session_closed"),
        (time(9, 15), LIMIT, None),
        (time(9, 15), MARKET, "market_order_not_allowed"),
        (time(9, 25), LIMIT, None),  # queued for 09:30
        (time(9, 29, 59), MARKET, "market_order_not_allowed"),
        (time(9, 30), MARKET, None),
        (time(11, 30), LIMIT, "session_closed"),
        (time(13, 0), MARKET, None),
        (time(14, 57), LIMIT, None),
        (time(14, 57), MARKET, "market_order_not_allowed"),
        (time(15, 0), LIMIT, "session_closed"),
    ],
)
def test_check_session(clock: time, order_type: str, rule: str | None) -> None:
    moment = dt.combine(DAY, clock, tzinfo=SHANGHAI)
    if rule is None:
        check_session(order_type, moment)
    else:
        assert violation(check_session, order_type, moment).rule == rule


def test_check_session_closed_on_holiday() -> None:
    moment = dt.combine(date(2024, 10, 1), time(10, 0), tzinfo=SHANGHAI)
    error = violation(check_session, LIMIT, moment)
    assert (error.field, error.rule) == ("__all__", "session_closed")


# --- fees -----------------------------------------------------------------------------------------


def test_worked_example_fees_szse_stock() -> None:
    schedule = FeeSchedule()
    buy = fill_fees(schedule, MAIN_SZ, BUY, D("10000"), D("0"), D("0"), DAY)
    assert buy == FeeBreakdown(D("5.00"), D("0.00"), D("0.10"), D("0.00"), D("0.00"))
    assert buy.total == D("5.10")
    sell = fill_fees(schedule, MAIN_SZ, SELL, D("10000"), D("0"), D("0"), DAY)
    assert (sell.commission, sell.stamp_duty, sell.transfer_fee) == (D("5.00"), D("5.00"), D("0.10"))
    assert sell.total == D("10.10")


@pytest.mark.parametrize(
    ("on", "stamp_duty"),
    [(date(2023, 8, 25), "10.00"), (date(2023, 8, 27), "10.00"), (date(2023, 8, 28), "5.00")],
)
def test_stamp_duty_halved_2023_08_28(on: date, stamp_duty: str) -> None:
    assert fill_fees(FeeSchedule(), MAIN_SH, SELL, D("10000"), D("0"), D("0"), on).stamp_duty == D(stamp_duty)


@pytest.mark.parametrize(("on", "transfer_fee"), [(date(2022, 4, 28), "0.20"), (date(2022, 4, 29), "0.10")])
def test_transfer_fee_cut_2022_04_29(on: date, transfer_fee: str) -> None:
    assert fill_fees(FeeSchedule(), MAIN_SH, BUY, D("10000"), D("0"), D("0"), on).transfer_fee == D(transfer_fee)


def test_fees_by_instrument_kind() -> None:
    schedule = FeeSchedule()
    bse = fill_fees(schedule, BSE, SELL, D("10000"), D("0"), D("0"), DAY)
    assert (bse.stamp_duty, bse.transfer_fee) == (D("5.00"), D("0.00"))  # BSE: no transfer fee
    for fund_or_bond in (ETF, BOND):
        fees = fill_fees(schedule, fund_or_bond, SELL, D("10000"), D("0"), D("0"), DAY)
        assert (fees.stamp_duty, fees.transfer_fee, fees.commission) == (D("0.00"), D("0.00"), D("5.00"))


def test_commission_minimum_is_charged_once_per_order() -> None:
    schedule = FeeSchedule()
    first = fill_fees(schedule, MAIN_SH, BUY, D("10000"), D("0"), D("0"), DAY)
    assert first.commission == D("5.00")  # 2.50 lifted to the minimum
    small = fill_fees(schedule, MAIN_SH, BUY, D("1000"), D("10000"), D("5.00"), DAY)
    assert small.commission == D("0.00")  # 11,000 x 0.025% = 2.75 < the 5 already paid
    second = fill_fees(schedule, MAIN_SH, BUY, D("30000"), D("10000"), D("5.00"), DAY)
    assert second.commission == D("5.00")  # 40,000 x 0.025% = 10.00 in all
    third = fill_fees(schedule, MAIN_SH, BUY, D("5000"), D("40000"), D("10.00"), DAY)
    assert third.commission == D("1.25")


@pytest.mark.parametrize(
    ("amount", "commission", "waived"),
    [
        ("19980", "5.00", "5.00"),  # 4.995: minimum applies; waived: half up to 5.00
        ("20000", "5.00", "5.00"),
        ("20020", "5.01", "5.01"),  # 5.005 half up
        ("19940", "5.00", "4.99"),  # 4.985 half up (half-even would give 4.98)
        ("10000", "5.00", "2.50"),
    ],
)
def test_commission_rounding_and_minimum(amount: str, commission: str, waived: str) -> None:
    normal = fill_fees(FeeSchedule(), MAIN_SH, BUY, D(amount), D("0"), D("0"), DAY)
    assert normal.commission == D(commission)
    waived_schedule = FeeSchedule(waive_commission_min=True)
    assert fill_fees(waived_schedule, MAIN_SH, BUY, D(amount), D("0"), D("0"), DAY).commission == D(waived)


def test_exchange_fees_charged_only_when_not_in_commission() -> None:
    included = fill_fees(FeeSchedule(), MAIN_SH, BUY, D("100000"), D("0"), D("0"), DAY)
    assert (included.handling_fee, included.regulatory_fee) == (D("0.00"), D("0.00"))
    separate = FeeSchedule(commission_includes_exchange_fees=False)
    fees = fill_fees(separate, MAIN_SH, BUY, D("100000"), D("0"), D("0"), DAY)
    assert (fees.handling_fee, fees.regulatory_fee) == (D("3.41"), D("2.00"))
    old = fill_fees(separate, MAIN_SH, BUY, D("100000"), D("0"), D("0"), date(2023, 8, 25))
    assert old.handling_fee == D("4.87")
    bse = fill_fees(separate, BSE, BUY, D("100000"), D("0"), D("0"), DAY)
    assert bse.handling_fee == D("12.50")


def test_fee_schedule_json_round_trip() -> None:
    schedule = FeeSchedule(D("0.0002"), D("0"), True, False)
    data = schedule.to_dict()
    assert data == {
        "commission_rate": "0.0002",
        "commission_min": "0",
        "waive_commission_min": True,
        "commission_includes_exchange_fees": False,
    }
    assert FeeSchedule.from_dict(data) == schedule
    assert FeeSchedule.from_dict({}) == FeeSchedule()
    assert FeeSchedule.from_dict({"commission_rate": "0.0003", "waive_commission_min": "false"}) == FeeSchedule(
        commission_rate=D("0.0003")
    )
    with pytest.raises(ValueError):
        FeeSchedule.from_dict({"commission_rate": 0.0003})  # floats are refused
    with pytest.raises(ValueError):
        FeeSchedule.from_dict({"commission_rate": "abc"})
    with pytest.raises(ValueError):
        FeeSchedule(commission_rate=D("-0.1"))


def test_fee_breakdown_total_and_dict() -> None:
    fees = FeeBreakdown(D("5.00"), D("5.00"), D("0.10"), D("0.34"), D("0.20"))
    assert fees.total == D("10.64")
    assert fees.to_dict()["total"] == "10.64"


def test_estimate_buy_freeze() -> None:
    assert estimate_buy_freeze(FeeSchedule(), MAIN_SH, D("10.00"), 1000, DAY) == D("10005.10")
    assert estimate_buy_freeze(FeeSchedule(), ETF, D("3.951"), 100, DAY) == D("400.10")  # 395.10 + 5.00


# --- other parameters ------------------------------------------------------------------------------------


def test_t0_and_hf_lines() -> None:
    assert is_t0(BOND) and not is_t0(MAIN_SH)
    assert hf_orders_per_second(DAY) == 300
    assert hf_orders_per_day(DAY) == 20_000


# --- reference data file --------------------------------------------------------------------------------------


def test_instruments_file() -> None:
    rows = load_reference_instruments()
    by_symbol = {row.symbol: row for row in rows}
    assert len(rows) >= 30 and len(by_symbol) == len(rows)
    boards = {row.board for row in rows}
    assert {Board.MAIN, Board.CHINEXT, Board.STAR, Board.BSE, Board.FUND, Board.CONVERTIBLE_BOND} <= boards
    assert sum(1 for row in rows if row.is_st and row.board == Board.MAIN) >= 2
    assert any(row.is_st and row.board == Board.CHINEXT for row in rows)
    for row in rows:
        assert row.board == infer_board(row.exchange, row.code), row.symbol
        assert row.name and row.prev_close is not None and row.prev_close > 0, row.symbol
    assert by_symbol["510300.SH"].t0 is False
    assert by_symbol["511880.SH"].t0 is True
    assert by_symbol["513100.SH"].t0 is True
    assert by_symbol["113050.SH"].t0 is True
    assert by_symbol["600000.SH"].prev_close == D("10.05")
    assert price_limit_pct(by_symbol["588000.SH"], DAY) == D("20")
    new_star = by_symbol["688775.SH"]
    assert price_limit_pct(new_star, date(2025, 6, 17)) is None
    assert price_limit_pct(new_star, date(2025, 6, 18)) == D("20")


def test_instruments_file_errors_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / "instruments.csv"
    header = "symbol,name,board,is_st,listing_date,registration_listing,t0,limit_pct,industry,total_shares,prev_close\n"
    path.write_text(
        header + "600000.SH,浦发银行,,false,,false,false,,,,10.05\n600001,坏,,false,,false,false,,,,10.005\n"
    )
    with pytest.raises(ValueError, match=":3:"):
        load_reference_instruments(path)
    path.write_text(header + "430047,诺思兰德,,false,,false,false,,,,12.50\n")
    with pytest.raises(ValueError, match=":2:"):
        load_reference_instruments(path)
