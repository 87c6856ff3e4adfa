"""The full order path against a paper broker that fails 10 % of its calls: does every order end
as the broker's books say?

Builds a fresh PostgreSQL database, opens the paper account ``faults`` with its broker settings
``{"faults": {"rate": BENCH_FAULT_RATE, "seed": BENCH_SEED, "slow_ms": 200, "report_duplicates":
true}}`` (brokers/adapters/paper.py: timeouts with and without effect, disconnects, refusals,
slow acknowledgements and duplicate trade reports, spread evenly over every place, cancel and
read), starts the system as `make run` does on PostgreSQL with Redis (`manage.py run_system
--no-market`: web server, outbox relay, Celery workers, beat with the reconciliation poll and
the outbox sweep; bench/system.py), then two client processes send BENCH_ORDERS orders over HTTP at
BENCH_RATE orders/s in all: buys above the ask (filled on arrival, in parts when the quoted volume
is short), buys far below it (they rest; half of them are cancelled a little later), sells of held
shares below the bid. The benchmark publishes the quote itself (every 0.5 s, fixed prices, random
volumes) until every accepted order has left NEW, then stops, so the books come to rest;
reconciliation then runs, faults still on, until nothing changes for BENCH_QUIET_SECONDS (or
BENCH_SETTLE_SECONDS pass).

Reported (books_compare): the order success rate (an order whose status and filled quantity are
what the broker's books say; target >= 99.9 %), orders in a wrong final state (settled here in a
state the broker contradicts; target 0), duplicates at the broker (one of our orders entered twice;
target 0), lost fills (a broker trade with no fill here, or a fill here the broker never made;
target 0), the money checks (cash = available + frozen, the ledger sums to the balance and to the
frozen cash, the orders' freezes to the account's, cash and position equal to the broker's), and
the time from acceptance to the broker call p50/p99 (the order's ``created_at`` to the paper
broker's receipt, ``PaperOrder.created_at``: the first receipt of an order sent again). It is the
path's latency only while the workers drain faster than BENCH_RATE; otherwise it is mostly time in
the queue (the report prints the rate at which orders reached the broker).

Environment: BENCH_ORDERS (10000), BENCH_RATE (10 orders/s offered by all clients), BENCH_CLIENTS
(2), BENCH_FAULT_RATE (0.1), BENCH_SEED (7), BENCH_STALE_SECONDS (10: ORDERS_SUBMITTING_STALE_SECONDS,
after which reconciliation acts on an order whose answer was lost), BENCH_QUIET_SECONDS (30),
BENCH_SETTLE_SECONDS (900), BENCH_PORT (8814), BENCH_DATABASE_URL
(postgres://postgres@127.0.0.1:5432/bench_broker_faults), BENCH_REDIS_URL (redis://127.0.0.1:6379/13).
"""

from __future__ import annotations

import http.client
import json
import multiprocessing
import os
import random
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
from bench.system import fresh_postgres, percentile, system_start, system_stop  # noqa: E402

ORDERS = int(os.environ.get("BENCH_ORDERS", "10000"))
RATE = float(os.environ.get("BENCH_RATE", "10"))
CLIENTS = int(os.environ.get("BENCH_CLIENTS", "2"))
FAULT_RATE = float(os.environ.get("BENCH_FAULT_RATE", "0.1"))
SEED = int(os.environ.get("BENCH_SEED", "7"))
STALE_SECONDS = os.environ.get("BENCH_STALE_SECONDS", "10")
QUIET_SECONDS = float(os.environ.get("BENCH_QUIET_SECONDS", "30"))
SETTLE_SECONDS = float(os.environ.get("BENCH_SETTLE_SECONDS", "900"))
PORT = int(os.environ.get("BENCH_PORT", "8814"))
DATABASE_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/bench_broker_faults")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
ACCOUNT = "faults"
SYMBOL = "600000.SH"
BID, ASK, PREV_CLOSE = "10.04", "10.05", "10.05"
HELD = 10_000_000  # shares of SYMBOL held before today (sellable)

# The paper broker's status -> the order's status once reconciled.
SETTLED_AS = {"OPEN": "SUBMITTED", "PARTIALLY_FILLED": "PARTIALLY_FILLED", "FILLED": "FILLED",
              "CANCELLED": "CANCELLED", "REJECTED": "REJECTED", "EXPIRED": "EXPIRED"}
IN_FLIGHT = ("NEW", "SUBMITTING", "UNKNOWN", "CANCEL_REQUESTED")


