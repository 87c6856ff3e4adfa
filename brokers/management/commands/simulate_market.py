"""A simulated market: random-walk quotes for the reference instruments (brokers/market.py)."""

import random
import time

from django.core.management.base import BaseCommand

from brokers.market import DAILY_VOLATILITY, RandomWalkMarket
from brokers.services import quotes_publish
from orders.services import accounts_poll_later
from trading.calendar import trading_day_of
from trading.clock import now
from trading.market_rules import load_reference_instruments
from trading.models import Quote


class Command(BaseCommand):
    help = "Publish quotes for real A-share codes from several boards so the paper broker fills orders."

    def add_arguments(self, parser):
        parser.add_argument("--interval", type=float, default=1.0, help="seconds between rounds of quotes")
        parser.add_argument("--rounds", type=int, default=0, help="stop after this many rounds (0 = run forever)")
        parser.add_argument("--seed", type=int, default=None)
        parser.add_argument("--daily-volatility", type=float, default=DAILY_VOLATILITY,
                            help="standard deviation of a day's return (default 0.02: 2%%)")

    def handle(self, *args, **options):
        today = trading_day_of(now())
        refs = [r for r in load_reference_instruments() if r.prev_close]
        # Resume from today's quotes (a restart must not jump back to the previous close).
        start = {
            q.instrument.symbol: q.last
            for q in Quote.objects.select_related("instrument").filter(trading_day=today, last__isnull=False)
            if q.prev_close is not None
        }
        market = RandomWalkMarket(refs, interval_seconds=options["interval"], day=today, rng=random.Random(options["seed"]),
                                  daily_volatility=options["daily_volatility"], start=start)
        self.stdout.write(f"market: {len(market.walks)} instruments, a quote round every {options['interval']}s, "
                          f"daily volatility {options['daily_volatility']:.1%}")
        done = 0
        while True:
            result = quotes_publish(market.step())
            accounts_poll_later(result.accounts_with_fills)
            done += 1
            if options["rounds"] and done >= options["rounds"]:
                return
            time.sleep(options["interval"])
