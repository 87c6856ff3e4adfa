"""The whole system under load with many orders resting: does one order cost more when 10,000 wait?

For each mode (sqlite: the embedded default, the broker call made in the web request;
sqlite-relay: the same with ORDERS_DISPATCH=relay, the relay process making the broker calls;
postgres: PostgreSQL with Redis) and each number of resting
orders (0, 1,000, 10,000 by default) it builds a fresh database, rests that many limit buys far
below the market (back-office orders SUBMITTED and the paper broker's book holding them, created in
bulk), starts the system as `make run` does (`manage.py run_system`: on SQLite the web server, the
scheduler and the simulated market, tasks in the request; on PostgreSQL also the outbox relay, the
Celery workers and beat), then two client processes send limit buys over HTTP for BENCH_SECONDS.
The resting orders and the measured ones are all in 600000.SH, the symbol whose quote the simulated
market publishes every second, so the matcher meets all of them.

Reported per run: accepted orders/s and HTTP p50/p99 (closed loop, two clients), and the p50/p99
from acceptance to the broker call (the order's `created_at` to the paper broker's own receipt,
`PaperOrder.created_at`, both from this machine's clock).

Environment: BENCH_DATABASES ("sqlite,sqlite-relay,postgres"), BENCH_RESTING ("0,1000,10000"),
BENCH_SECONDS (20), BENCH_CLIENTS (2), BENCH_PORT (8765), BENCH_RATE (0: each client sends its next
order when the last is answered, which measures intake; e.g. 5: the clients offer 5 orders/s in
all, below what the workers drain, which measures acceptance-to-broker without a queue building up),
BENCH_WARMUP (1.5: seconds of unmeasured orders first, at BENCH_RATE when set; e.g. 20 lets every
worker process make its first poll, which reads the broker's whole list of the account, before the
measured orders), BENCH_DATABASE_URL (postgres://postgres@127.0.0.1:5432/bench_open_orders), BENCH_REDIS_URL
(redis://127.0.0.1:6379/14), BENCH_SQLITE_PATH (var/bench_open_orders.sqlite3).
The figures depend on the machine and on what else runs on it; compare runs made in one window.
"""

from __future__ import annotations

import http.client
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.system import fresh_postgres, fresh_sqlite, percentile, system_start, system_stop  # noqa: E402

DATABASE_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/bench_open_orders")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
SQLITE_PATH = os.environ.get("BENCH_SQLITE_PATH", str(ROOT / "var" / "bench_open_orders.sqlite3"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "20"))
CLIENTS = int(os.environ.get("BENCH_CLIENTS", "2"))
PORT = int(os.environ.get("BENCH_PORT", "8765"))
RATE = float(os.environ.get("BENCH_RATE", "0"))  # orders/s offered by all clients together; 0: as fast as answered
WARMUP = float(os.environ.get("BENCH_WARMUP", "1.5"))  # seconds of unmeasured orders before the measured ones
SYMBOL = "600000.SH"
RESTING_PRICE = "9.10"  # above limit down (9.05), far below the market (about 10.05)
ORDER_PRICE = "9.50"  # rests too: the measured orders join the book
DRAIN_SECONDS = 60.0


def child_env(database: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "SQLITE_PATH")}
    env.update(DJANGO_DEBUG="0", LOG_LEVEL="WARNING", PYTHONUNBUFFERED="1", DJANGO_SETTINGS_MODULE="trading.settings")
    if database == "postgres":
        env.update(DATABASE_URL=DATABASE_URL, REDIS_URL=REDIS_URL, CELERY_QUEUE="bench-open-orders")
    else:
        env.update(SQLITE_PATH=SQLITE_PATH)
    if database == "sqlite-relay":  # embedded, with the broker calls made by the relay process
        env.update(ORDERS_DISPATCH="relay")
    return env


# --------------------------------------------------------------------------- one run (a child process)


def fresh_database(database: str) -> None:
    if database == "postgres":
        fresh_postgres(DATABASE_URL, REDIS_URL)
    else:
        fresh_sqlite(SQLITE_PATH)


