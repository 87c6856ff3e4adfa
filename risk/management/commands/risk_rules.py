"""List and set risk rules from a shell: `risk_rules list`, `risk_rules set CODE ...` (audited)."""

import json

from django.core.management.base import BaseCommand, CommandError

from audit.services import Actor
from risk.rules import RULE_CLASSES
from risk.selectors import risk_rule_list
from risk.services import risk_rule_set
from risk.verdicts import RiskAction
from trading.errors import TradingError
from trading.i18n import bilingual, pbilingual
from trading.models import Account


def _account(name: str | None) -> Account | None:
    if not name:
        return None
    account = Account.objects.filter(name=name).first()
    if account is None:
        raise CommandError(pbilingual("account name", "unknown account {name!r}", name=name))
    return account


class Command(BaseCommand):
    help = "List the risk rules, or create / replace one rule globally or for one account (audited)."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="what", required=True)
        listing = sub.add_parser("list", help="the rule rows (global and per account) and the codes available")
        listing.add_argument("--account", help="only the global rules and those of this account")
        setting = sub.add_parser("set", help="create or replace the row of CODE for --account NAME or --global")
        setting.add_argument("code", help="rule code (see `risk_rules list`)")
        scope = setting.add_mutually_exclusive_group(required=True)
        scope.add_argument("--account", help="the rule applies to this account (replacing the global row for it)")
        scope.add_argument("--global", dest="global_scope", action="store_true", help="the rule applies to every account")
        setting.add_argument("--params", default="{}", help='parameters as JSON, e.g. \'{"max_amount": "500000"}\'')
        setting.add_argument("--action", choices=RiskAction.values, default=RiskAction.REJECT)
        setting.add_argument("--disable", action="store_true", help="store the row disabled (switches a global rule off "
                             "for --account)")
        setting.add_argument("--note", default="", help="why (kept in the audit trail)")

    def handle(self, *args, **options):
        if options["what"] == "list":
            return self._list(_account(options.get("account")))
        try:
            params = json.loads(options["params"])
        except json.JSONDecodeError as exc:
            raise CommandError(bilingual("--params must be a JSON object: {exc}", exc=exc)) from exc
        if not isinstance(params, dict):
            raise CommandError(bilingual("--params must be a JSON object"))
        account = _account(options["account"])
        try:
            rule = risk_rule_set(code=options["code"], account=account, params=params, action=options["action"],
                                 enabled=not options["disable"], note=options["note"], actor=Actor.command("risk_rules"))
        except TradingError as exc:
            raise CommandError(exc.message) from exc
        scope = account.name if account else "global"
        state = "enabled" if rule.enabled else "disabled"
        self.stdout.write(f"{rule.code} [{scope}] {state} {rule.action} {json.dumps(rule.params, ensure_ascii=False)}")

    def _list(self, account: Account | None) -> None:
        rows = risk_rule_list(account=account)
        if not rows:
            self.stdout.write("no risk rules configured")
        for rule in rows:
            scope = rule.account.name if rule.account else "global"
            state = "enabled" if rule.enabled else "disabled"
            note = f"  # {rule.note}" if rule.note else ""
            self.stdout.write(f"{rule.code:28s} {scope:12s} {state:8s} {rule.action:6s} "
                              f"{json.dumps(rule.params, ensure_ascii=False)}{note}")
        self.stdout.write("codes: " + ", ".join(cls.code for cls in RULE_CLASSES))