# --------------------------------------------------------------------------- the books compared


@dataclass
class BooksReport:
    """The back office's books of one account against its paper broker's (see books_compare)."""

    orders: int = 0
    as_broker: int = 0  # status and filled quantity as the broker's books say
    wrong_state: list[int] = field(default_factory=list)  # settled here, contradicted there
    in_flight: list[int] = field(default_factory=list)  # not resolved yet (NEW, SUBMITTING, UNKNOWN, CANCEL_REQUESTED)
    never_at_broker: list[int] = field(default_factory=list)  # sent, ended here, unknown there
    duplicates_at_broker: int = 0
    lost_fills: int = 0  # broker trades with no fill here
    extra_fills: int = 0  # fills here the broker never made (or recorded twice)
    money: list[str] = field(default_factory=list)

    @property
    def success_rate(self) -> float:
        return self.as_broker / self.orders if self.orders else 1.0

    @property
    def problems(self) -> list[str]:
        found = list(self.money)
        for label, ids in (("in a wrong final state", self.wrong_state), ("never at the broker", self.never_at_broker),
                           ("still in flight", self.in_flight)):
            if ids:
                found.append(f"{len(ids)} orders {label}: {ids[:10]}")
        for label, count in (("duplicates at the broker", self.duplicates_at_broker), ("lost fills", self.lost_fills),
                             ("fills the broker never made", self.extra_fills)):
            if count:
                found.append(f"{count} {label}")
        return found


def books_compare(account_name: str) -> BooksReport:
    """Compare every order of ``account_name`` with the paper broker's record of it, and check the
    money: cash = available + frozen, the ledger sums to cash and to frozen, the orders' freezes
    sum to the account's, cash and positions equal the broker's."""
    from django.db.models import Sum

    from brokers.models import PaperAccount, PaperOrder, PaperPosition, PaperTrade
    from orders.models import Fill, Order
    from trading.models import Account, CashEntryKind, Position

    report = BooksReport()
    account = Account.objects.get(name=account_name)
    copies = Counter(PaperOrder.objects.filter(account_name=account_name).values_list("client_ref", flat=True))
    report.duplicates_at_broker = sum(n - 1 for ref, n in copies.items() if ref and n > 1)
    at_broker = {ref: (status, filled) for ref, status, filled in PaperOrder.objects.filter(account_name=account_name)
                 .order_by("id").values_list("client_ref", "status", "filled_quantity")}
    for pk, status, filled in Order.objects.filter(account=account).values_list("pk", "status", "filled_quantity"):
        report.orders += 1
        there = at_broker.get(str(pk))
        if there is None:
            if status in IN_FLIGHT:
                report.in_flight.append(pk)
            elif status in ("CANCELLED", "EXPIRED", "REJECTED") and not filled:
                # Nothing there and nothing here: refused before the broker (risk, market rules),
                # expired unsent, or cancelled while it waited for the link after a send that never
                # reached the broker.
                report.as_broker += 1
            else:
                report.never_at_broker.append(pk)  # it traded, or works, here, and the broker never had it
            continue
        if (SETTLED_AS[there[0]], there[1]) == (status, filled):
            report.as_broker += 1
        elif status in IN_FLIGHT:
            report.in_flight.append(pk)
        else:
            report.wrong_state.append(pk)
    trades = set(PaperTrade.objects.filter(order__account_name=account_name).values_list("broker_trade_id", flat=True))
    fills = Counter(Fill.objects.filter(order__account=account).values_list("broker_trade_id", flat=True))
    report.lost_fills = len(trades - set(fills))
    report.extra_fills = sum(n for trade_id, n in fills.items() if trade_id not in trades) + sum(
        n - 1 for n in fills.values() if n > 1)
    freezes = [CashEntryKind.FREEZE, CashEntryKind.UNFREEZE]
    ledger_cash = account.ledger.exclude(kind__in=freezes).aggregate(s=Sum("amount"))["s"] or Decimal("0")
    ledger_frozen = account.ledger.filter(kind__in=freezes).aggregate(s=Sum("amount"))["s"] or Decimal("0")
    orders_frozen = Order.objects.filter(account=account).aggregate(s=Sum("frozen_amount"))["s"] or Decimal("0")
    paper = PaperAccount.objects.get(account_name=account_name)
    checks = [
        ("cash = available + frozen", account.cash, account.available + account.frozen),
        ("ledger sums to cash", ledger_cash, account.cash),
        ("ledger freezes sum to frozen", ledger_frozen, account.frozen),
        ("orders' freezes sum to frozen", orders_frozen, account.frozen),
        ("cash equals the broker's", account.cash, paper.cash),
    ]
    broker_positions = dict(PaperPosition.objects.filter(account_name=account_name).values_list("symbol", "quantity"))
    for position in Position.objects.filter(account=account).select_related("instrument"):
        checks.append((f"{position.instrument.symbol} position equals the broker's", position.quantity,
                       broker_positions.get(position.instrument.symbol, 0)))
    cent = Decimal("0.01")  # SQLite sums money as floats: compare to the cent
    report.money = [f"{label}: {left} != {right}" for label, left, right in checks
                    if Decimal(left).quantize(cent) != Decimal(right).quantize(cent)]
    return report


