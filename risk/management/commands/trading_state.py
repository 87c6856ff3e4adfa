"""Switch trading states from a shell: halt / reduce / resume, per account or global (audited)."""

from django.core.management.base import BaseCommand, CommandError

from audit.services import Actor
from orders.kill_switch import trading_state_switch
from risk.selectors import trading_states
from trading.errors import TradingError
from trading.i18n import bilingual
from trading.models import Account, TradingState

STATES = {"halt": TradingState.HALTED, "reduce": TradingState.REDUCING, "resume": TradingState.ACTIVE}


class Command(BaseCommand):
    help = ("Show the trading states, or switch one account (--account) or every account (--global) to "
            "halt (nothing new passes), reduce (only orders that reduce a position) or resume (normal trading).")

    def add_arguments(self, parser):
        parser.add_argument("state", choices=[*STATES, "show"])
        scope = parser.add_mutually_exclusive_group()
        scope.add_argument("--account", help="the account to switch")
        scope.add_argument("--global", dest="global_scope", action="store_true", help="the global state (every account)")
        parser.add_argument("--reason", default="", help="why (required to switch; kept in the audit trail)")
        parser.add_argument("--cancel-open-orders", action="store_true",
                            help="also cancel the open orders of the account (or of every account with --global)")

    def handle(self, *args, **options):
        if options["state"] == "show":
            control, accounts = trading_states()
            self.stdout.write(f"global: {control.trading_state if control else TradingState.ACTIVE}"
                              + (f"  ({control.trading_state_reason})" if control and control.trading_state_reason else ""))
            for account in accounts:
                self.stdout.write(f"{account.name}: {account.trading_state}  ({account.trading_state_reason})")
            return
        if not options["account"] and not options["global_scope"]:
            raise CommandError("give --account NAME or --global")
        account = None
        if options["account"]:
            account = Account.objects.filter(name=options["account"]).first()
            if account is None:
                raise CommandError(bilingual("unknown account {account!r}", account=options['account']))
        state = STATES[options["state"]]
        try:
            before = trading_state_switch(account=account, state=state, reason=options["reason"],
                                          actor=Actor.command("trading_state"),
                                          cancel_open_orders=options["cancel_open_orders"])
        except TradingError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(f"{account.name if account else 'global'}: {before} -> {state}")
