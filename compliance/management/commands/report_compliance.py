"""The compliance report (abnormal trading, stakes near 5%) as CSV or Excel (compliance/report_compliance.py)."""

from datetime import date

from django.core.management.base import BaseCommand, CommandError

from compliance import exports
from compliance.report_compliance import compliance_report
from trading.i18n import bilingual
from trading.models import Account


class Command(BaseCommand):
    help = ("Abnormal trading per account and trading day (orders plus cancels per second and per day against the "
            "high-frequency line, instant cancels, cancel ratio, fill rate, closing-call orders, self-trade and "
            "restricted-list refusals) and holdings now near the 5% stake line, for --day or --since..--until, "
            "optionally one --account. Writes --output as --format (csv or xlsx), or CSV to standard output.")

    def add_arguments(self, parser):
        parser.add_argument("--day", default="", help="YYYY-MM-DD")
        parser.add_argument("--since", default="", help="YYYY-MM-DD")
        parser.add_argument("--until", default="", help="YYYY-MM-DD (default: --since)")
        parser.add_argument("--account", default="", help="an account's name (default: every account)")
        parser.add_argument("--format", default="csv", choices=["csv", "xlsx"])
        parser.add_argument("--output", default="", help="a file (default: CSV to standard output)")

    def handle(self, *args, **options):
        if bool(options["day"]) == bool(options["since"]):
            raise CommandError(bilingual("give either --day or --since (with --until)"))
        if options["day"] and options["until"]:
            raise CommandError(bilingual("--until goes with --since, not with --day"))
        if options["format"] == "xlsx" and not options["output"]:
            raise CommandError(bilingual("an Excel report needs --output"))
        try:
            since = date.fromisoformat(options["day"] or options["since"])
            until = date.fromisoformat(options["until"]) if options["until"] else since
        except ValueError as exc:
            raise CommandError(bilingual("dates are YYYY-MM-DD: {error}", error=exc)) from None
        if until < since:
            raise CommandError(bilingual("--until is before --since"))
        account = options["account"]
        if account and not Account.objects.filter(name=account).exists():
            raise CommandError(bilingual("no account {name}", name=account))
        count = exports.table_write(compliance_report(since=since, until=until, account=account).rows(),
                                    fmt=options["format"], output=options["output"], sheet="compliance",
                                    stdout=self.stdout)
        if options["output"]:
            self.stdout.write(f"written: {options['output']} ({count} rows)")
