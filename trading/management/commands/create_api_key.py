from django.core.management.base import BaseCommand, CommandError

from audit.services import Actor
from trading.auth import api_key_create
from trading.errors import TradingError
from trading.suitability import RISK_DISCLOSURE_TEXT


class Command(BaseCommand):
    help = "Create an API key; the key is printed alone on the last line and never shown again."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--accounts", required=True, help="comma-separated account names")
        parser.add_argument("--market-data", action="store_true", help="may publish quotes to the paper market")
        parser.add_argument("--read-only", action="store_true", help="may read but not trade")
        parser.add_argument("--accept-disclosure", metavar="OWNER", default="",
                            help="the key's owner, who has read the risk disclosure this command prints, acknowledges it now "
                                 "(recorded in the audit log); without it the key answers 403 disclosure_required until "
                                 "its owner acknowledges through POST /api/v1/disclosure")

    def handle(self, *args, **options):
        accounts = [a.strip() for a in options["accounts"].split(",") if a.strip()]
        try:
            key, raw = api_key_create(
                name=options["name"], accounts=accounts, can_trade=not options["read_only"], market_data=options["market_data"],
                actor=Actor.command("create_api_key"), disclosure_acknowledged_by=options["accept_disclosure"],
            )
        except TradingError as exc:
            raise CommandError(str(exc)) from exc
        except Exception as exc:  # e.g. a duplicate name
            raise CommandError(f"cannot create key {options['name']!r}: {exc}") from exc
        self.stdout.write(RISK_DISCLOSURE_TEXT)
        if key.disclosure_acknowledged_at:
            self.stdout.write(f"risk disclosure v{key.disclosure_version} acknowledged by {key.disclosure_acknowledged_by}")
        else:
            self.stdout.write("the key answers 403 disclosure_required until its owner acknowledges the disclosure (POST /api/v1/disclosure)")
        rights = "read-only" if options["read_only"] else "trade"
        self.stdout.write(f"API key {key.name} for {', '.join(accounts)} ({rights}{', market data' if key.market_data else ''}); store it now, it is shown once:")
        self.stdout.write(raw)
