"""How long the abnormal-trading figures (orders/activity.py) take for one busy day: 200,000 orders
(BENCH_ORDERS) of 20 accounts, a third cancelled (half of those within a second), some filled, some
in the closing call, self-trade and restricted-list verdicts, on PostgreSQL. Prints the time of
``account_days`` for the day (the compliance report's and the monitors' computation), of the report's
rows and of ``stakes_at_least``, best and median of BENCH_REPEAT runs. No assertion: figures only.

    .venv/bin/python bench/abnormal_report.py   # BENCH_DATABASE_URL=postgres://.../bench_abnormal_report
"""

from __future__ import annotations

import os
import random
import statistics
import subprocess
import sys
import time
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.system import django_in_process, recreate_postgres  # noqa: E402

DATABASE_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/bench_abnormal_report")
ORDERS = int(os.environ.get("BENCH_ORDERS", "200000"))
REPEAT = int(os.environ.get("BENCH_REPEAT", "5"))
ACCOUNTS = 20
SHANGHAI = ZoneInfo("Asia/Shanghai")
DAY = date(2026, 11, 23)


def build() -> None:
    from orders.models import Order
    from risk.models import RiskEvent
    from trading.models import Account, Instrument, Position

    rng = random.Random(7)
    accounts = [Account.objects.create(name=f"bench{n:02d}", broker_kind="paper") for n in range(ACCOUNTS)]
    instruments = [Instrument.objects.create(exchange="SH", code=f"60{n:04d}", name=f"I{n}", board="MAIN",
                                             total_shares=10_000_000) for n in range(50)]
    for account in accounts[:5]:
        Position.objects.create(account=account, instrument=instruments[0], quantity=rng.choice([100_000, 460_000]))
    start = datetime(2026, 11, 23, 9, 30, tzinfo=SHANGHAI)
    seconds = 4 * 3600
    batch: list[Order] = []
    for index in range(ORDERS):
        admitted = start + timedelta(seconds=rng.randrange(seconds), microseconds=rng.randrange(1_000_000))
        if admitted.hour >= 11 and (admitted.hour, admitted.minute) >= (11, 30):
            admitted += timedelta(minutes=90)  # the afternoon session
        roll = rng.random()
        cancel = admitted + timedelta(seconds=rng.choice([0.3, 0.9, 5, 60])) if roll < 0.33 else None
        status = "CANCELLED" if cancel else ("FILLED" if roll < 0.6 else ("REJECTED" if roll < 0.62 else "SUBMITTED"))
        batch.append(Order(account=accounts[index % ACCOUNTS], instrument=instruments[index % 50],
                           client_order_id=f"b{index}", side="BUY", order_type="LIMIT", price=Decimal("10.00"),
                           quantity=100, filled_quantity=100 if status == "FILLED" else 0, status=status,
                           trading_day=DAY, admitted_at=admitted, cancel_requested_at=cancel,
                           submitted_at=None if status == "REJECTED" else admitted))
        if len(batch) == 10_000:
            Order.objects.bulk_create(batch)
            batch = []
    Order.objects.bulk_create(batch)
    rejected = list(Order.objects.filter(status="REJECTED").values_list("pk", "account_id")[:2000])
    RiskEvent.objects.bulk_create([RiskEvent(trading_day=DAY, rule=rng.choice(["self_trade", "restricted_list"]),
                                             level="error", action="REJECT", account_id=account_id, order_id=pk)
                                   for pk, account_id in rejected])
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def timed(label: str, run) -> None:
    times = []
    for _ in range(REPEAT):
        began = time.perf_counter()
        result = run()
        times.append((time.perf_counter() - began) * 1000)
    print(f"{label:<40} best {min(times):8.1f} ms   median {statistics.median(times):8.1f} ms   ({result})")


def main() -> None:
    recreate_postgres(DATABASE_URL)
    django_in_process(DATABASE_URL)
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, check=True,
                   env={**os.environ, "DATABASE_URL": DATABASE_URL})
    began = time.perf_counter()
    build()
    print(f"built {ORDERS:,} orders of {ACCOUNTS} accounts on {DAY} in {time.perf_counter() - began:.1f} s "
          "(busy machine: figures are indicative)")
    from compliance.report_compliance import compliance_report
    from orders.activity import account_days, stakes_at_least

    timed("account_days (one day, all accounts)", lambda: f"{len(account_days(since=DAY, until=DAY))} account-days")
    timed("account_days (one account)", lambda: f"{len(account_days(since=DAY, until=DAY, account='bench03'))} account-day")
    timed("compliance report rows", lambda: f"{sum(1 for _ in compliance_report(since=DAY, until=DAY).rows())} rows")
    timed("stakes_at_least(4.5%)", lambda: f"{len(stakes_at_least(share=Decimal('0.045')))} stakes")


if __name__ == "__main__":
    main()
