"""Create a staff member with a role and an authenticator, or re-enrol a lost authenticator.

    manage.py staff_user create alice --role Operator [--email a@x] [--password-from-env VAR]
    manage.py staff_user totp alice          # new authenticator (the old one stops working)

Prints the password (when generated) and the authenticator's otpauth:// URI
with a QR code to scan; neither is stored in clear.
"""

from __future__ import annotations

import io
import os
import secrets

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from staff.roles import ROLES


class Command(BaseCommand):
    help = "Create a staff member (role + TOTP authenticator) or re-enrol one's authenticator."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="what", required=True)
        create = sub.add_parser("create", help="create a staff member")
        create.add_argument("username")
        create.add_argument("--role", required=True, choices=ROLES)
        create.add_argument("--email", default="")
        create.add_argument("--password-from-env", metavar="VAR", help="read the password from this variable")
        totp = sub.add_parser("totp", help="replace a staff member's authenticator")
        totp.add_argument("username")

    def handle(self, *args, **options):
        if options["what"] == "create":
            self._create(options)
        else:
            self._totp(options["username"])

    @transaction.atomic
    def _create(self, options):
        User = get_user_model()
        username = options["username"]
        if User.objects.filter(username=username).exists():
            raise CommandError(f"user {username!r} exists")
        variable = options.get("password_from_env")
        password = os.environ.get(variable, "") if variable else secrets.token_urlsafe(15)
        if not password:
            raise CommandError(f"${variable} is empty")
        user = User.objects.create_user(username, options["email"], password, is_staff=True)
        user.groups.add(Group.objects.get(name=options["role"]))
        self.stdout.write(f"user:     {username} ({options['role']})")
        if not variable:
            self.stdout.write(f"password: {password}")
        self._enrol(user)

    @transaction.atomic
    def _totp(self, username):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"no user {username!r}")
        self._enrol(user)

    def _enrol(self, user):
        from django_otp.plugins.otp_totp.models import TOTPDevice

        TOTPDevice.objects.filter(user=user).delete()
        device = TOTPDevice.objects.create(user=user, name="authenticator", confirmed=True)
        self.stdout.write("scan with an authenticator app (or enter the URI):")
        self.stdout.write(device.config_url)
        try:
            import segno
        except ImportError:
            return
        buffer = io.StringIO()
        segno.make(device.config_url).terminal(out=buffer, compact=True)
        self.stdout.write(buffer.getvalue(), ending="")
