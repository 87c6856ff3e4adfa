"""Trading calendar and sessions (MARKET_RULES "Sessions"); no database needed."""

from __future__ import annotations

import io
import logging
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pytest

from trading import calendar as cal
from trading.calendar import (
    SHANGHAI,
    Phase,
    accepts_cancels,
    accepts_market_orders,
    accepts_new_orders,
    is_trading_day,
    market_close,
    next_trading_day,
    previous_trading_day,
    reload_calendar,
    session_phase,
    trading_day_of,
    trading_days_between,
)

TUESDAY = date(2024, 10, 8)  # first trading day after the 2024 National Day holiday


@pytest.fixture(autouse=True)
def _shipped_calendar():
    """Every test starts and ends on the shipped holidays file."""
    reload_calendar()
    yield
    reload_calendar()


def at(day: date, hh: int, mm: int, ss: int = 0, us: int = 0) -> datetime:
    return datetime.combine(day, time(hh, mm, ss, us), tzinfo=SHANGHAI)


# --- trading days ---------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "trading"),
    [
        (date(2024, 9, 30), True),  # Monday before National Day
        (date(2024, 10, 1), False),  # National Day
        (date(2024, 10, 7), False),  # last day of the holiday (a Monday)
        (date(2024, 10, 8), True),
        (date(2024, 9, 29), False),  # Sunday make-up working day: not a trading day
        (date(2024, 10, 12), False),  # Saturday make-up working day: not a trading day
        (date(2024, 10, 11), True),  # ordinary Friday
        (date(2024, 10, 13), False),  # ordinary Sunday
        (date(2025, 1, 26), False),  # Sunday make-up day before Spring Festival 2025
        (date(2025, 1, 27), True),
        (date(2025, 1, 28), False),  # Spring Festival eve
        (date(2025, 2, 5), True),
        (date(2020, 1, 31), False),  # 2020 Spring Festival closure extended (COVID-19)
        (date(2020, 2, 3), True),
        (date(2026, 2, 13), True),
        (date(2026, 2, 16), False),  # Spring Festival 2026
        (date(2026, 2, 23), False),
        (date(2026, 2, 24), True),
        (date(2026, 10, 7), False),
        (date(2026, 10, 8), True),
    ],
)
def test_is_trading_day(day: date, trading: bool) -> None:
    assert is_trading_day(day) is trading


def test_is_trading_day_refuses_datetime() -> None:
    with pytest.raises(TypeError):
        is_trading_day(at(TUESDAY, 10, 0))


def test_next_and_previous_trading_day_skip_holidays_and_weekends() -> None:
    assert next_trading_day(date(2024, 9, 30)) == date(2024, 10, 8)
    assert previous_trading_day(date(2024, 10, 8)) == date(2024, 9, 30)
    assert next_trading_day(date(2024, 10, 11)) == date(2024, 10, 14)  # Friday -> Monday
    assert previous_trading_day(date(2024, 10, 14)) == date(2024, 10, 11)
    assert next_trading_day(date(2024, 10, 8)) == date(2024, 10, 9)  # strictly after
    assert next_trading_day(date(2024, 12, 31)) == date(2025, 1, 2)


def _brute_force_count(start: date, end: date) -> int:
    days = (end - start).days + 1
    return sum(1 for offset in range(max(days, 0)) if is_trading_day(start + timedelta(days=offset)))


def test_trading_days_between_is_inclusive() -> None:
    assert trading_days_between(TUESDAY, TUESDAY) == 1
    assert trading_days_between(date(2024, 10, 1), date(2024, 10, 1)) == 0
    assert trading_days_between(date(2024, 9, 30), date(2024, 10, 8)) == 2
    assert trading_days_between(date(2024, 10, 8), date(2024, 9, 30)) == 0
    assert trading_days_between(date(2024, 10, 12), date(2024, 10, 13)) == 0


def test_trading_days_between_matches_day_by_day_count() -> None:
    start = date(2019, 1, 1)
    for offset in range(0, 2900, 97):
        first = start + timedelta(days=offset)
        for length in (0, 1, 6, 13, 40, 400):
            last = first + timedelta(days=length)
            assert trading_days_between(first, last) == _brute_force_count(first, last), (first, last)


