"""The outbox relay: enqueue every broker call that order rows say is owed."""

import logging
import signal
import time

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import close_old_connections

from orders.services import outbox_relay_once

log = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Move owed broker calls (NEW and CANCEL_REQUESTED orders) from the database to the task queue."

    def add_arguments(self, parser):
        parser.add_argument("--interval", type=float, default=settings.ORDERS_RELAY_INTERVAL_SECONDS,
                            help="seconds between passes when there was nothing to send")
        parser.add_argument("--once", action="store_true", help="one pass, then exit")

    def handle(self, *args, **options):
        running = True

        def stop(*_):
            nonlocal running
            running = False

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        self.stdout.write(f"outbox relay: polling every {options['interval']}s")
        self.stdout.flush()
        while running:
            try:
                sent = outbox_relay_once()
            except Exception:  # keep relaying; the sweep covers what a failed pass missed
                log.exception("outbox relay pass failed")
                close_old_connections()
                sent = 0
            if options["once"]:
                return
            if not sent:
                time.sleep(options["interval"])
