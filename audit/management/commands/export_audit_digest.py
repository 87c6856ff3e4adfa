"""Export today's audit chain head to the digest file (and mail it to compliance if configured)."""

from pathlib import Path

from django.core.management.base import BaseCommand

from audit.sealing import audit_digest_export, audit_seal


class Command(BaseCommand):
    help = ("Append the audit chain's head to AUDIT_DIGEST_PATH (a file the database owner cannot rewrite, e.g. on "
            "write-once storage) and mail it to AUDIT_DIGEST_EMAIL if set. Once per day; the scheduler does it after the close.")

    def add_arguments(self, parser):
        parser.add_argument("--to", default=None, help="the digest file (default AUDIT_DIGEST_PATH)")
        parser.add_argument("--date", default=None, help="the day the digest is for (default today)")

    def handle(self, *args, **options):
        while audit_seal():
            pass
        digest = audit_digest_export(day=options["date"], path=Path(options["to"]) if options["to"] else None)
        if digest is None:
            self.stdout.write("nothing exported (no seal yet, or today's digest is already there)")
        else:
            self.stdout.write(f"exported: {digest['date']} seal #{digest['seal_seq']} chain {digest['chain']}")