def test_trading_days_per_year_are_plausible() -> None:
    # SSE trades ~242 days a year; a missing or doubled holiday block shows here.
    for year in range(2019, 2027):
        assert 236 <= trading_days_between(date(year, 1, 1), date(year, 12, 31)) <= 252, year


def test_trading_day_of_uses_shanghai_date() -> None:
    assert trading_day_of(datetime(2024, 10, 7, 16, 30, tzinfo=UTC)) == date(2024, 10, 8)  # 00:30 CST
    assert trading_day_of(datetime(2024, 10, 7, 15, 59, tzinfo=UTC)) == date(2024, 10, 7)  # 23:59 CST
    with pytest.raises(ValueError):
        trading_day_of(at(TUESDAY, 10, 0).replace(tzinfo=None))


# --- sessions ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("hh", "mm", "ss", "phase"),
    [
        (0, 0, 0, Phase.CLOSED),
        (9, 14, 59, Phase.CLOSED),
        (9, 15, 0, Phase.OPENING_CALL),
        (9, 19, 59, Phase.OPENING_CALL),
        (9, 20, 0, Phase.OPENING_CALL_NO_CANCEL),
        (9, 24, 59, Phase.OPENING_CALL_NO_CANCEL),
        (9, 25, 0, Phase.PRE_OPEN_PAUSE),
        (9, 29, 59, Phase.PRE_OPEN_PAUSE),
        (9, 30, 0, Phase.CONTINUOUS),
        (11, 29, 59, Phase.CONTINUOUS),
        (11, 30, 0, Phase.LUNCH_BREAK),
        (12, 59, 59, Phase.LUNCH_BREAK),
        (13, 0, 0, Phase.CONTINUOUS),
        (14, 56, 59, Phase.CONTINUOUS),
        (14, 57, 0, Phase.CLOSING_CALL),
        (14, 59, 59, Phase.CLOSING_CALL),
        (15, 0, 0, Phase.CLOSED),
        (15, 4, 59, Phase.CLOSED),
        (15, 5, 0, Phase.AFTER_HOURS),
        (15, 29, 59, Phase.AFTER_HOURS),
        (15, 30, 0, Phase.CLOSED),
        (23, 59, 59, Phase.CLOSED),
    ],
)
def test_session_phase_boundaries(hh: int, mm: int, ss: int, phase: Phase) -> None:
    assert session_phase(at(TUESDAY, hh, mm, ss)) == phase


def test_session_phase_last_microsecond_before_boundary() -> None:
    assert session_phase(at(TUESDAY, 9, 14, 59, 999_999)) == Phase.CLOSED
    assert session_phase(at(TUESDAY, 14, 56, 59, 999_999)) == Phase.CONTINUOUS


def test_session_phase_converts_other_timezones() -> None:
    assert session_phase(datetime(2024, 10, 8, 1, 30, tzinfo=UTC)) == Phase.CONTINUOUS  # 09:30 CST
    assert session_phase(datetime(2024, 10, 8, 1, 29, 59, tzinfo=UTC)) == Phase.PRE_OPEN_PAUSE


def test_session_phase_closed_on_holidays_and_make_up_days() -> None:
    assert session_phase(at(date(2024, 10, 1), 10, 0)) == Phase.CLOSED
    assert session_phase(at(date(2024, 10, 12), 10, 0)) == Phase.CLOSED  # Saturday make-up day
    assert session_phase(at(date(2024, 10, 13), 10, 0)) == Phase.CLOSED


@pytest.mark.parametrize(
    ("phase", "new_orders", "cancels", "market_orders"),
    [
        (Phase.CLOSED, False, False, False),
        (Phase.OPENING_CALL, True, True, False),
        (Phase.OPENING_CALL_NO_CANCEL, True, False, False),
        (Phase.PRE_OPEN_PAUSE, True, False, False),  # queued until 09:30
        (Phase.CONTINUOUS, True, True, True),
        (Phase.LUNCH_BREAK, False, False, False),
        (Phase.CLOSING_CALL, True, False, False),
        (Phase.AFTER_HOURS, False, False, False),
    ],
)
def test_phase_permissions(phase: Phase, new_orders: bool, cancels: bool, market_orders: bool) -> None:
    assert accepts_new_orders(phase) is new_orders
    assert accepts_cancels(phase) is cancels
    assert accepts_market_orders(phase) is market_orders
    # A phase read back from the database is a plain str.
    assert accepts_new_orders(str(phase.value)) is new_orders


