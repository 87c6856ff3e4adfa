"""Order intake over HTTP on PostgreSQL, next to the floor of the same stack.

Starts gunicorn on a fresh database `bench_trading`, then two client processes
send orders (one account, unique client_order_id each, persistent connections)
for DURATION seconds; then the same against the floor endpoint (one bare
INSERT through the same stack). Prints orders/s, p50 and p99 latency, and the
ratio. Tasks are enqueued on Redis (no worker runs), so this measures intake.

Environment: BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/bench_trading),
REDIS_URL (default redis://127.0.0.1:6379/14), BENCH_SECONDS (20), BENCH_CLIENTS (2),
BENCH_WEB_WORKERS (2, one per core), BENCH_RISK_RULES ("all" to enable every risk rule),
BENCH_SKIP_FLOOR ("1": measure intake only), BENCH_WITH_RELAY ("1" to run the outbox relay on the same machine during the run; by
default no relay or worker runs, so the figure is intake alone: accepted orders
wait as NEW rows, the outbox, until a relay enqueues them).
"""

from __future__ import annotations

import http.client
import json
import multiprocessing
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATABASE_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/bench_trading")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
SECONDS = float(os.environ.get("BENCH_SECONDS", "20"))
CLIENTS = int(os.environ.get("BENCH_CLIENTS", "2"))
WEB_WORKERS = int(os.environ.get("BENCH_WEB_WORKERS", "2"))  # one per core
PORT = int(os.environ.get("BENCH_PORT", "8765"))


def server_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=DATABASE_URL,
        REDIS_URL=REDIS_URL,
        DJANGO_ROOT_URLCONF="bench.urls",
        DJANGO_DEBUG="0",
        LOG_LEVEL="WARNING",
        CELERY_QUEUE="bench-intake",
    )
    return env


def manage(*args: str) -> str:
    result = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=server_env(), check=True,
                            capture_output=True, text=True)
    return result.stdout


def recreate_database() -> None:
    import psycopg

    name = DATABASE_URL.rsplit("/", 1)[1]
    admin_url = DATABASE_URL.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def prepare() -> str:
    recreate_database()
    manage("migrate", "--noinput")
    manage("load_instruments")
    manage("create_account", "bench", "--broker", "paper", "--cash", "1000000000000")
    script = (
        "from tests import factories; factories.quote('600000.SH', prev_close='10.05', bid='10.00', ask='10.01')\n"
    )
    subprocess.run([sys.executable, "manage.py", "shell", "-c", script], cwd=ROOT, env=server_env(), check=True)
    if os.environ.get("BENCH_RISK_RULES") == "all":
        manage("risk_enable_all", "--account", "bench")
    key = manage("create_api_key", "bench", "--accounts", "bench", "--accept-disclosure", "bench").strip().splitlines()[-1]
    # Every request still pays for the per-key rate-limit check in Redis, as in
    # production, but the limit is set above what the benchmark can send.
    script = "from trading.models import ApiKey; ApiKey.objects.filter(name='bench').update(rate_limit_per_second=100000)"
    subprocess.run([sys.executable, "manage.py", "shell", "-c", script], cwd=ROOT, env=server_env(), check=True)
    return key


def client(path: str, key: str, worker: int, deadline: float, queue: multiprocessing.Queue) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=10)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    latencies: list[float] = []
    errors: dict[int, int] = {}
    n = 0
    while time.perf_counter() < deadline:
        n += 1
        body = json.dumps({"account": "bench", "symbol": "600000.SH", "side": "BUY", "order_type": "LIMIT",
                           "price": "9.90", "quantity": 100, "client_order_id": f"{path[-6:]}-{worker}-{n}"})
        start = time.perf_counter()
        conn.request("POST", path, body, headers)
        response = conn.getresponse()
        response.read()
        latencies.append(time.perf_counter() - start)
        if response.status != 201:
            errors[response.status] = errors.get(response.status, 0) + 1
    queue.put((latencies, errors))


def run(path: str, key: str) -> dict[str, float]:
    queue: multiprocessing.Queue = multiprocessing.Queue()
    # warm up every web worker
    warm = time.perf_counter() + 1.5
    client(path, key, 99, warm, queue)
    queue.get()
    deadline = time.perf_counter() + SECONDS
    started = time.perf_counter()
    procs = [multiprocessing.Process(target=client, args=(path, key, i, deadline, queue)) for i in range(CLIENTS)]
    for p in procs:
        p.start()
    results = [queue.get() for _ in procs]
    for p in procs:
        p.join()
    elapsed = time.perf_counter() - started
    latencies = sorted(x for lat, _ in results for x in lat)
    errors: dict[int, int] = {}
    for _, errs in results:
        for status, count in errs.items():
            errors[status] = errors.get(status, 0) + count
    return {
        "requests": len(latencies),
        "errors": sum(errors.values()),
        "error_statuses": errors,
        "per_second": len(latencies) / elapsed,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000,
    }


def main() -> None:
    extras = ", all risk rules" if os.environ.get("BENCH_RISK_RULES") == "all" else ""
    extras += ", outbox relay running" if os.environ.get("BENCH_WITH_RELAY") == "1" else ""
    print(f"order intake benchmark: {CLIENTS} client processes x {SECONDS:.0f}s, gunicorn {WEB_WORKERS} workers, {DATABASE_URL}{extras}")
    key = prepare()
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "trading.wsgi:application", "-b", f"127.0.0.1:{PORT}", "-w", str(WEB_WORKERS),
         "--access-logfile", "-" if os.environ.get("BENCH_ACCESS_LOG") else "/dev/null", "--log-level", "warning"],
        cwd=ROOT, env=server_env(),
    )
    relay = None
    if os.environ.get("BENCH_WITH_RELAY") == "1":
        # The outbox relay moving owed orders to Redis while orders arrive, on the same machine.
        relay = subprocess.Popen([sys.executable, "manage.py", "run_outbox_relay"], cwd=ROOT, env=server_env(),
                                 stdout=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                http.client.HTTPConnection("127.0.0.1", PORT, timeout=1).request("GET", "/healthz")
                break
            except OSError:
                time.sleep(0.1)
        floor = run("/bench/insert", key) if os.environ.get("BENCH_SKIP_FLOOR") != "1" else None
        intake = run("/api/v1/orders", key)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(10)
        if relay is not None:
            relay.send_signal(signal.SIGTERM)
            relay.wait(10)
    for name, figures in (("floor (bare INSERT)", floor), ("order intake", intake)):
        if figures is None:
            continue
        print(f"{name:22s} {figures['per_second']:8.1f} req/s   p50 {figures['p50_ms']:6.2f} ms   p99 {figures['p99_ms']:6.2f} ms"
              f"   ({figures['requests']} requests, {figures['errors']} errors {figures['error_statuses'] or ''})")
    if floor is not None:
        print(f"intake / floor ratio   {intake['per_second'] / floor['per_second']:.2f}")
    print(f"targets: >= 300 orders/s: {'met' if intake['per_second'] >= 300 else 'NOT met'}; "
          f"p99 < 25 ms: {'met' if intake['p99_ms'] < 25 else 'NOT met'}")
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()


if __name__ == "__main__":
    main()
