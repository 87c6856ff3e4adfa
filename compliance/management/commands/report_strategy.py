"""Strategy effectiveness over a date range, as CSV or Excel (compliance/trading_reports.py)."""

from django.core.management.base import BaseCommand, CommandError

from compliance.trading_reports import strategy_effectiveness
from trading.i18n import bilingual

from ._options import add_output_arguments, check_output, parse_day, write_table


class Command(BaseCommand):
    help = ("Per strategy and trading day of --since..--until: orders, fill rate, turnover, fees, realised P&L, win rate "
            "of closed round trips, average slippage, cumulative P&L and its drawdown, with each strategy's totals "
            "(docs/compliance-reports.md). Writes --output as --format, or CSV to standard output.")

    def add_arguments(self, parser):
        parser.add_argument("--since", required=True, help="YYYY-MM-DD")
        parser.add_argument("--until", default="", help="YYYY-MM-DD (default: --since)")
        add_output_arguments(parser)

    def handle(self, *args, **options):
        since = parse_day(options["since"], "--since")
        until = parse_day(options["until"], "--until") if options["until"] else since
        if until < since:
            raise CommandError(bilingual("--until: must not be before --since"))
        check_output(options)
        report = strategy_effectiveness(since=since, until=until, account=options["account"])
        write_table(self, report.table(), options, sheet="strategies")
