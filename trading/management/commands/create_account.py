from decimal import Decimal, InvalidOperation

from django.core.management.base import BaseCommand, CommandError

from audit.services import Actor
from brokers.services import account_create
from trading.errors import TradingError
from trading.models import SessionMode
from trading.suitability import ALL_PERMISSIONS, grants_parse


class Command(BaseCommand):
    help = "Create a trading account, e.g. `create_account demo --broker paper --cash 1000000`."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--broker", default="paper", help="broker adapter name (default: paper)")
        parser.add_argument("--cash", default="0", help="starting cash in CNY (paper accounts)")
        parser.add_argument("--sessions", choices=["always", "real"], default="always",
                            help="paper clock: 'always' = continuous trading at any hour (default); 'real' = real calendar and sessions")
        parser.add_argument("--grant", default="", help="trading permissions the broker granted besides the main boards, "
                            "comma-separated: " + ", ".join(ALL_PERMISSIONS) + " (or 'all')")
        parser.add_argument("--owner", default="", help="the investor who owns the account (default: the account name)")

    def handle(self, *args, **options):
        try:
            cash = Decimal(options["cash"])
        except InvalidOperation as exc:
            raise CommandError(f"--cash must be a decimal number; got {options['cash']!r}") from exc
        try:
            account = account_create(
                name=options["name"],
                broker_kind=options["broker"],
                cash=cash,
                session_mode=SessionMode(options["sessions"]),
                permissions=grants_parse(options["grant"]),
                owner=options["owner"],
                actor=Actor.command("create_account"),
            )
        except (TradingError, ValueError) as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"account {account.name}: broker {account.broker_kind}, cash {account.cash} CNY, sessions {account.session_mode}, "
                          f"permissions: main boards{''.join(', ' + code for code in account.trading_permissions)}")