def acceptance_to_broker(account_name: str) -> list[float]:
    """Seconds from each order's acceptance to the broker's first receipt of it."""
    from django.db.models import Min

    from brokers.models import PaperOrder
    from orders.models import Order

    created = dict(Order.objects.filter(account__name=account_name).values_list("pk", "created_at"))
    received = (PaperOrder.objects.filter(account_name=account_name).values("client_ref")
                .annotate(first=Min("created_at")).values_list("client_ref", "first"))
    return [(first - created[int(ref)]).total_seconds() for ref, first in received if ref.isdigit() and int(ref) in created]


# --------------------------------------------------------------------------- one run (a child process)


def prepare() -> tuple[str, str]:
    """Schema, reference data, the account with its faults and held shares, two keys (trading, market data)."""
    from django.core.management import call_command

    from audit.services import SYSTEM
    from brokers.services import account_create, opening_positions_load, quotes_publish
    from trading.auth import api_key_create
    from trading.models import ApiKey

    call_command("migrate", "--noinput", verbosity=0)
    call_command("load_instruments", verbosity=0)
    faults = {"rate": FAULT_RATE, "seed": SEED, "slow_ms": 200, "report_duplicates": True}
    account_create(name=ACCOUNT, broker_kind="paper", cash=Decimal("1000000000"), broker_settings={"faults": faults})
    quotes_publish([{"symbol": SYMBOL, "last": ASK, "prev_close": PREV_CLOSE, "bid": BID, "ask": ASK,
                     "bid_volume": 100000, "ask_volume": 100000}])
    opening_positions_load(account_name=ACCOUNT, actor=SYSTEM, rows=[
        {"symbol": SYMBOL, "quantity": str(HELD), "avg_cost": "9.00", "acquired": "2020-01-02"}])
    # Its owner acknowledged the risk disclosure: a key whose owner has not may not trade (403).
    _, key = api_key_create(name="faults", accounts=[ACCOUNT], can_trade=True, market_data=False,
                            disclosure_acknowledged_by="bench")
    _, market_key = api_key_create(name="faults-market", accounts=[ACCOUNT], can_trade=False, market_data=True,
                                   disclosure_acknowledged_by="bench")
    ApiKey.objects.filter(name__startswith="faults").update(rate_limit_per_second=100000)
    return key, market_key


def order_body(n: int, rng: random.Random) -> dict[str, Any]:
    """The nth order: 5 in 10 buys above the ask (filled on arrival, in parts when the quoted volume
    is short), 3 in 10 buys far below it (they rest), 2 in 10 sells below the bid."""
    kind = n % 10
    quantity = rng.randrange(1, 30) * 100
    if kind < 5:
        side, price = "BUY", "10.15"
    elif kind < 8:
        side, price = "BUY", "9.50"
    else:
        side, price = "SELL", "9.95"
    return {"account": ACCOUNT, "symbol": SYMBOL, "side": side, "order_type": "LIMIT", "price": price,
            "quantity": quantity, "client_order_id": f"f-{n}"}


def client(key: str, worker: int, numbers: list[int], queue: Any) -> None:
    """Send the orders numbered ``numbers`` at the offered rate; cancel half of the resting ones a
    few orders later."""
    conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=120)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    rng = random.Random(SEED * 1000 + worker)
    errors: Counter[str] = Counter()
    to_cancel: list[int] = []
    cancels = 0
    pace = CLIENTS / RATE if RATE > 0 else 0.0
    next_at = time.perf_counter()
    for n in numbers:
        if pace:
            next_at += pace
            time.sleep(max(next_at - time.perf_counter(), 0))
        body = order_body(n, rng)
        conn.request("POST", "/api/v1/orders", json.dumps(body), headers)
        response = conn.getresponse()
        answer = response.read()
        if response.status != 201:
            errors[f"POST {response.status}"] += 1
            continue
        if body["price"] == "9.50" and rng.random() < 0.5:
            to_cancel.append(json.loads(answer)["id"])
        if len(to_cancel) > 3:
            conn.request("POST", f"/api/v1/orders/{to_cancel.pop(0)}/cancel", "", headers)
            response = conn.getresponse()
            response.read()
            cancels += 1
            if response.status != 202:
                errors[f"cancel {response.status}"] += 1
    queue.put((dict(errors), cancels))


