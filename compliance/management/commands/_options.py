"""What the report commands (report_daily, report_strategy) share: reading a date, writing the table."""

from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from compliance import exports
from trading.i18n import bilingual


def parse_day(text: str, option: str) -> date:
    """``text`` as a date, or a CommandError naming ``option`` and the form it wants."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise CommandError(bilingual("{option}: dates are YYYY-MM-DD, not {text}", option=option, text=text)) from None


def add_output_arguments(parser: Any) -> None:
    parser.add_argument("--account", default="", help="one account's name (default: all)")
    parser.add_argument("--format", default="csv", choices=["csv", "xlsx"])
    parser.add_argument("--output", default="", help="the file to write (CSV goes to standard output without it)")


def check_output(options: dict[str, Any]) -> None:
    """Refuse, before any work, an Excel report without a file."""
    if options["format"] == "xlsx" and not options["output"]:
        raise CommandError(bilingual("--output: an Excel report needs a file"))


def write_table(command: BaseCommand, table: Iterable[Sequence[Any]], options: dict[str, Any], *, sheet: str) -> None:
    """Write ``table`` as the options say and tell where it went."""
    count = exports.table_write(table, fmt=options["format"], output=options["output"], sheet=sheet, stdout=command.stdout)
    if options["output"]:
        command.stdout.write(f"written: {options['output']} ({count} rows)")
