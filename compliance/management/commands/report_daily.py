"""The daily trading report of one trading day, as CSV or Excel (compliance/trading_reports.py)."""

from django.core.management.base import BaseCommand, CommandError

from compliance.trading_reports import daily_trading
from trading.i18n import bilingual
from trading.models import Account

from ._options import add_output_arguments, check_output, parse_day, write_table


class Command(BaseCommand):
    help = ("The trading of one day per account and strategy: orders by status, fills, turnover, fees, realised and "
            "unrealised P&L, slippage against the price at submission, with totals (docs/compliance-reports.md). "
            "Writes --output as --format, or CSV to standard output.")

    def add_arguments(self, parser):
        parser.add_argument("--day", required=True, help="YYYY-MM-DD (a trading day)")
        add_output_arguments(parser)

    def handle(self, *args, **options):
        day = parse_day(options["day"], "--day")
        if options["account"] and not Account.objects.filter(name=options["account"]).exists():
            raise CommandError(bilingual("--account: no account named {name}", name=options["account"]))
        check_output(options)
        write_table(self, daily_trading(day=day, account=options["account"]).table(), options, sheet="daily")