def prepare(resting: int) -> str:
    """Schema, reference data, the account, its key, a quote and ``resting`` orders; returns the key."""
    from decimal import Decimal

    from django.core.management import call_command
    from django.db import transaction

    from brokers.models import PaperAccount, PaperOrder
    from brokers.services import account_create, quotes_publish
    from orders.models import Order, OrderStatus
    from trading.auth import api_key_create
    from trading.models import ApiKey, Instrument
    from trading.selectors import account_trading_day

    call_command("migrate", "--noinput", verbosity=0)
    call_command("load_instruments", verbosity=0)
    account = account_create(name="bench", broker_kind="paper", cash=Decimal("1000000000000"))
    _, key = api_key_create(name="bench", accounts=["bench"], can_trade=True, market_data=False, disclosure_acknowledged_by="bench")
    ApiKey.objects.filter(name="bench").update(rate_limit_per_second=100000)
    quotes_publish([{"symbol": SYMBOL, "last": "10.05", "prev_close": "10.05", "bid": "10.04", "ask": "10.05",
                     "bid_volume": 10000, "ask_volume": 10000}])
    instrument = Instrument.objects.get(code=SYMBOL.split(".")[0], exchange=SYMBOL.split(".")[1])
    from django.utils import timezone

    at = timezone.now()
    day = account_trading_day(account, at)
    price = Decimal(RESTING_PRICE)
    batch = 2000
    with transaction.atomic():
        for start in range(0, resting, batch):
            count = min(batch, resting - start)
            orders = Order.objects.bulk_create(
                Order(account=account, instrument=instrument, client_order_id=f"rest-{start + i}", side="BUY",
                      order_type="LIMIT", price=price, quantity=100, trading_day=day, status=OrderStatus.SUBMITTED,
                      broker_order_id=f"R-{day:%Y%m%d}-{start + i:06d}", submitted_at=at, dispatched_at=at,
                      frozen_amount=Decimal("910.00"))
                for i in range(count)
            )
            PaperOrder.objects.bulk_create(
                PaperOrder(broker_order_id=order.broker_order_id, account_name="bench", client_ref=str(order.pk),
                           symbol=SYMBOL, side="BUY", order_type="LIMIT", price=price, quantity=100,
                           frozen_amount=Decimal("910.00"), status="OPEN", message="已报", trading_day=day,
                           created_at=at, updated_at=at)
                for order in orders
            )
        PaperAccount.objects.filter(account_name="bench").update(frozen=Decimal("910.00") * resting)
    return key


def client(key: str, worker: int, deadline: float, queue: Any) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=60)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    latencies: list[float] = []
    errors: dict[int, int] = {}
    n = 0
    # The warm-up client (99) alone offers the whole rate.
    pace = (1 / RATE if worker == 99 else CLIENTS / RATE) if RATE > 0 else 0.0
    next_at = time.perf_counter()
    while time.perf_counter() < deadline:
        if pace:
            next_at += pace
            time.sleep(max(next_at - time.perf_counter(), 0))
        n += 1
        body = json.dumps({"account": "bench", "symbol": SYMBOL, "side": "BUY", "order_type": "LIMIT",
                           "price": ORDER_PRICE, "quantity": 100, "client_order_id": f"m-{worker}-{n}"})
        start = time.perf_counter()
        conn.request("POST", "/api/v1/orders", body, headers)
        response = conn.getresponse()
        response.read()
        latencies.append(time.perf_counter() - start)
        if response.status != 201:
            errors[response.status] = errors.get(response.status, 0) + 1
    queue.put((latencies, errors))


def acceptance_to_broker(started_after: Any) -> tuple[list[float], int]:
    """Seconds from each measured order's acceptance to the paper broker's receipt; and how many never got there."""
    from brokers.models import PaperOrder
    from orders.models import Order

    measured = dict(Order.objects.filter(client_order_id__startswith="m-", created_at__gte=started_after)
                    .values_list("pk", "created_at"))
    received = dict(PaperOrder.objects.filter(account_name="bench", client_ref__in=[str(pk) for pk in measured])
                    .values_list("client_ref", "created_at"))
    delays = [(received[str(pk)] - created).total_seconds() for pk, created in measured.items() if str(pk) in received]
    return delays, len(measured) - len(delays)


