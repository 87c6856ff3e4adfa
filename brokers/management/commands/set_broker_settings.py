"""Set an account's broker settings from a JSON file (or stdin), audited without the values."""

import json
import sys

from django.core.management.base import BaseCommand, CommandError

from audit.services import Actor
from brokers.services import account_broker_settings_set
from trading.errors import TradingError
from trading.models import Account


class Command(BaseCommand):
    help = ("Replace an account's broker settings with a JSON object read from FILE ('-' = stdin), e.g. "
            "`set_broker_settings ht-1 settings.json --kind gateway`. The audit log records which settings "
            "changed, never their values.")

    def add_arguments(self, parser):
        parser.add_argument("account")
        parser.add_argument("file", help="a JSON object; '-' reads standard input")
        parser.add_argument("--kind", default=None, help="change the broker adapter too")
        parser.add_argument("--reason", default="", help="written to the audit log")

    def handle(self, *args, **options):
        account = Account.objects.filter(name=options["account"]).only("pk").first()
        if account is None:
            raise CommandError(f"no account {options['account']!r}")
        try:
            text = sys.stdin.read() if options["file"] == "-" else open(options["file"], encoding="utf-8").read()
            settings = json.loads(text)
        except (OSError, ValueError) as exc:
            raise CommandError(f"cannot read the settings: {exc}") from exc
        if not isinstance(settings, dict):
            raise CommandError("the settings must be a JSON object")
        try:
            saved = account_broker_settings_set(account_id=account.pk, settings=settings, broker_kind=options["kind"],
                                                actor=Actor.command("set_broker_settings"), reason=options["reason"])
        except (TradingError, ValueError, LookupError) as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"account {saved.name}: broker {saved.broker_kind}, settings {', '.join(sorted(settings)) or '(none)'}")
