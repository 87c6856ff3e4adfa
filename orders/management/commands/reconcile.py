"""Reconcile accounts with their brokers now: ``manage.py reconcile [--account NAME]``."""

from django.core.management.base import BaseCommand, CommandError

from audit.services import Actor
from orders.services import account_reconcile
from trading.errors import BrokerError
from trading.models import Account


class Command(BaseCommand):
    help = ("Compare the broker's orders, trades, positions and cash with ours, resolve UNKNOWN orders and "
            "record every difference as a discrepancy (admin: Orders > Discrepancies). Every active account, "
            "or one with --account. Exits with an error if a broker could not be read.")

    def add_arguments(self, parser):
        parser.add_argument("--account", help="the account's name (default: every active account)")

    def handle(self, *args, **options):
        actor = Actor.command("reconcile")
        name = options.get("account")
        accounts = Account.objects.order_by("pk")
        accounts = accounts.filter(name=name) if name else accounts.filter(status=Account.Status.ACTIVE)
        if name and not accounts.exists():
            raise CommandError(f"unknown account {name!r}")
        failed = []
        for account in accounts:
            try:
                result = account_reconcile(account_id=account.pk, actor=actor)
            except BrokerError as exc:
                self.stderr.write(f"{account.name}: the broker could not be read: {exc.message}")
                failed.append(account.name)
                continue
            self.stdout.write(f"{result.account}: {result.orders_changed} orders brought in line, "
                              f"{result.opened} new discrepancies, {result.seen_again} seen again, "
                              f"{result.closed} closed, {result.open_total} open")
        if failed:
            raise CommandError(f"not reconciled: {', '.join(failed)}")
