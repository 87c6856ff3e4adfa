"""Prepare the demo: an admin user, the paper account `demo` and a fresh API key."""

import os
import secrets
from decimal import Decimal
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from audit.services import Actor
from brokers.services import account_create
from trading.auth import api_key_create
from trading.models import Account, ApiKey
from trading.suitability import ALL_PERMISSIONS, RISK_DISCLOSURE_TEXT, RISK_DISCLOSURE_VERSION, grants_parse


def demo_files_dir() -> Path:
    """Where the demo's password and API key are written (``var/``; DEMO_FILES_DIR for tests)."""
    return Path(os.environ.get("DEMO_FILES_DIR") or Path(settings.BASE_DIR) / "var")


class Command(BaseCommand):
    help = "Create (once) the demo admin and paper account `demo`, and issue new demo API keys."

    def add_arguments(self, parser):
        parser.add_argument("--grant", default="", help="trading permissions of a new demo account besides the main boards, "
                            "comma-separated: " + ", ".join(ALL_PERMISSIONS) + " (or 'all')")

    def handle(self, *args, **options):
        actor = Actor.command("demo_setup")
        User = get_user_model()
        credentials = demo_files_dir() / "demo_credentials.txt"
        credentials.parent.mkdir(parents=True, exist_ok=True)
        password = credentials.read_text().strip() if credentials.exists() else secrets.token_urlsafe(12)
        admin = User.objects.filter(username="admin").first()
        if admin is None:
            User.objects.create_superuser("admin", "admin@example.invalid", password)
            credentials.write_text(password)
        if not Account.objects.filter(name="demo").exists():
            account_create(name="demo", broker_kind="paper", cash=Decimal("1000000"), display_name="演示模拟账户",
                           permissions=grants_parse(options["grant"]), actor=actor)
        # Keys are shown once: each run revokes the previous demo keys and prints new ones.
        ApiKey.objects.filter(name__in=["demo-strategy", "demo-market"]).delete()
        # The person running the demo set-up is the keys' owner: running it acknowledges the risk
        # disclosure for them (printed below, recorded in the audit log), so the keys work at once.
        acknowledged = f"demo_setup ({actor.name})"
        _, strategy_key = api_key_create(name="demo-strategy", accounts=["demo"], actor=actor, disclosure_acknowledged_by=acknowledged)
        _, market_key = api_key_create(name="demo-market", accounts=["demo"], can_trade=False, market_data=True, actor=actor,
                                       disclosure_acknowledged_by=acknowledged)
        (credentials.parent / "demo_api_key.txt").write_text(strategy_key + "\n")
        self.stdout.write(RISK_DISCLOSURE_TEXT)
        self.stdout.write(f"(risk disclosure v{RISK_DISCLOSURE_VERSION} acknowledged for the demo keys)")
        self.stdout.write("admin user:      admin")
        self.stdout.write(f"admin password:  {password if credentials.exists() else '(set before; unchanged)'}")
        self.stdout.write("paper account:   demo (1,000,000 CNY)")
        self.stdout.write(f"strategy key:    {strategy_key}")
        self.stdout.write(f"market-data key: {market_key}")
