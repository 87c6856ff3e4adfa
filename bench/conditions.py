"""Conditional orders: evaluation cost per quote with many ACTIVE parents (issue 13, item 6, in process).

Builds a fresh PostgreSQL database, BENCH_PARENTS price triggers (buy at or above a level, sell at
or below one, levels spread 0.05-3.00 CNY from 10.00) over BENCH_SYMBOLS main-board symbols, then
publishes BENCH_QUOTES quotes (a random walk of a few ticks a step, one symbol a quote) through
``brokers.services.quotes_publish`` and times ``conditions_evaluate_quotes`` on each, in this process
(the receiver that does it after commit is disconnected, so the store and the evaluation are timed
apart). Children are accepted by order intake with ORDERS_DISPATCH=relay: they wait in the outbox,
no broker is called.

Printed: evaluation per quote p50/p99/max (all quotes; those that fired nothing; those that fired),
how many parents fired, and the quote-to-child-accepted time of the fired ones (the evaluation of
the quote that fired them, from its start to the end of the child's intake). Not the whole system:
no workers, no Redis, one evaluator; the figures of a busy machine are not reliable.

Environment: BENCH_DATABASE_URL (postgres://postgres@127.0.0.1:5432/bench_conditions),
BENCH_PARENTS (10000), BENCH_SYMBOLS (50), BENCH_QUOTES (2000), BENCH_SEED (13).
"""

from __future__ import annotations

import os
import random
import sys
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.system import django_in_process, percentile, recreate_postgres  # noqa: E402

DATABASE_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/bench_conditions")
PARENTS = int(os.environ.get("BENCH_PARENTS", "10000"))
SYMBOLS = int(os.environ.get("BENCH_SYMBOLS", "50"))
QUOTES = int(os.environ.get("BENCH_QUOTES", "2000"))
SEED = int(os.environ.get("BENCH_SEED", "13"))
PRICE = Decimal("10.00")
TICK = Decimal("0.01")


def prepare(rng: random.Random) -> list[int]:
    """Schema, instruments, quotes, the account, its holdings and the parents; the instruments' ids."""
    from django.conf import settings
    from django.core.management import call_command

    from brokers.services import account_create
    from conditions.kinds import kind_for
    from conditions.models import ChildPriceType, ConditionalOrder
    from conditions.services import _set_thresholds
    from trading.models import Instrument, Position, Quote
    from trading.suitability import ALL_PERMISSIONS

    settings.ORDERS_DISPATCH = "relay"  # intake only: accepted children wait in the outbox
    call_command("migrate", "--noinput", verbosity=0)
    account = account_create(name="bench", broker_kind="paper", cash=Decimal("10000000000"), permissions=ALL_PERMISSIONS)
    # Made-up main-board symbols (the shipped reference data has too few): 601000.SH, 601001.SH, ...
    stocks = [Instrument.objects.create(exchange="SH", code=str(601000 + i), name=f"bench {i}", board="MAIN") for i in range(SYMBOLS)]
    for inst in stocks:
        Quote.objects.update_or_create(instrument=inst, defaults={"last": PRICE, "prev_close": PRICE, "bid": PRICE - TICK,
                                                                  "ask": PRICE, "bid_volume": 10**6, "ask_volume": 10**6})
        Position.objects.create(account=account, instrument=inst, quantity=10**6, cost_amount=Decimal("10000000"))
    kind = kind_for("price")
    rows = []
    for index in range(PARENTS):
        inst = stocks[index % len(stocks)]
        distance = TICK * rng.randint(5, 300)
        above = rng.random() < 0.5
        params = {"direction": "AT_OR_ABOVE" if above else "AT_OR_BELOW", "level": str(PRICE + distance if above else PRICE - distance),
                  "change_pct": None}
        parent = ConditionalOrder(account=account, instrument=inst, client_order_id=f"b-{index}", kind="price",
                                  side="BUY" if above else "SELL", quantity=100, price_type=ChildPriceType.BEST_OPPOSITE,
                                  params=params, memory={"prev_close": "10.00"}, created_by="bench")
        _set_thresholds(parent, kind, kind.parse(params))
        rows.append(parent)
    ConditionalOrder.objects.bulk_create(rows, batch_size=2000)
    return [inst.pk for inst in stocks]


def run() -> None:
    rng = random.Random(SEED)
    recreate_postgres(DATABASE_URL)
    django_in_process(DATABASE_URL)
    from brokers.services import quotes_publish
    from brokers.signals import quotes_published
    from conditions.models import ConditionalOrder
    from conditions.receivers import evaluate_on_quotes
    from conditions.services import conditions_evaluate_quotes, quote_view
    from trading.models import Instrument

    started = time.perf_counter()
    instruments = prepare(rng)
    print(f"prepared {PARENTS} parents over {len(instruments)} symbols in {time.perf_counter() - started:.1f} s")
    quotes_published.disconnect(evaluate_on_quotes, dispatch_uid="conditions.evaluate_on_quotes")
    symbols = {inst.pk: inst.symbol for inst in Instrument.objects.filter(pk__in=instruments)}
    last = {pk: PRICE for pk in instruments}
    quiet: list[float] = []
    firing: list[float] = []
    fired = 0
    for _ in range(QUOTES):
        pk = rng.choice(instruments)
        last[pk] = min(max(last[pk] + TICK * rng.choice([-3, -2, -1, -1, 0, 1, 1, 2, 3]), Decimal("9.05")), Decimal("10.95"))
        result = quotes_publish([{"symbol": symbols[pk], "last": str(last[pk]), "bid": str(last[pk] - TICK),
                                  "ask": str(last[pk]), "bid_volume": 10**6, "ask_volume": 10**6}])
        view = quote_view(result.quotes[0])
        begin = time.perf_counter()
        outcomes = conditions_evaluate_quotes([view])
        elapsed = (time.perf_counter() - begin) * 1000
        released = sum(1 for o in outcomes if o.children)
        fired += released
        (firing if released else quiet).append(elapsed)
    every = quiet + firing

    def line(label: str, values: list[float]) -> str:
        if not values:
            return f"{label}: none"
        return (f"{label}: {len(values)} quotes, p50 {percentile(values, 0.5):.3f} ms, p99 {percentile(values, 0.99):.3f} ms, "
                f"max {max(values):.3f} ms")

    print(line("evaluation per quote, all", every))
    print(line("evaluation per quote, firing nothing", quiet))
    print(line("evaluation per quote, firing (quote -> children accepted)", firing))
    active = ConditionalOrder.objects.filter(state="ACTIVE").count()
    print(f"fired {fired} parents; {active} still ACTIVE")


if __name__ == "__main__":
    run()