def publish_quotes(market_key: str, stop: threading.Event) -> None:
    """The market: the same prices every 0.5 s with random volumes, until ``stop``."""
    conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=60)
    headers = {"Authorization": f"Bearer {market_key}", "Content-Type": "application/json"}
    rng = random.Random(SEED)
    while not stop.wait(0.5):
        quote = {"symbol": SYMBOL, "last": ASK, "bid": BID, "ask": ASK,
                 "bid_volume": rng.randrange(1, 40) * 100, "ask_volume": rng.randrange(1, 40) * 100}
        try:
            conn.request("POST", "/api/v1/market/quotes", json.dumps({"quotes": [quote]}), headers)
            conn.getresponse().read()
        except (OSError, http.client.HTTPException):
            conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=60)


def drain() -> float:
    """Wait until no accepted order waits to be sent (NEW), at most SETTLE_SECONDS; the seconds waited."""
    from django.db import connection

    from orders.models import Order

    started = time.monotonic()
    while Order.objects.filter(account__name=ACCOUNT, status="NEW").exists():
        if time.monotonic() - started > SETTLE_SECONDS:
            break
        connection.close()
        time.sleep(1)
    connection.close()
    return time.monotonic() - started


def settle() -> tuple[BooksReport, float]:
    """Wait until the comparison stops changing for QUIET_SECONDS (or SETTLE_SECONDS pass)."""
    from django.db import connection

    started = time.monotonic()
    last: tuple[Any, ...] | None = None
    quiet_since = time.monotonic()
    while True:
        report = books_compare(ACCOUNT)
        connection.close()
        state = (report.as_broker, len(report.in_flight), len(report.wrong_state), report.lost_fills)
        if state != last:
            last, quiet_since = state, time.monotonic()
        if not report.in_flight and not report.lost_fills and time.monotonic() - quiet_since >= QUIET_SECONDS:
            break
        if time.monotonic() - started > SETTLE_SECONDS:
            break
        time.sleep(2)
    return report, time.monotonic() - started


def run() -> dict[str, Any]:
    import django

    django.setup()
    from django.db import connection

    key, market_key = prepare()
    connection.close()
    log = open(ROOT / "var" / "bench_broker_faults.log", "w")  # noqa: SIM115 - closed below
    try:
        system = system_start(PORT, log, "--no-market")
    except BaseException:
        log.close()
        raise
    try:
        stop = threading.Event()
        market = threading.Thread(target=publish_quotes, args=(market_key, stop), daemon=True)
        market.start()
        queue: Any = multiprocessing.Queue()
        started = time.perf_counter()
        procs = [multiprocessing.Process(target=client, args=(key, i, list(range(i, ORDERS, CLIENTS)), queue))
                 for i in range(CLIENTS)]
        for p in procs:
            p.start()
        results = [queue.get() for _ in procs]
        for p in procs:
            p.join()
        sent_seconds = time.perf_counter() - started
        drained_seconds = drain() + sent_seconds  # the market runs until every order reached the broker
        stop.set()
        market.join()
        report, settle_seconds = settle()
        delays = acceptance_to_broker(ACCOUNT)
        faulted = fault_count()
    finally:
        system_stop(system)
        log.close()
    errors: Counter[str] = Counter()
    for errs, _ in results:
        errors.update(errs)
    return {
        "orders": report.orders, "sent_seconds": sent_seconds, "drained_seconds": drained_seconds,
        "settle_seconds": settle_seconds,
        "http_errors": dict(errors), "cancels": sum(c for _, c in results),
        "success_rate": report.success_rate, "as_broker": report.as_broker, "wrong_state": report.wrong_state,
        "in_flight": report.in_flight, "never_at_broker": report.never_at_broker,
        "duplicates_at_broker": report.duplicates_at_broker, "lost_fills": report.lost_fills,
        "extra_fills": report.extra_fills, "money": report.money, "faults": faulted,
        "to_broker_p50_ms": percentile(delays, 0.50) * 1000, "to_broker_p99_ms": percentile(delays, 0.99) * 1000,
    }