def test_market_close_is_15_shanghai() -> None:
    close = market_close(TUESDAY)
    assert close == datetime(2024, 10, 8, 7, 0, tzinfo=UTC)
    assert close.tzinfo == SHANGHAI
    assert session_phase(close) == Phase.CLOSED
    assert session_phase(close - timedelta(microseconds=1)) == Phase.CLOSING_CALL


# --- the data file ------------------------------------------------------------


def test_shipped_file_rows_are_weekdays_with_names_for_every_year() -> None:
    rows = cal.read_holidays_csv(cal.DEFAULT_HOLIDAYS_PATH)
    assert all(day.weekday() < 5 for day in rows)
    assert all(name for name in rows.values())
    assert cal.coverage() == (date(2019, 1, 1), date(2026, 12, 31))
    for year in range(2019, 2027):
        assert sum(1 for day in rows if day.year == year) >= 9, year
    text = cal.DEFAULT_HOLIDAYS_PATH.read_text(encoding="utf-8").splitlines()
    assert text[0] == "date,name"
    assert text[1:] == sorted(text[1:])


def test_reload_calendar_reads_another_file(tmp_path: Path) -> None:
    path = tmp_path / "holidays.csv"
    cal.write_holidays_csv(path, {date(2024, 10, 9): "test closure"})
    reload_calendar(path)
    assert not is_trading_day(date(2024, 10, 9))
    assert is_trading_day(date(2024, 10, 1))  # not in this file
    reload_calendar()
    assert is_trading_day(date(2024, 10, 9))
    assert not is_trading_day(date(2024, 10, 1))


@pytest.mark.parametrize(
    "body",
    [
        "date,name\n2024-10-12,Saturday\n",  # weekends never belong in the file
        "date,name\n2024-10-01,a\n2024-10-01,b\n",
        "date,name\n2024-13-01,bad\n",
        "date,name\n",
    ],
)
def test_reload_calendar_rejects_bad_files(tmp_path: Path, body: str) -> None:
    path = tmp_path / "holidays.csv"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(ValueError):
        reload_calendar(path)
    assert not is_trading_day(date(2024, 10, 1))  # the previous calendar is kept


def test_dates_after_coverage_fall_back_to_weekdays_and_warn(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="trading.calendar"):
        assert is_trading_day(date(2031, 1, 1))  # a Wednesday, no data
        assert not is_trading_day(date(2031, 1, 4))  # Saturday
    assert "2031" in caplog.text


# --- cross-check against exchange_calendars -----------------------------------


def test_holidays_match_exchange_calendars_xshg_2019_2025() -> None:
    exchange_calendars = pytest.importorskip("exchange_calendars")
    xshg = exchange_calendars.get_calendar("XSHG", start="2019-01-01", end="2025-12-31")
    sessions = {stamp.date() for stamp in xshg.sessions}
    day = date(2019, 1, 1)
    mismatches = []
    while day <= date(2025, 12, 31):
        if is_trading_day(day) != (day in sessions):
            mismatches.append(day)
        day += timedelta(days=1)
    assert mismatches == []


def test_update_calendar_command_check_and_rewrite(tmp_path: Path) -> None:
    pytest.importorskip("exchange_calendars")
    from django.core.management.base import CommandError

    from trading.management.commands.update_calendar import Command

    def run(**options: object) -> str:
        out = io.StringIO()
        command = Command(stdout=out)
        defaults = {"check": False, "first_year": 2019, "last_year": 2025, "path": str(path)}
        command.handle(**{**defaults, **options})
        return out.getvalue()

    path = tmp_path / "holidays.csv"
    shipped = cal.read_holidays_csv(cal.DEFAULT_HOLIDAYS_PATH)
    edited = {day: name for day, name in shipped.items() if day != date(2024, 10, 1)}
    edited[date(2024, 10, 9)] = "bogus"
    cal.write_holidays_csv(path, edited)

    with pytest.raises(CommandError):
        run(check=True)
    assert cal.read_holidays_csv(path) == edited  # --check writes nothing

    output = run()
    assert "+ 2024-10-01" in output and "- 2024-10-09" in output
    rewritten = cal.read_holidays_csv(path)
    assert rewritten == shipped  # 2026 rows outside the range are kept, names preserved
    assert "matches" in run(check=True)
