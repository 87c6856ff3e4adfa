"""Risk control's effectiveness over a date range, as CSV or Excel (compliance/reports.py)."""

from datetime import date

from django.core.management.base import BaseCommand, CommandError

from compliance import exports
from compliance.reports import risk_effectiveness


class Command(BaseCommand):
    help = ("Risk effectiveness for the trading days --since..--until: failures per rule and action, orders held and "
            "refused, approvals, rejections and overrides per operator, and what became of the overridden orders. "
            "Writes --out (.csv or .xlsx), or CSV to standard output.")

    def add_arguments(self, parser):
        parser.add_argument("--since", required=True, help="YYYY-MM-DD")
        parser.add_argument("--until", default="", help="YYYY-MM-DD (default: --since)")
        parser.add_argument("--out", default="", help="a .csv or .xlsx file")

    def handle(self, *args, **options):
        try:
            since = date.fromisoformat(options["since"])
            until = date.fromisoformat(options["until"]) if options["until"] else since
        except ValueError as exc:
            raise CommandError(f"日期格式应为 YYYY-MM-DD (dates are YYYY-MM-DD): {exc}") from None
        out = options["out"]
        count = exports.table_write(risk_effectiveness(since=since, until=until).rows(), fmt="xlsx" if out.endswith(".xlsx") else "csv",
                                    output=out, sheet="risk", stdout=self.stdout)
        if out:
            self.stdout.write(f"written: {out} ({count} rows)")
