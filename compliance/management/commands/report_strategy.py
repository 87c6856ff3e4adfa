"""Strategy effectiveness over a date range, as CSV or Excel (compliance/trading_reports.py)."""

from django.core.management.base import BaseCommand, CommandError

from compliance import exports
from compliance.trading_reports import strategy_effectiveness
from trading.i18n import bilingual

from ._dates import parse_day


class Command(BaseCommand):
    help = ("Per strategy and trading day of --since..--until: orders, fill rate, turnover, fees, realised P&L, win rate "
            "of closed round trips, average slippage, cumulative P&L and its drawdown, with each strategy's totals "
            "(docs/compliance-reports.md). Writes --output as --format, or CSV to standard output.")

    def add_arguments(self, parser):
        parser.add_argument("--since", required=True, help="YYYY-MM-DD")
        parser.add_argument("--until", default="", help="YYYY-MM-DD (default: --since)")
        parser.add_argument("--account", default="", help="one account's name (default: all)")
        parser.add_argument("--format", default="csv", choices=["csv", "xlsx"])
        parser.add_argument("--output", default="", help="the file to write (CSV goes to standard output without it)")

    def handle(self, *args, **options):
        since = parse_day(options["since"], "--since")
        until = parse_day(options["until"], "--until") if options["until"] else since
        if until < since:
            raise CommandError(bilingual("--until: must not be before --since"))
        if options["format"] == "xlsx" and not options["output"]:
            raise CommandError(bilingual("--output: an Excel report needs a file"))
        report = strategy_effectiveness(since=since, until=until, account=options["account"])
        count = exports.table_write(report.table(), fmt=options["format"], output=options["output"], sheet="strategies",
                                    stdout=self.stdout)
        if options["output"]:
            self.stdout.write(f"written: {options['output']} ({count} rows)")
