"""The trading reports (compliance/trading_reports.py) on a large book in PostgreSQL.

Fills a fresh database with BENCH_ORDERS orders (default 500,000) of 10 accounts, 8 strategies and
50 instruments over BENCH_DAYS days (default 500), nine in ten with a fill, by one INSERT ... SELECT
each (generate_series), then prints for the daily report of one day, and for strategy effectiveness
over one day, a month and the whole range: the median time of BENCH_REPEAT runs, the number of
queries and the peak of Python allocations (tracemalloc) during one run. The whole range should
allocate about what one day does: the figures are summed by the database, never loaded.
Also the time and peak allocation of `report_strategy` writing the whole range to Excel.

Environment: BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/bench_trading_reports),
BENCH_ORDERS, BENCH_DAYS, BENCH_REPEAT (5), BENCH_REUSE=1 (keep a database filled by an earlier run).
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.system import django_in_process, recreate_postgres  # noqa: E402

DATABASE_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/bench_trading_reports")
ORDERS = int(os.environ.get("BENCH_ORDERS", "500000"))
DAYS = int(os.environ.get("BENCH_DAYS", "500"))
REPEAT = int(os.environ.get("BENCH_REPEAT", "5"))
FIRST_DAY = date(2025, 1, 1)

ORDERS_SQL = """
INSERT INTO orders_order (account_id, instrument_id, client_order_id, strategy, side, order_type, price, reference_price,
    quantity, filled_quantity, filled_amount, fees_paid, commission_charged, frozen_amount, frozen_quantity, status,
    status_reason, broker_order_id, risk_verdicts, source, submitted_by, trading_day, created_at, updated_at)
SELECT a.ids[1 + g %% array_length(a.ids, 1)], i.ids[1 + (g * 7) %% array_length(i.ids, 1)], 'b' || g, 's' || (g %% 8),
    CASE WHEN g %% 3 = 0 THEN 'SELL' ELSE 'BUY' END, 'LIMIT', 10 + (g %% 50) * 0.01, 10 + (g %% 50) * 0.01 - 0.01 * (g %% 3),
    100 * (1 + g %% 20), CASE WHEN g %% 10 = 0 THEN 0 ELSE 100 * (1 + g %% 20) END, 0, 0, 0, 0, 0,
    CASE WHEN g %% 10 = 0 THEN 'CANCELLED' ELSE 'FILLED' END, '', 'B' || g, '[]', 'api', 'bench',
    %(first)s::date + ((g - 1) * %(days)s / %(orders)s)::int, now(), now()
FROM generate_series(1, %(orders)s) g,
     (SELECT array_agg(id ORDER BY id) ids FROM trading_account) a,
     (SELECT array_agg(id ORDER BY id) ids FROM trading_instrument) i
"""
FILLS_SQL = """
INSERT INTO orders_fill (order_id, broker_trade_id, quantity, price, amount, commission, stamp_duty, transfer_fee,
    other_fees, fees, realized_pnl, filled_at, trading_day, created_at)
SELECT o.id, 'T' || o.id, o.quantity, o.price, o.price * o.quantity, 5, CASE WHEN o.side = 'SELL' THEN 1 ELSE 0 END,
    0.1, 0, CASE WHEN o.side = 'SELL' THEN 6.1 ELSE 5.1 END,
    CASE WHEN o.side = 'SELL' THEN (o.id % 200) - 90 ELSE 0 END, now(), o.trading_day, now()
FROM orders_order o WHERE o.filled_quantity > 0
"""


def fill_database() -> None:
    from django.core.management import call_command
    from django.db import connection, transaction

    from trading.models import Account, Instrument

    call_command("migrate", "--noinput", verbosity=0)
    call_command("load_instruments", verbosity=0, stdout=open(os.devnull, "w"))  # noqa: SIM115
    Account.objects.bulk_create([Account(name=f"acct{n:02d}", cash=10**8) for n in range(10)])
    keep = list(Instrument.objects.filter(board="MAIN", is_st=False).order_by("code").values_list("pk", flat=True)[:50])
    started = time.monotonic()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("CREATE TEMP TABLE keep_instruments AS SELECT unnest(%s::bigint[]) id", [keep])
        cursor.execute(ORDERS_SQL.replace("FROM trading_instrument", "FROM keep_instruments"),
                       {"first": FIRST_DAY, "days": DAYS, "orders": ORDERS})
        cursor.execute(FILLS_SQL)
        cursor.execute("ANALYZE orders_order; ANALYZE orders_fill")
    print(f"filled {ORDERS:,} orders over {DAYS} days in {time.monotonic() - started:.1f} s")


def measure(name: str, run: Callable[[], Any]) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    times = []
    for _ in range(REPEAT):
        started = time.perf_counter()
        run()
        times.append((time.perf_counter() - started) * 1000)
    tracemalloc.start()
    with CaptureQueriesContext(connection) as queries:
        run()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"{name:<44} median {statistics.median(times):8.1f} ms  worst {max(times):8.1f} ms  "
          f"{len(queries.captured_queries):2d} queries  peak {peak / 1024:8.0f} KiB")


def main() -> None:
    if os.environ.get("BENCH_REUSE") != "1":
        recreate_postgres(DATABASE_URL)
    django_in_process(DATABASE_URL)
    if os.environ.get("BENCH_REUSE") != "1":
        fill_database()
    from django.core.management import call_command

    from compliance.trading_reports import daily_trading, strategy_effectiveness

    day = FIRST_DAY + timedelta(days=DAYS // 2)
    last = FIRST_DAY + timedelta(days=DAYS - 1)
    print(f"busy machine: figures indicative only ({os.cpu_count()} cores shared)")
    measure("daily report, one day, all accounts", lambda: daily_trading(day=day))
    measure("daily report, one day, one account", lambda: daily_trading(day=day, account="acct03"))
    measure("strategy effectiveness, one day", lambda: strategy_effectiveness(since=day, until=day))
    measure("strategy effectiveness, 30 days", lambda: strategy_effectiveness(since=day, until=day + timedelta(days=29)))
    measure(f"strategy effectiveness, all {DAYS} days", lambda: strategy_effectiveness(since=FIRST_DAY, until=last))
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "strategies.xlsx"
        measure("report_strategy, all days, to Excel", lambda: call_command(
            "report_strategy", "--since", FIRST_DAY.isoformat(), "--until", last.isoformat(), "--format", "xlsx",
            "--output", str(out), stdout=open(os.devnull, "w")))  # noqa: SIM115


if __name__ == "__main__":
    main()
