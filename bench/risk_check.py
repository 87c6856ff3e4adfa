"""One pre-trade risk check with every rule enabled, in-process and warm, on PostgreSQL.

Builds a fresh database `bench_risk`, an account with holdings in ten
instruments across industries, a control group with a second account, a few
hundred orders already entered today (so counters, frozen cash and open buys
are real), then enables every registered rule (`risk_enable_all`). It times
`risk.controller.risk_check_order` under the account lock, as the order path
calls it, database reads included; then the same with no rule configured;
then a whole `order_submit` (no HTTP) with and without the rules. Prints
figures; asserts nothing.

Environment: BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/bench_risk),
BENCH_CHECKS (default 5000).
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.system import django_in_process, recreate_postgres  # noqa: E402

DATABASE_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/bench_risk")
CHECKS = int(os.environ.get("BENCH_CHECKS", "5000"))
WARM = 300


def recreate_database() -> None:
    recreate_postgres(DATABASE_URL)


def setup_django() -> None:
    django_in_process(DATABASE_URL)


def prepare() -> None:
    from decimal import Decimal

    from django.conf import settings
    from django.core.management import call_command

    from audit.services import Actor
    from brokers.services import account_create
    from orders.services import OrderInput, order_submit
    from trading.models import Account, Instrument, Position, Quote

    settings.ORDERS_DISPATCH = "relay"  # intake only: accepted orders wait in the outbox, no relay runs
    call_command("migrate", "--noinput", verbosity=0)
    call_command("load_instruments", verbosity=0, stdout=open(os.devnull, "w"))  # noqa: SIM115
    from trading.suitability import ALL_PERMISSIONS

    # It buys ChiNext and STAR stocks too: the accounts hold those boards' trading permissions.
    account = account_create(name="bench", broker_kind="paper", cash=Decimal("100000000"), permissions=ALL_PERMISSIONS)
    other = account_create(name="bench-sibling", broker_kind="paper", cash=Decimal("100000000"), permissions=ALL_PERMISSIONS)
    Account.objects.filter(pk__in=[account.pk, other.pk]).update(control_group="bench-group")
    stocks = list(Instrument.objects.filter(board__in=["MAIN", "CHINEXT", "STAR"]).exclude(is_st=True).order_by("code")[:12])
    for inst in stocks:
        Quote.objects.update_or_create(instrument=inst, defaults={"last": Decimal("10.00"), "prev_close": Decimal("10.00"),
                                                                  "bid": Decimal("9.99"), "ask": Decimal("10.00"),
                                                                  "bid_volume": 100000, "ask_volume": 100000})
    for inst in stocks[:10]:
        Position.objects.create(account=account, instrument=inst, quantity=10000, cost_amount=Decimal("100000"))
        Position.objects.create(account=other, instrument=inst, quantity=5000, cost_amount=Decimal("50000"))
    actor = Actor.api_key("bench")
    for index in range(300):
        inst = stocks[index % len(stocks)]
        order_submit(OrderInput(account="bench", symbol=inst.symbol, side="BUY", order_type="LIMIT", price="9.80",
                                quantity=200 if inst.board == "STAR" else 100, client_order_id=f"bg-{index}"), actor=actor)
    return None


def time_checks(label: str, symbol: str, count: int) -> dict[str, float]:
    from decimal import Decimal

    from django.db import connection, transaction
    from django.test.utils import CaptureQueriesContext

    from orders.models import Order
    from risk.controller import risk_check_order
    from trading.clock import now
    from trading.models import Account, Instrument
    from trading.selectors import account_trading_day
    from trading.services import account_lock

    account = Account.objects.get(name="bench")
    code, exchange = symbol.split(".")
    instrument = Instrument.objects.get(code=code, exchange=exchange)
    day = account_trading_day(account, now())
    samples: list[float] = []
    verdicts = 0
    queries = 0
    for index in range(count + WARM):
        with transaction.atomic():
            locked = account_lock(account.pk)
            order = Order(account=locked, instrument=instrument, client_order_id=f"probe-{index}", side="BUY",
                          order_type="LIMIT", price=Decimal("9.95") + Decimal(index % 5) / 100, quantity=100,
                          trading_day=day, source="api")
            if index == WARM:
                with CaptureQueriesContext(connection) as captured:
                    outcome = risk_check_order(order)
                queries = len(captured)
                verdicts = len(outcome.verdicts)
                assert all(v.passed for v in outcome.verdicts), [v for v in outcome.verdicts if not v.passed]
                continue
            start = time.perf_counter()
            risk_check_order(order)
            elapsed = time.perf_counter() - start
        if index > WARM:
            samples.append(elapsed)
    samples.sort()
    return {"label": label, "n": len(samples), "verdicts": verdicts, "queries": queries,
            "p50": statistics.median(samples) * 1000, "p99": samples[int(len(samples) * 0.99) - 1] * 1000,
            "max": samples[-1] * 1000}


def time_submits(label: str, symbol: str, count: int, prefix: str) -> dict[str, float]:
    from audit.services import Actor
    from orders.services import OrderInput, order_submit

    actor = Actor.api_key("bench")
    samples: list[float] = []
    for index in range(count + 50):
        data = OrderInput(account="bench", symbol=symbol, side="BUY", order_type="LIMIT", price="9.90", quantity=100,
                          client_order_id=f"{prefix}-{index}")
        start = time.perf_counter()
        order_submit(data, actor=actor)
        elapsed = time.perf_counter() - start
        if index >= 50:
            samples.append(elapsed)
    samples.sort()
    return {"label": label, "n": len(samples), "p50": statistics.median(samples) * 1000,
            "p99": samples[int(len(samples) * 0.99) - 1] * 1000, "max": samples[-1] * 1000}


def main() -> None:
    print(f"risk check benchmark: {DATABASE_URL}, {CHECKS} checks after {WARM} warm-up")
    recreate_database()
    setup_django()
    prepare()
    from django.core.management import call_command

    from risk.models import RiskRule
    from risk.rules import RULE_CLASSES
    from risk.rules.base import PRE_TRADE
    from trading.models import Instrument

    symbol = Instrument.objects.filter(positions__account__name="bench").order_by("code").first().symbol
    none = time_checks("no rule configured", symbol, CHECKS)
    submit_none = time_submits("order_submit, no rule", symbol, 1000, "plain")
    call_command("risk_enable_all", "--account", "bench", stdout=open(os.devnull, "w"))  # noqa: SIM115
    enabled = RiskRule.objects.filter(enabled=True).count()
    pre = sum(1 for c in RULE_CLASSES if c.phase == PRE_TRADE)
    full = time_checks(f"{enabled} rules enabled ({pre} pre-trade)", symbol, CHECKS)
    submit_full = time_submits("order_submit, every rule", symbol, 1000, "ruled")
    for row in (none, full):
        print(f"risk_check_order  {row['label']:34s} p50 {row['p50']:6.3f} ms   p99 {row['p99']:6.3f} ms   max {row['max']:6.2f} ms"
              f"   {row['queries']} queries, {row['verdicts']} verdicts, n={row['n']}")
    for row in (submit_none, submit_full):
        print(f"order_submit      {row['label']:34s} p50 {row['p50']:6.3f} ms   p99 {row['p99']:6.3f} ms   max {row['max']:6.2f} ms"
              f"   n={row['n']}")
    print(f"target: p99 of one check with every rule < 2 ms: {'met' if full['p99'] < 2 else 'NOT met'}")


if __name__ == "__main__":
    main()
