"""Verify the audit chain: name the first event changed, deleted, inserted or reordered."""

import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from audit.sealing import audit_seal, audit_verify, digest_path
from audit.services import Actor, audit_record


class Command(BaseCommand):
    help = ("Walk the audit chain from the last verified checkpoint (--full: from the start) and report the "
            "first event that was changed, deleted, inserted or reordered, or a chain that no longer matches "
            "the exported daily digests. Exit status 1 on any problem.")

    def add_arguments(self, parser):
        parser.add_argument("--full", action="store_true", help="verify from the first seal, not the last checkpoint")
        parser.add_argument("--digests", default=None, help="the exported digest file to compare (default AUDIT_DIGEST_PATH)")
        parser.add_argument("--no-seal", action="store_true", help="do not seal pending events first")

    def handle(self, *args, **options):
        if not options["no_seal"]:
            while audit_seal():
                pass
        started = time.monotonic()
        result = audit_verify(full=options["full"], digests=Path(options["digests"]) if options["digests"] else digest_path())
        seconds = time.monotonic() - started
        audit_record(actor=Actor.command("verify_audit"), action="audit.verified", object_type="audit_chain",
                     object_id=result.seal_seq or "", after={"ok": result.ok, "seals": result.seals, "events": result.events,
                                                            "event_id": result.event_id}, reason=result.problem)
        if not result.ok:
            raise CommandError(f"审计链校验失败 / audit chain verification FAILED: {result.problem}")
        rate = f", {result.walked / seconds:,.0f} events/s" if result.walked and seconds else ""
        for event_id, seq in result.late[:20]:
            self.stdout.write(f"  note: event #{event_id} committed late and was sealed by seal #{seq}")
        self.stdout.write(f"审计链完好 / audit chain intact: {result.walked} events in {result.seals} seals verified "
                          f"this run ({result.events} in all), head {result.head[:16]}…, {seconds:.2f} s{rate}")