def fault_count() -> dict[str, int]:
    """What the faults left in the books and the audit trail: orders the broker refused as busy, placements
    that found it unavailable, answers lost, orders sent again, cancels refused. (Timeouts on reads and
    replayed trade reports leave no trace.)"""
    from audit.models import AuditEvent
    from brokers.adapters.paper import MSG_BUSY
    from brokers.models import PaperOrder

    events = AuditEvent.objects.filter(account=ACCOUNT, action="order.status_changed")
    return {
        "refused_busy": PaperOrder.objects.filter(account_name=ACCOUNT, message=MSG_BUSY).count(),
        "broker_unavailable": events.filter(after__event="BROKER_UNAVAILABLE").count(),
        "cancels_refused": AuditEvent.objects.filter(account=ACCOUNT, action="order.cancel_refused").count(),
        "answers_lost": events.filter(after__event="BROKER_TIMED_OUT").count(),
        "sent_again": events.filter(after__event="RECONCILED_MISSING").count(),
    }


# --------------------------------------------------------------------------- the driver


def main() -> None:
    if sys.argv[1:] == ["run"]:
        fresh_postgres(DATABASE_URL, REDIS_URL)
        print("RESULT " + json.dumps(run()))
        return
    print(f"broker-faults benchmark: {ORDERS} orders at {RATE:g} orders/s offered by {CLIENTS} clients, "
          f"fault rate {FAULT_RATE:.0%} (seed {SEED}), PostgreSQL + Redis + Celery workers + outbox relay", flush=True)
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "SQLITE_PATH")}
    env.update(DJANGO_DEBUG="0", LOG_LEVEL="WARNING", PYTHONUNBUFFERED="1", DJANGO_SETTINGS_MODULE="trading.settings",
               DATABASE_URL=DATABASE_URL, REDIS_URL=REDIS_URL, CELERY_QUEUE="bench-broker-faults",
               ORDERS_SUBMITTING_STALE_SECONDS=STALE_SECONDS)
    (ROOT / "var").mkdir(exist_ok=True)
    done = subprocess.run([sys.executable, __file__, "run"], cwd=ROOT, env=env, capture_output=True, text=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode or not lines:
        raise SystemExit(f"the run failed\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    row = json.loads(lines[-1][7:])
    print(f"accepted {row['orders']} orders in {row['sent_seconds']:.0f} s ({row['cancels']} cancels asked, HTTP "
          f"errors {row['http_errors'] or 0}: a 409 is a cancel of an order that had ended); all at the broker after "
          f"{row['drained_seconds']:.0f} s ({row['orders'] / row['drained_seconds']:.1f} orders/s); quiet "
          f"{row['settle_seconds']:.0f} s later; faults seen: {row['faults']}")
    refused = {status: n for status, n in (row["http_errors"] or {}).items() if status != "cancel 409"}
    targets = [
        # Nothing is met by orders that never got in: every order offered must have been accepted.
        ("every order offered accepted", row["orders"] == ORDERS and not refused,
         f"{row['orders']} of {ORDERS}; refused {refused or 'none'}"),
        ("order success rate >= 99.9 %", row["orders"] > 0 and row["success_rate"] >= 0.999, f"{row['success_rate']:.4%} ({row['as_broker']} of {row['orders']})"),
        ("orders in a wrong final state = 0", not row["wrong_state"], f"{len(row['wrong_state'])} {row['wrong_state'][:10]}"),
        ("duplicates at the broker = 0", not row["duplicates_at_broker"], str(row["duplicates_at_broker"])),
        ("lost fills = 0", not row["lost_fills"], f"{row['lost_fills']} (fills the broker never made: {row['extra_fills']})"),
        ("money checks hold", not row["money"], "; ".join(row["money"]) or "all"),
    ]
    for label, met, figure in targets:
        print(f"target {label}: {'met' if met else 'NOT met'} ({figure})")
    if row["in_flight"] or row["never_at_broker"]:
        print(f"unresolved: {len(row['in_flight'])} in flight {row['in_flight'][:10]}, "
              f"{len(row['never_at_broker'])} ended here but never at the broker {row['never_at_broker'][:10]}")
    print(f"acceptance to broker: p50 {row['to_broker_p50_ms']:.1f} ms, p99 {row['to_broker_p99_ms']:.1f} ms")


if __name__ == "__main__":
    main()
