"""Add the exchanges' published holidays to trading/data/holidays.csv.

SSE and SZSE publish the next year's closures (from the State Council's holiday notice) late in
the year; ``update_calendar`` needs ``exchange_calendars`` to know them already. This command
takes them as the operator read them::

    manage.py add_holidays --year 2027 2027-01-01:元旦 2027-02-08:春节 2027-02-09:春节 ...

A year not covered yet is the complete list of that year's weekday closures: once a year is in
the file, every weekday of it that is not listed is a trading day, so a year is refused with
fewer than MIN_HOLIDAYS_PER_YEAR dates unless ``--force``. Weekends are refused (never trading
days, listing one hides a typo). Until a year is added, the calendar treats its weekdays as
trading days and says so (a log line, and the ``calendar.horizon`` alert 60 days before).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from trading.calendar import DEFAULT_HOLIDAYS_PATH, read_holidays_csv, reload_calendar, write_holidays_csv
from trading.management.commands.update_calendar import MIN_HOLIDAYS_PER_YEAR, guess_holiday_name


def parse_day(text: str) -> tuple[date, str]:
    day_text, _, name = text.partition(":")
    try:
        day = date.fromisoformat(day_text.strip())
    except ValueError:
        raise CommandError(f"{text!r}: not a date YYYY-MM-DD[:name]") from None
    if day.weekday() >= 5:
        raise CommandError(f"{day} is a weekend: list weekday closures only")
    return day, name.strip() or guess_holiday_name(day)


class Command(BaseCommand):
    help = "Add published SSE/SZSE holidays (weekday closures) to the holidays file."
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("days", nargs="+", help="YYYY-MM-DD or YYYY-MM-DD:name")
        parser.add_argument("--year", type=int, action="append", default=[],
                            help="a year not covered yet whose complete list this is (repeatable)")
        parser.add_argument("--force", action="store_true", help=f"accept a new year with fewer than "
                                                                 f"{MIN_HOLIDAYS_PER_YEAR} closures")
        parser.add_argument("--path", default=str(DEFAULT_HOLIDAYS_PATH))

    def handle(self, *args: Any, **options: Any) -> None:
        path = Path(options["path"])
        current = read_holidays_csv(path)
        covered = {day.year for day in current}
        new = dict(parse_day(text) for text in options["days"])
        for year in sorted({day.year for day in new} - covered):
            if year not in options["year"]:
                raise CommandError(f"{year} is not in the calendar yet: pass --year {year} to say these are all of "
                                   f"its weekday closures (every other weekday of {year} becomes a trading day)")
            count = sum(1 for day in new if day.year == year)
            if count < MIN_HOLIDAYS_PER_YEAR and not options["force"]:
                raise CommandError(f"only {count} closure(s) for {year}; a year has 10 or more (--force to accept)")
        merged = {**current, **new}
        write_holidays_csv(path, merged)
        if path.resolve() == DEFAULT_HOLIDAYS_PATH.resolve():
            reload_calendar()
        for day in sorted(new):
            self.stdout.write(f"{'=' if day in current else '+'} {day} {new[day]}")
        last = max(merged).year
        self.stdout.write(self.style.SUCCESS(
            f"{path}: {len(merged)} holidays, covering up to {last}-12-31; restart the running processes to read it"))
