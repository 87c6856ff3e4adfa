"""A simulated market: random-walk quotes for the reference instruments."""

import random
import time
from decimal import ROUND_HALF_UP, Decimal

from django.core.management.base import BaseCommand

from brokers.services import quotes_publish
from orders.services import accounts_poll_later
from trading import market_rules
from trading.market_rules import load_reference_instruments


class Command(BaseCommand):
    help = "Publish quotes for real A-share codes from several boards so the paper broker fills orders."

    def add_arguments(self, parser):
        parser.add_argument("--interval", type=float, default=1.0, help="seconds between rounds of quotes")
        parser.add_argument("--rounds", type=int, default=0, help="stop after this many rounds (0 = run forever)")
        parser.add_argument("--seed", type=int, default=None)

    def handle(self, *args, **options):
        rng = random.Random(options["seed"])
        refs = [r for r in load_reference_instruments() if r.prev_close]
        last = {r.symbol: r.prev_close for r in refs}
        self.stdout.write(f"market: {len(refs)} instruments, a quote round every {options['interval']}s")
        done = 0
        while True:
            quotes = []
            for ref in refs:
                tick = market_rules.tick_size(ref.board)
                prev_close = ref.prev_close
                limits = market_rules.limit_prices(ref, prev_close, time_today())
                step = Decimal(str(rng.gauss(0, 0.002))) * last[ref.symbol]
                price = (last[ref.symbol] + step).quantize(tick, ROUND_HALF_UP)
                if limits:
                    price = min(max(price, limits[0]), limits[1])
                last[ref.symbol] = price
                # The bid sits a tick below, except at limit down: nothing is quoted outside the band.
                bid = price - tick if not limits or price - tick >= limits[0] else None
                quotes.append(
                    {
                        "symbol": ref.symbol,
                        "last": price,
                        "prev_close": prev_close,
                        "bid": bid,
                        "ask": price,
                        "bid_volume": rng.randrange(1, 200) * 100,
                        "ask_volume": rng.randrange(1, 200) * 100,
                    }
                )
            result = quotes_publish(quotes)
            accounts_poll_later(result.accounts_with_fills)
            done += 1
            if options["rounds"] and done >= options["rounds"]:
                return
            time.sleep(options["interval"])


def time_today():
    from django.utils import timezone

    from trading.calendar import SHANGHAI

    return timezone.now().astimezone(SHANGHAI).date()
