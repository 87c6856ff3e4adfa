"""SSE/SZSE trading calendar and trading sessions (Asia/Shanghai).

Trading days are weekdays minus the exchange holidays listed in
``trading/data/holidays.csv`` (one row per holiday that falls on a weekday).
Make-up working weekends (调休) are never trading days, so the file only has
to list weekday closures. The file is read lazily once; ``reload_calendar``
re-reads it (the ``update_calendar`` management command rewrites it from
``exchange_calendars``).

Dates outside the years covered by the file are treated as plain weekdays:
an outdated file must not stop order entry, but it is logged once so an
operator updates it before the next Spring Festival.

Pure module: no model imports, importable without Django being set up.
"""

from __future__ import annotations

import bisect
import csv
import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from django.db.models import TextChoices

logger = logging.getLogger(__name__)

SHANGHAI = ZoneInfo("Asia/Shanghai")
DEFAULT_HOLIDAYS_PATH = Path(__file__).resolve().parent / "data" / "holidays.csv"
HOLIDAYS_CSV_FIELDS = ("date", "name")


class Phase(TextChoices):
    CLOSED = "CLOSED", "休市"
    OPENING_CALL = "OPENING_CALL", "开盘集合竞价"
    OPENING_CALL_NO_CANCEL = "OPENING_CALL_NO_CANCEL", "开盘集合竞价（不可撤单）"
    PRE_OPEN_PAUSE = "PRE_OPEN_PAUSE", "开盘前暂停"
    CONTINUOUS = "CONTINUOUS", "连续竞价"
    LUNCH_BREAK = "LUNCH_BREAK", "午间休市"
    CLOSING_CALL = "CLOSING_CALL", "收盘集合竞价"
    AFTER_HOURS = "AFTER_HOURS", "盘后固定价格交易"


# Session table of a trading day: (start inclusive, phase), in order. Each
# phase lasts until the next row's start; before the first row it is CLOSED.
SESSIONS: tuple[tuple[time, Phase], ...] = (
    (time(9, 15), Phase.OPENING_CALL),
    (time(9, 20), Phase.OPENING_CALL_NO_CANCEL),
    (time(9, 25), Phase.PRE_OPEN_PAUSE),
    (time(9, 30), Phase.CONTINUOUS),
    (time(11, 30), Phase.LUNCH_BREAK),
    (time(13, 0), Phase.CONTINUOUS),
    (time(14, 57), Phase.CLOSING_CALL),
    (time(15, 0), Phase.CLOSED),
    # After-hours fixed-price trading (STAR, ChiNext) matches 15:05-15:30.
    (time(15, 5), Phase.AFTER_HOURS),
    (time(15, 30), Phase.CLOSED),
)
_SESSION_STARTS = [start for start, _ in SESSIONS]
MARKET_CLOSE = time(15, 0)

# New orders in the 09:25-09:30 pause are accepted and queued for 09:30.
# After-hours fixed-price orders are a separate order type this back office
# does not offer, so AFTER_HOURS accepts nothing.
# Sets of plain values, so a phase read back from the database as str matches.
_NEW_ORDER_PHASES = frozenset(
    phase.value
    for phase in (
        Phase.OPENING_CALL,
        Phase.OPENING_CALL_NO_CANCEL,
        Phase.PRE_OPEN_PAUSE,
        Phase.CONTINUOUS,
        Phase.CLOSING_CALL,
    )
)
_CANCEL_PHASES = frozenset({Phase.OPENING_CALL.value, Phase.CONTINUOUS.value})
_MARKET_ORDER_PHASES = frozenset({Phase.CONTINUOUS.value})


@dataclass(frozen=True)
class _Calendar:
    names: dict[date, str]
    sorted_holidays: list[date]
    first_year: int
    last_year: int


_lock = threading.Lock()
_loaded: _Calendar | None = None
_path: Path = DEFAULT_HOLIDAYS_PATH
_warned_years: set[int] = set()


def read_holidays_csv(path: Path | str) -> dict[date, str]:
    """Read a holidays file (columns ``date,name``) into ``{date: name}``.

    Raises ValueError on a malformed row, a duplicate, or a weekend date (a
    weekend is never a trading day, so listing one hides a data error).
    """
    result: dict[date, str] = {}
    with open(path, newline="", encoding="utf-8") as handle:
        for line_number, row in enumerate(csv.DictReader(handle), start=2):
            try:
                day = date.fromisoformat((row.get("date") or "").strip())
            except ValueError as exc:
                raise ValueError(f"{path}:{line_number}: bad date {row.get('date')!r}") from exc
            if day.weekday() >= 5:
                raise ValueError(f"{path}:{line_number}: {day} is a weekend, list weekday holidays only")
            if day in result:
                raise ValueError(f"{path}:{line_number}: duplicate date {day}")
            result[day] = (row.get("name") or "").strip()
    return result


def write_holidays_csv(path: Path | str, holidays: Mapping[date, str]) -> None:
    """Write ``{date: name}`` as a holidays file, sorted by date."""
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(HOLIDAYS_CSV_FIELDS)
        for day in sorted(holidays):
            writer.writerow([day.isoformat(), holidays[day]])


def _load(path: Path) -> _Calendar:
    names = read_holidays_csv(path)
    if not names:
        raise ValueError(f"{path}: no holidays listed")
    ordered = sorted(names)
    return _Calendar(names, ordered, ordered[0].year, ordered[-1].year)


def _calendar() -> _Calendar:
    global _loaded
    loaded = _loaded
    if loaded is None:
        with _lock:
            if _loaded is None:
                _loaded = _load(_path)
            loaded = _loaded
    return loaded


