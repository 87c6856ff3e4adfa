"""The live relay: number the queued live events and send them to the websocket groups."""

import asyncio
import logging
import signal

from channels.layers import get_channel_layer
from django.core.management.base import BaseCommand, CommandError

from monitoring.live import live_relay_once, uses_redis

log = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Send the live-update events queued in Redis to the websocket clients (one relay per system)."

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="one pass (waits up to 1 s), then exit")

    def handle(self, *args, **options):
        if not uses_redis():
            raise CommandError("the live relay needs REDIS_URL (without it, live events go in-process)")
        running = True

        def stop(*_):
            nonlocal running
            running = False

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        layer = get_channel_layer()
        loop = asyncio.new_event_loop()
        self.stdout.write("live relay: sending live events to the websocket groups")
        self.stdout.flush()
        while running:
            try:
                live_relay_once(layer, loop)
            except Exception:  # keep relaying: a client sees the gap in the numbers and re-syncs
                log.exception("live relay pass failed")
            if options["once"]:
                return
