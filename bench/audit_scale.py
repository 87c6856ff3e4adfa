"""The audit log at scale: one million events and 200,000 orders in PostgreSQL.

Fills a fresh database (COPY: 20 accounts, 200,000 orders over 60 trading days, fills for most of
them, and BENCH_EVENTS audit events: each order's creation, status changes and fills, the cash
events, and operator and configuration events), seals it (audit/sealing.py), then measures:

- the compliance pages through the Django test client, logged in as a member of the Compliance
  role: the search unfiltered and under each filter (account, actor, event type, symbol, order,
  a time range, account + day), an older page (by key), the plain audit list
  (/admin/audit/auditevent/), one order's timeline, one account's day; median and worst of
  BENCH_REPEAT runs each, against 300 ms;
- the CSV export of the whole log streams: a child process exports every event and another one
  day's (~1/60 of them); their peak RSS must be about the same (memory stays flat);
- ``verify_audit``'s rate over the whole chain (a full walk), against 50,000 events/s.

How the figures are taken, and how to read them on a shared machine:

- a page: wall-clock time of the whole request in the test client (middleware, queries,
  templates), median and worst of BENCH_REPEAT after one warm-up; then one more request with its
  queries captured gives "SQL n ms in k queries" (the database's share, as Django times the
  round trips; the rest is Python);
- the export: a child process streams the response. Figures: its rows, bytes and seconds, when
  the first row arrived, and its peak RSS (VmHWM) before and after;
- verify: wall-clock seconds and events/s, and the CPU seconds: this process (time.process_time)
  and PostgreSQL's. PostgreSQL's share is the
  CPU time of the database's backends. Every 0.1 s a thread lists them (pg_stat_activity) and
  reads each one's /proc/<pid>/stat (so the server must be on this host). "events per CPU-second
  in all" divides the events by the sum of the three. Other load on the machine changes it much
  less than the wall time.
  With BENCH_COLD=1 this database's files are first dropped from the OS page cache (posix_fadvise
  DONTNEED, other databases untouched; PostgreSQL's shared_buffers keep what they hold), as after
  a restart; this needs read access to the server's data directory.

After the fill the database is vacuumed and analysed, as autovacuum would leave it (the visibility
map lets counts use index-only scans; this machine's server runs with autovacuum off).

Environment: BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/h_compliance_bench),
BENCH_EVENTS (1,000,000), BENCH_ORDERS (200,000), BENCH_REPEAT (7), BENCH_REUSE=1 (keep a database
filled by an earlier run with the same sizes; it is made if it does not exist), BENCH_COLD=1.
"""

from __future__ import annotations

import json
import os
import random
import resource
import statistics
import subprocess
import sys
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.system import django_in_process, recreate_postgres  # noqa: E402

DATABASE_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/h_compliance_bench")
EVENTS = int(os.environ.get("BENCH_EVENTS", "1000000"))
ORDERS = int(os.environ.get("BENCH_ORDERS", "200000"))
REPEAT = int(os.environ.get("BENCH_REPEAT", "7"))
ACCOUNTS = 20
DAYS = 60
PAGE_TARGET_MS = 300.0
VERIFY_TARGET = 50_000.0
SHANGHAI = ZoneInfo("Asia/Shanghai")
FIRST_DAY = date(2026, 6, 1)


def recreate_database() -> None:
    recreate_postgres(DATABASE_URL)


def setup_django() -> None:
    django_in_process(DATABASE_URL)


# --------------------------------------------------------------------------- the data


def trading_days() -> list[date]:
    days, day = [], FIRST_DAY
    while len(days) < DAYS:
        if day.weekday() < 5:
            days.append(day)
        day += timedelta(days=1)
    return days


STATUSES = ["FILLED"] * 6 + ["CANCELLED"] * 2 + ["REJECTED", "SUBMITTED"]


