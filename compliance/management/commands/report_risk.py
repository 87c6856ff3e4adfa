"""Risk control's effectiveness over a date range, as CSV or Excel (compliance/reports.py)."""

import sys
from datetime import date
from pathlib import Path

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
        rows = list(risk_effectiveness(since=since, until=until).rows())
        header, body = rows[0], rows[1:]
        out = options["out"]
        if out.endswith(".xlsx"):
            with Path(out).open("wb") as target:
                exports.xlsx_write(target, header, body, sheet="risk")
        elif out:
            Path(out).write_text("".join(exports.csv_stream(header, body)), encoding="utf-8")
        else:
            sys.stdout.write("".join(exports.csv_stream(header, body)).removeprefix(exports.CSV_BOM))
            return
        self.stdout.write(f"written: {out} ({len(body)} rows)")
