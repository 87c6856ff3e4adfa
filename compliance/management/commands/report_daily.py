"""The daily trading report of one trading day, as CSV or Excel (compliance/trading_reports.py)."""

from django.core.management.base import BaseCommand, CommandError

from compliance import exports
from compliance.trading_reports import daily_trading
from trading.i18n import bilingual
from trading.models import Account

from ._dates import parse_day


class Command(BaseCommand):
    help = ("The trading of one day per account and strategy: orders by status, fills, turnover, fees, realised and "
            "unrealised P&L, slippage against the price at submission, with totals (docs/compliance-reports.md). "
            "Writes --output as --format, or CSV to standard output.")

    def add_arguments(self, parser):
        parser.add_argument("--day", required=True, help="YYYY-MM-DD (a trading day)")
        parser.add_argument("--account", default="", help="one account's name (default: all)")
        parser.add_argument("--format", default="csv", choices=["csv", "xlsx"])
        parser.add_argument("--output", default="", help="the file to write (CSV goes to standard output without it)")

    def handle(self, *args, **options):
        day = parse_day(options["day"], "--day")
        if options["account"] and not Account.objects.filter(name=options["account"]).exists():
            raise CommandError(bilingual("--account: no account named {name}", name=options["account"]))
        if options["format"] == "xlsx" and not options["output"]:
            raise CommandError(bilingual("--output: an Excel report needs a file"))
        report = daily_trading(day=day, account=options["account"])
        count = exports.table_write(report.table(), fmt=options["format"], output=options["output"], sheet="daily",
                                    stdout=self.stdout)
        if options["output"]:
            self.stdout.write(f"written: {options['output']} ({count} rows)")