def order_of(index: int, first_order_id: int, accounts: list, instruments: list, days: list[date],
             per_order: int) -> tuple[tuple, tuple | None, list[tuple]]:
    """Order ``index``: its row, its fill row (or None) and its audit events, the same on every call."""
    rnd = random.Random(index)
    order_id = first_order_id + index
    account = accounts[index % ACCOUNTS]
    inst = instruments[rnd.randrange(len(instruments))]
    day = days[index * DAYS // ORDERS]
    at = datetime(day.year, day.month, day.day, 9, 30, tzinfo=SHANGHAI) + timedelta(seconds=(index * 4) % 14400)
    side = rnd.choice(("BUY", "SELL"))
    quantity = rnd.randint(1, 50) * 100
    price = f"{rnd.randint(500, 3000) / 100:.2f}"
    status = STATUSES[index % len(STATUSES)]
    filled = quantity if status == "FILLED" else (quantity // 2 // 100 * 100 if status == "CANCELLED" else 0)
    verdicts = json.dumps([{"rule": "max_order_amount", "passed": True, "action": "REJECT", "message": ""}])
    order_row = (order_id, account.pk, inst.pk, f"c{index:07d}", f"s{index % 7}", side, "LIMIT", price, quantity,
                 filled, "0", "0", "0", "0", 0, status, "", f"B{index}", verdicts, "api", "bench", day, at, at)
    symbol = f"{inst.code}.{inst.exchange}"
    fill_row = None
    trail = [("order.created", None, {"client_order_id": f"c{index:07d}", "symbol": symbol, "side": side,
                                      "quantity": quantity, "price": price, "strategy": f"s{index % 7}"}),
             ("order.status_changed", {"status": "NEW"}, {"status": "SUBMITTING", "event": "SUBMIT_STARTED"}),
             ("order.status_changed", {"status": "SUBMITTING"}, {"status": "SUBMITTED", "event": "BROKER_ACCEPTED"})]
    if filled:
        amount = f"{filled * float(price):.2f}"
        fill_row = (order_id, f"T{index}", filled, price, amount, "5", "0", "0", "0", "5", at + timedelta(seconds=1), day,
                    at + timedelta(seconds=1))
        trail.append(("order.filled", None, {"fill": index, "quantity": filled, "price": price, "fees": "5.00"}))
        trail.append(("cash.fill", None, {"amount": f"-{amount}", "cash": "1", "frozen": "0", "order": order_id}))
    if status != "SUBMITTED":
        trail.append(("order.status_changed", {"status": "SUBMITTED"}, {"status": status, "event": status}))
    while len(trail) < per_order:
        trail.append(("cash.freeze", None, {"amount": "100.00", "cash": "1", "frozen": "100.00", "order": order_id}))
    events = []
    for offset, (action, before, after) in enumerate(trail[:per_order]):
        on_account = action.startswith("cash.")
        by_broker = action in ("order.filled", "cash.fill") or after.get("event") in ("BROKER_ACCEPTED", "FILLED", "CANCELLED")
        events.append((at + timedelta(milliseconds=offset), "broker" if by_broker else "api_key",
                       "paper" if by_broker else f"key{index % 5}", action, "account" if on_account else "order",
                       str(account.pk if on_account else order_id), account.name,
                       json.dumps(before) if before else None, json.dumps(after), ""))
    return order_row, fill_row, events


def fill_database() -> None:
    """Accounts, orders, fills and audit events by COPY (generated as they are written, so memory
    stays small); then the chain sealed."""
    from django.core.management import call_command
    from django.db import connection

    from trading.models import Account, Instrument

    call_command("migrate", "--noinput", verbosity=0)
    call_command("load_instruments", verbosity=0, stdout=open(os.devnull, "w"))  # noqa: SIM115
    accounts = Account.objects.bulk_create([Account(name=f"acct{n:02d}", display_name=f"acct{n:02d}", cash=10**8)
                                            for n in range(ACCOUNTS)])
    instruments = list(Instrument.objects.filter(board="MAIN", is_st=False).order_by("code")[:50])
    days = trading_days()
    per_order = max(1, EVENTS * 4 // 5 // ORDERS)  # four fifths of the log are order events
    started = time.monotonic()
    with connection.cursor() as cursor:
        cursor.execute("SELECT nextval(pg_get_serial_sequence('orders_order', 'id'))")
        first_order_id = cursor.fetchone()[0]
    raw = connection.cursor().connection  # psycopg 3

    def orders():
        for index in range(ORDERS):
            yield order_of(index, first_order_id, accounts, instruments, days, per_order)

    written = 0
    with raw.cursor() as cursor:
        fills = []
        with cursor.copy("COPY orders_order (id, account_id, instrument_id, client_order_id, strategy, side, order_type, price, "
                         "quantity, filled_quantity, filled_amount, fees_paid, commission_charged, frozen_amount, frozen_quantity, "
                         "status, status_reason, broker_order_id, risk_verdicts, source, submitted_by, trading_day, created_at, "
                         "updated_at) FROM STDIN") as copy:
            for order_row, fill_row, _ in orders():
                copy.write_row(order_row)
                if fill_row:
                    fills.append(fill_row)
        cursor.execute("SELECT setval(pg_get_serial_sequence('orders_order', 'id'), %s)", [first_order_id + ORDERS])
        with cursor.copy("COPY orders_fill (order_id, broker_trade_id, quantity, price, amount, commission, stamp_duty, "
                         "transfer_fee, other_fees, fees, filled_at, trading_day, created_at) FROM STDIN") as copy:
            for fill_row in fills:
                copy.write_row(fill_row)
        columns = "occurred_at, actor_type, actor, action, object_type, object_id, account, before, after, reason"
        with cursor.copy(f"COPY audit_auditevent ({columns}) FROM STDIN") as copy:
            others = max(EVENTS - ORDERS * per_order, 0)  # operators and configuration, among the orders
            for index, (_, _, events) in enumerate(orders()):
                for row in events:
                    copy.write_row(row)
                written += len(events)
                at = events[0][0] + timedelta(milliseconds=500)
                for extra in range(others // ORDERS + (1 if index < others % ORDERS else 0)):
                    copy.write_row((at + timedelta(microseconds=extra), "user", f"operator{index % 4}", "risk.rule_saved",
                                    "risk_rule", str(index % 30), "", json.dumps({"params": {"max_amount": "100000"}}),
                                    json.dumps({"params": {"max_amount": "200000"}}), "limit raised"))
                    written += 1
    raw.commit()
    print(f"  filled: {ORDERS:,} orders, {len(fills):,} fills, {written:,} audit events in {time.monotonic() - started:.0f} s")
    started = time.monotonic()
    from audit.sealing import audit_seal

    sealed = 0
    while count := audit_seal():
        sealed += count
    print(f"  sealed {sealed:,} events in {time.monotonic() - started:.0f} s")
    started = time.monotonic()
    with connection.cursor() as cursor:  # as autovacuum leaves a table after a bulk insert (the visibility map)
        cursor.execute("VACUUM (ANALYZE)")
    print(f"  vacuumed and analysed in {time.monotonic() - started:.0f} s")


def database_exists() -> bool:
    import psycopg

    name = DATABASE_URL.rsplit("/", 1)[1]
    with psycopg.connect(DATABASE_URL.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is not None


def database_ready() -> bool:
    from django.db import connection

    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM orders_order")
            orders = cursor.fetchone()[0]
            cursor.execute("SELECT count(*) FROM audit_auditseal")
            return orders == ORDERS and cursor.fetchone()[0] > 0
    except Exception:  # no tables yet
        return False


# --------------------------------------------------------------------------- the measurements


def compliance_client():
    from django.contrib.auth.models import User

    from tests.staff_helpers import staff_member, verified_client

    User.objects.filter(username="bench.compliance").delete()
    return verified_client(staff_member("bench.compliance", "Compliance"))


def time_page(client, url: str) -> tuple[float, float, float, int]:
    """Median and worst of REPEAT runs, and the time of the page's SQL (one more run, its queries
    captured: the server's share of a page, the rest is Python)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    response = client.get(url)  # warm: the first run pays for the plan and the cache
    assert response.status_code == 200, (url, response.status_code)
    times = []
    for _ in range(REPEAT):
        started = time.perf_counter()
        response = client.get(url)
        times.append((time.perf_counter() - started) * 1000)
    with CaptureQueriesContext(connection) as queries:
        client.get(url)
    sql_ms = sum(float(query["time"]) for query in queries.captured_queries) * 1000
    return statistics.median(times), max(times), sql_ms, len(queries.captured_queries)


def measure_pages() -> list[tuple[str, float, float]]:
    from django.db.models import Max, Min

    from audit.models import AuditEvent
    from orders.models import Order

    client = compliance_client()
    order = Order.objects.filter(status="FILLED").order_by("id")[ORDERS // 2 : ORDERS // 2 + 1].get()
    bounds = AuditEvent.objects.aggregate(low=Min("id"), high=Max("id"))
    middle = (bounds["low"] + bounds["high"]) // 2
    day = trading_days()[DAYS // 2].isoformat()
    symbol = order.instrument.symbol
    base = "/admin/compliance/compliancelog/"
    pages = [
        ("search, no filter", base),
        ("search, older page (by key)", f"{base}?before={middle}"),
        ("search, account", f"{base}?account=acct07"),
        ("search, actor", f"{base}?actor=operator2"),
        ("search, event type", f"{base}?action=order.filled"),
        ("search, event type prefix", f"{base}?action=cash."),
        ("search, symbol", f"{base}?symbol={symbol}"),
        ("search, order", f"{base}?order={order.pk}"),
        ("search, time range (one hour)", f"{base}?since={day}+10:00&until={day}+11:00"),
        ("search, account + day", f"{base}?account=acct03&since={day}&until={day}"),
        ("search, account + actor + type", f"{base}?account=acct03&actor=paper&action=order.filled"),
        ("audit list (admin changelist)", "/admin/audit/auditevent/"),
        ("audit list, action filter", "/admin/audit/auditevent/?action__exact=order.filled"),
        ("order timeline", f"{base}order/{order.pk}/"),
        ("account day", f"{base}account/acct05/{day}/"),
    ]
    results = []
    for label, url in pages:
        median, worst, sql_ms, queries = time_page(client, url)
        results.append((label, median, worst))
        print(f"  {label:<34} median {median:7.1f} ms  worst {worst:7.1f} ms  {'ok' if median < PAGE_TARGET_MS else 'OVER'}"
              f"  (SQL {sql_ms:5.1f} ms in {queries} queries)")
    return results


EXPORT_CHILD = """
import os, sys, time
sys.path.insert(0, {root!r})
os.environ["DATABASE_URL"] = {url!r}
os.environ.pop("REDIS_URL", None)
os.environ["DJANGO_DEBUG"] = "0"
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "trading.settings")
import django
django.setup()
from django.test.utils import setup_test_environment
setup_test_environment()
from tests.staff_helpers import staff_member, verified_client
from django.contrib.auth.models import User
from audit.models import AuditEvent
User.objects.filter(username="bench.export").delete()
client = verified_client(staff_member("bench.export", "Compliance"))
query = {query!r}
def high_water_kb():  # this process's own peak RSS (ru_maxrss would count the parent's at fork)
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
before = high_water_kb()
started = time.perf_counter()
response = client.get("/admin/compliance/compliancelog/export.csv" + query)
rows = size = 0
first = None
for chunk in response.streaming_content:
    rows += chunk.count(b"\\n")
    size += len(chunk)
    if first is None and rows > 1:  # the header and a first row
        first = time.perf_counter() - started
seconds = time.perf_counter() - started
print(rows - 1, size, seconds, before, high_water_kb(), first if first is not None else seconds)
"""


def measure_export() -> list[tuple[str, int, float, int, int]]:
    day = trading_days()[-1].isoformat()
    results = []
    for label, query in (("one day", f"?since={day}&until={day}"), ("every event", "")):
        code = EXPORT_CHILD.format(root=str(ROOT), url=DATABASE_URL, query=query)
        child = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        if child.returncode:
            raise SystemExit(f"the export child failed:\n{child.stderr}")
        out = child.stdout.split()
        rows, size, seconds, before_kb, peak_kb = int(out[0]), int(out[1]), float(out[2]), int(out[3]), int(out[4])
        first = float(out[5])
        results.append((label, rows, seconds, before_kb, peak_kb))
        print(f"  CSV export of {label:<14} {rows:>9,} rows {size / 2**20:7.1f} MiB in {seconds:6.1f} s "
              f"({rows / seconds:,.0f} rows/s), first row after {first:.2f} s; peak RSS {peak_kb / 1024:6.1f} MiB "
              f"(set up, before the export: {before_kb / 1024:.1f} MiB)")
    return results


class ServerCpu:
    """The CPU seconds PostgreSQL's backends on this database spend while it runs (a ``with`` block):
    every 0.1 s the backends are listed (pg_stat_activity) and each one's CPU read from
    /proc/<pid>/stat, so it needs the server on this host; a backend that exits (a worker's) counts
    up to its last sample. None when /proc shows no backend."""

    def __init__(self) -> None:
        import threading

        self.seconds: float | None = None
        self._first: dict[int, float] = {}
        self._last: dict[int, float] = {}
        self._stop, self._ready = threading.Event(), threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    @staticmethod
    def _cpu(pid: int) -> float | None:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def _pids(self, conn) -> list[int]:
        return [pid for (pid,) in conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                                               "AND pid <> pg_backend_pid()")]

    def _sample(self) -> None:
        import psycopg

        with psycopg.connect(DATABASE_URL, autocommit=True) as conn:
            for pid in self._pids(conn):  # those already there count from now
                cpu = self._cpu(pid)
                if cpu is not None:
                    self._first[pid] = self._last[pid] = cpu
            self._ready.set()
            while True:
                for pid in self._pids(conn):
                    cpu = self._cpu(pid)
                    if cpu is not None:
                        self._first.setdefault(pid, 0.0)
                        self._last[pid] = cpu
                if self._stop.wait(0.1):
                    return

    def __enter__(self) -> ServerCpu:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        if self._last:
            self.seconds = sum(self._last[pid] - self._first[pid] for pid in self._last)


def evict_database_cache() -> str:
    """Drop this database's files from the OS page cache (posix_fadvise DONTNEED on each file of its
    directory: other databases keep theirs), as after a restart. PostgreSQL's own shared_buffers
    keep what they hold. Needs the server on this host and read access to its data directory."""
    import psycopg

    with psycopg.connect(DATABASE_URL, autocommit=True) as conn:
        row = conn.execute("SELECT current_setting('data_directory') || '/base/' || oid FROM pg_database "
                           "WHERE datname = current_database()").fetchone()
    directory = Path(row[0])
    try:
        names = list(directory.iterdir())
    except OSError as exc:
        return f"cache not evicted ({exc})"
    for name in names:
        fd = os.open(name, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)
    return f"cold: {len(names)} files of {directory} evicted from the page cache"


def measure_verify() -> tuple[int, float]:
    """A full walk: the wall-clock rate, and the CPU seconds spent (this process and the database
    server's backends), which the machine's other load does not change much."""
    from audit.models import AuditCheckpoint
    from audit.sealing import audit_verify

    cold = evict_database_cache() if os.environ.get("BENCH_COLD") == "1" else "warm"
    with ServerCpu() as server:
        started, cpu = time.perf_counter(), time.process_time()
        result = audit_verify(full=True)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    assert result.ok, result.problem
    AuditCheckpoint.objects.all().delete()  # the next run walks it all again
    walked, rate = result.walked, result.walked / seconds
    total = cpu + (server.seconds or 0.0)
    server_text = f"{server.seconds:.1f} s" if server.seconds is not None else "not seen (server on another host?)"
    print(f"  verify_audit, full walk ({cold}): {walked:,} events in {result.seals} seals, {seconds:.1f} s wall, "
          f"{rate:,.0f} events/s  {'ok' if rate > VERIFY_TARGET else 'UNDER'} (target > {VERIFY_TARGET:,.0f})")
    print(f"      CPU: this process {cpu:.1f} s, PostgreSQL {server_text}; "
          f"{walked / total:,.0f} events per CPU-second in all; (load average {os.getloadavg()[0]:.1f})")
    return walked, rate


def main() -> None:
    print(f"audit at scale: {DATABASE_URL}, {EVENTS:,} events, {ORDERS:,} orders "
          f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
    if os.environ.get("BENCH_REUSE") != "1" or not database_exists():
        recreate_database()
    setup_django()
    from django.test.utils import setup_test_environment

    setup_test_environment()  # the test client's host, no real mail
    from django.core.management import call_command

    call_command("migrate", "--noinput", verbosity=0)  # also puts the roles' permissions in line (staff/roles.py)
    if not database_ready():
        if os.environ.get("BENCH_REUSE") == "1":
            recreate_database()
            from django.db import connection

            connection.close()
        fill_database()
    print(f"pages (Django test client as a Compliance member; target: median < {PAGE_TARGET_MS:.0f} ms):")
    pages = measure_pages()
    print("export (streams: the peak memory of every event ~ that of one day):")
    exports = measure_export()
    print("verification:")
    _walked, rate = measure_verify()
    slow = [label for label, median, _ in pages if median >= PAGE_TARGET_MS]
    growth = (exports[1][4] - exports[0][4]) / 1024
    print(f"summary: {len(pages) - len(slow)}/{len(pages)} pages under {PAGE_TARGET_MS:.0f} ms"
          f"{' (over: ' + ', '.join(slow) + ')' if slow else ''}; export of every event peaks {growth:+.1f} MiB over "
          f"one day; verify {rate:,.0f} events/s (target {VERIFY_TARGET:,.0f}); "
          f"peak RSS of this process {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
