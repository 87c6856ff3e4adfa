"""Enable every registered risk rule with generous parameters, so ordinary orders still pass.

Used by benchmarks (`bench/order_intake.py` with BENCH_RISK_RULES=all) to
measure the cost of a full rule set: `risk_enable_all --account bench`.
"""

from django.core.management.base import BaseCommand, CommandError

from audit.services import Actor
from risk.rules import RULE_CLASSES
from risk.services import risk_rule_set
from risk.verdicts import RiskAction
from trading.errors import TradingError
from trading.models import Account


class Command(BaseCommand):
    help = "Enable every risk rule (generous parameters) for one account, or globally with --global."

    def add_arguments(self, parser):
        parser.add_argument("--account", help="account name (rules scoped to it)")
        parser.add_argument("--global", dest="global_scope", action="store_true", help="enable the rules for every account")
        parser.add_argument("--action", choices=RiskAction.values, default=RiskAction.REJECT, help="action of every rule")

    def handle(self, *args, **options):
        if bool(options["account"]) == bool(options["global_scope"]):
            raise CommandError("give exactly one of --account NAME or --global")
        account = None
        if options["account"]:
            account = Account.objects.filter(name=options["account"]).first()
            if account is None:
                raise CommandError(f"unknown account {options['account']!r}")
        actor = Actor.system("risk_enable_all")
        try:
            for cls in RULE_CLASSES:
                risk_rule_set(code=cls.code, account=account, params=dict(cls.generous_params), action=options["action"],
                              enabled=True, note="risk_enable_all (generous)", actor=actor)
        except TradingError as exc:
            raise CommandError(exc.message) from exc
        scope = account.name if account else "global"
        self.stdout.write(f"enabled {len(RULE_CLASSES)} risk rules for {scope}: {', '.join(c.code for c in RULE_CLASSES)}")
