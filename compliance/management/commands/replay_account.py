"""Rebuild an account's cash, positions and open orders at a past moment from the records, or check
the present reconstruction against the stored state."""

from django.core.management.base import BaseCommand, CommandError

from compliance.replay import account_replay, account_replay_check
from compliance.selectors import parse_moment
from trading.errors import InvalidOrder
from trading.models import Account


class Command(BaseCommand):
    help = ("Replay ACCOUNT's cash ledger, fills, opening positions and order status events up to --at (Shanghai time "
            "unless an offset is given; default: now) and print its cash, positions and open orders then. --check: "
            "compare the replay to the present with the stored state; exit status 1 on any difference.")

    def add_arguments(self, parser):
        parser.add_argument("account")
        parser.add_argument("--at", default="", help="YYYY-MM-DD HH:MM[:SS] (a bare date: its start)")
        parser.add_argument("--check", action="store_true", help="compare with the stored state now")

    def handle(self, *args, **options):
        name = options["account"]
        if not Account.objects.filter(name=name).exists():
            raise CommandError(f"账户不存在 / no account {name!r}")
        if options["check"]:
            state, differences = account_replay_check(account_name=name)
        else:
            try:
                at = parse_moment(options["at"], name="at")
            except InvalidOrder as exc:
                raise CommandError(str(exc)) from None
            state, differences = account_replay(account=Account.objects.get(name=name), at=at), None
        moment = state.at.isoformat() if state.at else "now"
        self.stdout.write(f"{state.account} at {moment}: cash {state.cash} frozen {state.frozen} available {state.available}")
        for position in sorted(state.positions.values(), key=lambda p: p.symbol):
            if position.empty:
                continue
            unsettled = f" unsettled {position.unsettled_quantity} ({position.unsettled_day})" if position.unsettled_quantity else ""
            self.stdout.write(f"  position {position.symbol}: {position.quantity} frozen {position.frozen_quantity}{unsettled} "
                              f"cost {position.cost_amount} realized {position.realized_pnl}")
        for order in state.open_orders.values():
            self.stdout.write(f"  order #{order.id} {order.client_order_id} {order.side} {order.quantity} {order.symbol} "
                              f"{order.status} filled {order.filled_quantity} frozen {order.frozen_amount}/{order.frozen_quantity}")
        if differences is None:
            return
        if differences:
            for difference in differences:
                self.stdout.write(f"  DIFFERENCE {difference}")
            raise CommandError(f"回放与当前状态不一致 / replay differs from the stored state: {len(differences)} difference(s)")
        self.stdout.write("回放与当前状态一致 / replay matches the stored state")
