"""The periodic jobs without Celery beat (embedded mode): poll, sweep, expire, reconcile, and the
jobs other apps registered in trading/periodic.py (alerts: deliveries, escalations, heartbeat,
monitors).

Every job runs once when the scheduler starts, then at its interval: the first pass of
``accounts_reconcile_all`` is the start-up reconciliation of embedded mode (with Celery it is
the ``worker_ready`` signal in orders/tasks.py)."""

import logging
import time

from django.conf import settings
from django.core.management.base import BaseCommand

from audit.sealing import audit_digest_daily, audit_seal
from brokers.connection import brokers_heartbeat
from orders import review, services
from trading import periodic

log = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Run the periodic order jobs in this process (used by `make run` when REDIS_URL is unset)."

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="run each job once and exit")

    def handle(self, *args, **options):
        jobs = [
            (services.accounts_poll_all, 2.0),
            (services.outbox_sweep, 5.0),
            (services.orders_expire_day, 60.0),
            (review.orders_expire_reviews, 30.0),
            (services.accounts_reconcile_all, settings.ORDERS_RECONCILE_INTERVAL_SECONDS),
            (brokers_heartbeat, settings.BROKER_HEARTBEAT_SECONDS),
            (audit_seal, settings.AUDIT_SEAL_SECONDS),
            (audit_digest_daily, 600.0),
            # Jobs the apps above registered (trading/periodic.py): monitoring's alerts and heartbeat.
            *((job.call, job.every_seconds) for job in periodic.JOBS.values()),
        ]
        due = {job: 0.0 for job, _ in jobs}
        self.stdout.write(f"scheduler: {', '.join(j.__name__ for j, _ in jobs)} ({settings.DATABASES['default']['ENGINE']})")
        while True:
            now = time.monotonic()
            for job, every in jobs:
                if due[job] <= now:
                    try:
                        job()
                    except Exception:  # keep the loop alive; the failure is logged
                        log.exception("periodic job %s failed", job.__name__)
                    due[job] = now + every
            if options["once"]:
                return
            time.sleep(0.5)