def reload_calendar(path: Path | str | None = None) -> None:
    """Re-read the holidays file now: ``path``, or the shipped file when None.

    Loads eagerly so a broken file fails here, not on the next order.
    """
    global _loaded, _path
    new_path = Path(path) if path is not None else DEFAULT_HOLIDAYS_PATH
    calendar = _load(new_path)
    with _lock:
        _path, _loaded = new_path, calendar
        _warned_years.clear()


def holidays(start: date | None = None, end: date | None = None) -> dict[date, str]:
    """Weekday exchange holidays (``{date: name}``) within [start, end], both optional."""
    calendar = _calendar()
    return {
        day: name
        for day, name in calendar.names.items()
        if (start is None or day >= start) and (end is None or day <= end)
    }


def coverage() -> tuple[date, date]:
    """First and last date the holidays file is authoritative for (whole years)."""
    calendar = _calendar()
    return date(calendar.first_year, 1, 1), date(calendar.last_year, 12, 31)


def _check_date(day: date) -> None:
    # datetime is a subclass of date; a datetime would never match a holiday.
    if isinstance(day, datetime):
        raise TypeError("pass a date; use trading_day_of() for a datetime")


def _warn_if_uncovered(calendar: _Calendar, day: date) -> None:
    # Only the future matters: past dates before the file are reference
    # lookups (listing dates), where a weekday approximation is harmless.
    if day.year > calendar.last_year and day.year not in _warned_years:
        _warned_years.add(day.year)
        logger.warning(
            "Trading calendar has no holidays for %s: treating all weekdays as trading days; "
            "run `manage.py update_calendar`.",
            day.year,
        )


def is_trading_day(d: date) -> bool:
    """True when SSE/SZSE trade on date ``d`` (a weekday that is not a holiday)."""
    _check_date(d)
    if d.weekday() >= 5:
        return False
    calendar = _calendar()
    _warn_if_uncovered(calendar, d)
    return d not in calendar.names


def next_trading_day(d: date) -> date:
    """The first trading day strictly after ``d``."""
    _check_date(d)
    day = d + timedelta(days=1)
    while not is_trading_day(day):
        day += timedelta(days=1)
    return day


def previous_trading_day(d: date) -> date:
    """The last trading day strictly before ``d``."""
    _check_date(d)
    day = d - timedelta(days=1)
    while not is_trading_day(day):
        day -= timedelta(days=1)
    return day


def _weekdays_between(start: date, end: date) -> int:
    days = (end - start).days + 1
    full_weeks, rest = divmod(days, 7)
    first = start.weekday()
    return full_weeks * 5 + sum(1 for offset in range(rest) if (first + offset) % 7 < 5)


def trading_days_between(start: date, end: date) -> int:
    """Number of trading days ``d`` with ``start <= d <= end`` (both inclusive).

    0 when ``end < start``. A listing day counts as trading day 1, so the
    "first 5 trading days" are those with ``trading_days_between(listing, d) <= 5``.
    """
    _check_date(start)
    _check_date(end)
    if end < start:
        return 0
    calendar = _calendar()
    _warn_if_uncovered(calendar, end)
    ordered = calendar.sorted_holidays
    # Holidays in the file are all weekdays, so they subtract one-for-one.
    closed = bisect.bisect_right(ordered, end) - bisect.bisect_left(ordered, start)
    return _weekdays_between(start, end) - closed


def trading_day_of(dt: datetime) -> date:
    """The Asia/Shanghai calendar date of an aware datetime (whether or not it trades)."""
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError("trading_day_of() needs an aware datetime")
    return dt.astimezone(SHANGHAI).date()


def session_phase(dt: datetime) -> Phase:
    """The market phase at aware datetime ``dt``; CLOSED on non-trading days.

    Boundaries belong to the phase that starts there: 09:15:00 is the
    opening call, 14:57:00 the closing call, 15:00:00 closed.
    """
    day = trading_day_of(dt)
    if not is_trading_day(day):
        return Phase.CLOSED
    local_time = dt.astimezone(SHANGHAI).time().replace(tzinfo=None)
    index = bisect.bisect_right(_SESSION_STARTS, local_time) - 1
    return Phase.CLOSED if index < 0 else SESSIONS[index][1]


def phase_window(day: date, phase: Phase) -> tuple[datetime, datetime]:
    """The first stretch of ``phase`` on ``day`` as aware [start, end) datetimes in Shanghai, from
    the session table (the closing call: 14:57:00 to 15:00:00)."""
    for index, (start, row_phase) in enumerate(SESSIONS):
        if row_phase == phase:
            end = SESSIONS[index + 1][0] if index + 1 < len(SESSIONS) else time(23, 59, 59)
            return datetime.combine(day, start, SHANGHAI), datetime.combine(day, end, SHANGHAI)
    raise ValueError(f"no session of phase {phase}")


def accepts_new_orders(phase: str) -> bool:
    """Whether new orders are accepted in ``phase`` (the pre-open pause queues them)."""
    return phase in _NEW_ORDER_PHASES


def accepts_cancels(phase: str) -> bool:
    """Whether cancels are accepted in ``phase`` (not 09:20-09:30 nor the closing call)."""
    return phase in _CANCEL_PHASES


def accepts_market_orders(phase: str) -> bool:
    """Whether market orders are accepted in ``phase`` (continuous trading only)."""
    return phase in _MARKET_ORDER_PHASES


def market_close(d: date) -> datetime:
    """15:00 Asia/Shanghai on ``d``: unfilled day orders expire after it."""
    _check_date(d)
    return datetime.combine(d, MARKET_CLOSE, tzinfo=SHANGHAI)
