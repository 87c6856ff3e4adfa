"""Rewrite trading/data/holidays.csv from the ``exchange_calendars`` XSHG calendar.

``manage.py update_calendar`` replaces the rows of the chosen years (other
years are kept) and reloads the calendar; ``--check`` only reports the
differences and exits non-zero when there are any.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from trading.calendar import (
    DEFAULT_HOLIDAYS_PATH,
    SHANGHAI,
    read_holidays_csv,
    reload_calendar,
    write_holidays_csv,
)
from trading.clock import now

# A real year has 10+ weekday closures; fewer means exchange_calendars does
# not know that year yet and would silently turn holidays into trading days.
MIN_HOLIDAYS_PER_YEAR = 5


def guess_holiday_name(day: date) -> str:
    """A best-effort festival name for a new row (existing names are kept)."""
    month, dom = day.month, day.day
    if month == 1 and dom <= 3:
        return "元旦 New Year's Day"
    if month in (1, 2):
        return "春节 Spring Festival"
    if month == 4:
        return "清明节 Qingming Festival"
    if month == 5 and dom <= 5:
        return "劳动节 Labour Day"
    if month in (5, 6):
        return "端午节 Dragon Boat Festival"
    if month == 9:
        return "中秋节 Mid-Autumn Festival"
    if month == 10:
        return "国庆节 National Day"
    return "休市 Exchange holiday"


def xshg_holidays(first_year: int, last_year: int) -> set[date]:
    """Weekdays that XSHG does not trade in [first_year, last_year], per exchange_calendars."""
    try:
        import exchange_calendars
    except ImportError as exc:
        raise CommandError("exchange_calendars is not installed: `pip install exchange-calendars` first") from exc
    import pandas

    start, end = date(first_year, 1, 1), date(last_year, 12, 31)
    try:
        calendar = exchange_calendars.get_calendar("XSHG", start=start.isoformat(), end=end.isoformat())
    except Exception as exc:  # its bound errors name the years it knows
        raise CommandError(f"exchange_calendars cannot give XSHG {first_year}-{last_year}: {exc}") from exc
    sessions = {stamp.date() for stamp in calendar.sessions}
    weekdays = {stamp.date() for stamp in pandas.bdate_range(start, end)}
    found = weekdays - sessions
    for year in range(first_year, last_year + 1):
        if sum(1 for day in found if day.year == year) < MIN_HOLIDAYS_PER_YEAR:
            raise CommandError(f"exchange_calendars lists almost no XSHG holidays for {year}: not published yet?")
    return found


class Command(BaseCommand):
    help = "Rewrite the holidays file from exchange_calendars XSHG (--check: report differences only)."
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--check", action="store_true", help="report differences, write nothing")
        parser.add_argument("--first-year", type=int, default=2019)
        parser.add_argument("--last-year", type=int, default=None, help="default: the current year in Asia/Shanghai")
        parser.add_argument("--path", default=str(DEFAULT_HOLIDAYS_PATH), help="holidays file")

    def handle(self, *args: Any, **options: Any) -> None:
        path = Path(options["path"])
        first_year: int = options["first_year"]
        last_year: int = options["last_year"] or now().astimezone(SHANGHAI).year
        if last_year < first_year:
            raise CommandError("--last-year is before --first-year")
        fetched = xshg_holidays(first_year, last_year)
        current = read_holidays_csv(path) if path.exists() else {}
        in_range = {day for day in current if first_year <= day.year <= last_year}
        added, removed = sorted(fetched - in_range), sorted(in_range - fetched)

        for day in added:
            self.stdout.write(f"+ {day} (closed per exchange_calendars, missing from {path.name})")
        for day in removed:
            self.stdout.write(f"- {day} {current[day]} (trading day per exchange_calendars)")
        if options["check"]:
            if added or removed:
                raise CommandError(f"{len(added) + len(removed)} difference(s) in {first_year}-{last_year}")
            self.stdout.write(f"{path.name} matches exchange_calendars XSHG for {first_year}-{last_year}")
            return

        merged = {day: name for day, name in current.items() if day not in in_range}
        merged.update({day: current.get(day) or guess_holiday_name(day) for day in fetched})
        write_holidays_csv(path, merged)
        if path.resolve() == DEFAULT_HOLIDAYS_PATH.resolve():
            reload_calendar()
        self.stdout.write(self.style.SUCCESS(f"wrote {len(merged)} holidays to {path} (+{len(added)} -{len(removed)})"))
