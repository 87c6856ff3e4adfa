"""Load an account's opening positions from a CSV file (audited); a paper account's broker books too."""

import csv
import sys

from django.core.management.base import BaseCommand, CommandError

from audit.services import Actor
from brokers.services import opening_positions_load
from trading.errors import InvalidOrder, TradingError
from trading.i18n import bilingual


class Command(BaseCommand):
    help = ("Set the opening positions of ACCOUNT from a CSV file with the header symbol,quantity,avg_cost,acquired "
            "(acquired = YYYY-MM-DD: shares acquired before today are sellable today, today's from tomorrow, T+1). "
            "Symbols in the file replace the account's position in them; cash is not touched. All or nothing.")

    def add_arguments(self, parser):
        parser.add_argument("account")
        parser.add_argument("file", help="the CSV file (- for standard input)")

    def handle(self, *args, **options):
        try:
            if options["file"] == "-":
                rows = list(csv.DictReader(sys.stdin))
            else:
                with open(options["file"], newline="", encoding="utf-8-sig") as handle:
                    rows = list(csv.DictReader(handle))
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            raise CommandError(bilingual("cannot read {file}: {exc}", file=options['file'], exc=exc)) from exc
        try:
            result = opening_positions_load(account_name=options["account"], rows=rows, actor=Actor.command("load_positions"))
        except InvalidOrder as exc:
            raise CommandError("\n".join(p.message for p in exc.problems)) from exc
        except TradingError as exc:
            raise CommandError(exc.message) from exc
        for symbol, quantity, sellable in result.positions:
            self.stdout.write(f"{result.account} {symbol}: {quantity} shares, {sellable} sellable today")
        if result.paper_books:
            self.stdout.write("the paper broker's books hold the same positions")
