"""Seal the audit events committed since the last seal (the periodic sealer does this too)."""

from django.core.management.base import BaseCommand

from audit.sealing import audit_seal


class Command(BaseCommand):
    help = "Seal the committed audit events not sealed yet (audit/sealing.py); the scheduler does it every few seconds."

    def handle(self, *args, **options):
        total = 0
        while sealed := audit_seal():
            total += sealed
        self.stdout.write(f"已封印 / sealed: {total} events")