def run_one(database: str, resting: int) -> dict[str, Any]:
    import django

    sys.path.insert(0, str(ROOT))
    django.setup()
    from django.db import connection
    from django.utils import timezone

    key = prepare(resting)
    connection.close()
    log = open(ROOT / "var" / f"bench_open_orders_{database}_{resting}.log", "w")  # noqa: SIM115 - closed below
    try:
        system = system_start(PORT, log)
    except BaseException:
        log.close()
        raise
    try:
        queue: Any = multiprocessing.Queue()
        warm_from = timezone.now()
        # Warm up: each Celery worker process's first poll of the account reads the broker's full
        # list (its poll cursor lives in the process), which costs the resting orders once per process.
        client(key, 99, time.perf_counter() + WARMUP, queue)
        queue.get()
        warm_deadline = time.monotonic() + DRAIN_SECONDS  # until the workers and relay deliver
        while acceptance_to_broker(warm_from)[1] and time.monotonic() < warm_deadline:
            time.sleep(0.5)
        started_after = timezone.now()
        deadline = time.perf_counter() + SECONDS
        started = time.perf_counter()
        procs = [multiprocessing.Process(target=client, args=(key, i, deadline, queue)) for i in range(CLIENTS)]
        for p in procs:
            p.start()
        results = [queue.get() for _ in procs]
        for p in procs:
            p.join()
        elapsed = time.perf_counter() - started
        drain_deadline = time.monotonic() + DRAIN_SECONDS
        while True:
            delays, missing = acceptance_to_broker(started_after)
            if not missing or time.monotonic() > drain_deadline:
                break
            time.sleep(1)
    finally:
        system_stop(system)
        log.close()
    latencies = [x for lat, _ in results for x in lat]
    errors: dict[int, int] = {}
    for _, errs in results:
        for status, count in errs.items():
            errors[status] = errors.get(status, 0) + count
    accepted = len(latencies) - sum(errors.values())
    return {
        "database": database,
        "resting": resting,
        "requests": len(latencies),
        "errors": errors,
        "orders_per_second": accepted / elapsed,
        "http_p50_ms": statistics.median(latencies) * 1000 if latencies else float("nan"),
        "http_p99_ms": percentile(latencies, 0.99) * 1000,
        "to_broker_p50_ms": percentile(delays, 0.50) * 1000,
        "to_broker_p99_ms": percentile(delays, 0.99) * 1000,
        "never_reached_broker": missing,
    }


# --------------------------------------------------------------------------- the driver


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "run":
        fresh_database(sys.argv[2])
        print("RESULT " + json.dumps(run_one(sys.argv[2], int(sys.argv[3]))))
        return
    databases = [d.strip() for d in os.environ.get("BENCH_DATABASES", "sqlite,sqlite-relay,postgres").split(",") if d.strip()]
    counts = [int(n) for n in os.environ.get("BENCH_RESTING", "0,1000,10000").split(",") if n.strip()]
    offered = f"{RATE:g} orders/s offered" if RATE > 0 else "closed loop"
    print(f"open-orders benchmark: {CLIENTS} clients x {SECONDS:.0f}s per run ({offered}), resting {counts}, "
          f"{', '.join(databases)}")
    rows = []
    for database in databases:
        for resting in counts:
            done = subprocess.run([sys.executable, __file__, "run", database, str(resting)], cwd=ROOT,
                                  env=child_env(database), capture_output=True, text=True)
            lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
            if done.returncode or not lines:
                print(f"{database} {resting}: failed\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
                continue
            row = json.loads(lines[-1][7:])
            rows.append(row)
            print(f"{database:8s} resting {resting:6d}: {row['orders_per_second']:7.1f} orders/s   "
                  f"HTTP p50 {row['http_p50_ms']:7.1f} ms p99 {row['http_p99_ms']:7.1f} ms   "
                  f"to broker p50 {row['to_broker_p50_ms']:8.1f} ms p99 {row['to_broker_p99_ms']:8.1f} ms   "
                  f"({row['requests']} requests, errors {row['errors'] or 0}, never reached broker {row['never_reached_broker']})",
                  flush=True)
    by = {(r["database"], r["resting"]): r for r in rows}
    if ("sqlite", 1000) in by:
        rate = by[("sqlite", 1000)]["orders_per_second"]
        print(f"target SQLite, 1,000 resting >= 100 orders/s: {'met' if rate >= 100 else 'NOT met'} ({rate:.1f})")
    if ("postgres", 0) in by and ("postgres", 10000) in by:
        base, loaded = by[("postgres", 0)], by[("postgres", 10000)]
        drop = 1 - loaded["orders_per_second"] / base["orders_per_second"]
        print(f"target PostgreSQL intake at 10,000 resting at most 10% below 0: {'met' if drop <= 0.10 else 'NOT met'} "
              f"({loaded['orders_per_second']:.1f} vs {base['orders_per_second']:.1f} orders/s); acceptance-to-broker p99 "
              f"{base['to_broker_p99_ms']:.1f} ms at 0 -> {loaded['to_broker_p99_ms']:.1f} ms at 10,000")


if __name__ == "__main__":
    main()
