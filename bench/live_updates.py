"""Live-update latency: from an order's state change to a websocket client, on the real stack.

Starts, on a fresh PostgreSQL database and a Redis database: daphne (the ASGI server: REST API and
/ws/live/), a Celery worker (2 processes), the outbox relay and the live relay, as `make run` does with
DATABASE_URL and REDIS_URL. Connects BENCH_CLIENTS websocket clients (50) with an API key of the
account, then posts BENCH_ORDERS marketable buys (300) over the API at BENCH_RATE a second (10):
each goes NEW (the web process) -> SUBMITTING -> SUBMITTED -> FILLED (the worker), four order
events, so 300 orders make 1,200 order state changes, each delivered to 50 clients.

The latency of one delivery is the client's receipt time minus the event's time, taken in the
transaction that changed the order (before its commit), so it includes the commit, the numbering,
the channel layer, daphne and the client's own event loop. Prints p50/p99/max over every delivery
and over each event's slowest client, the events missing, and the target (p99 < 250 ms).

Environment: BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/bench_live),
BENCH_REDIS_URL (redis://127.0.0.1:6379/13), BENCH_PORT (8766), BENCH_CLIENTS, BENCH_ORDERS,
BENCH_RATE.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATABASE_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/bench_live")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
PORT = int(os.environ.get("BENCH_PORT", "8766"))
CLIENTS = int(os.environ.get("BENCH_CLIENTS", "50"))
ORDERS = int(os.environ.get("BENCH_ORDERS", "300"))
RATE = float(os.environ.get("BENCH_RATE", "10"))
TARGET_P99_MS = 250.0
STATES_PER_ORDER = 4  # NEW (created), SUBMITTING, SUBMITTED, FILLED


def server_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(DATABASE_URL=DATABASE_URL, REDIS_URL=REDIS_URL, DJANGO_DEBUG="0", LOG_LEVEL="WARNING",
               CELERY_QUEUE="bench-live", ORDERS_DISPATCH="relay")
    return env


def manage(*args: str) -> str:
    result = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=server_env(), check=True,
                            capture_output=True, text=True)
    return result.stdout


def prepare() -> str:
    import psycopg
    import redis

    name = DATABASE_URL.rsplit("/", 1)[1]
    with psycopg.connect(DATABASE_URL.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    redis.Redis.from_url(REDIS_URL).flushdb()
    manage("migrate", "--noinput")
    manage("load_instruments")
    manage("create_account", "bench", "--broker", "paper", "--cash", "1000000000000")
    script = ("from tests import factories; factories.quote('600000.SH', prev_close='10.05', bid='10.00', ask='10.01', "
              "bid_volume=100000000, ask_volume=100000000)\n")
    subprocess.run([sys.executable, "manage.py", "shell", "-c", script], cwd=ROOT, env=server_env(), check=True,
                   capture_output=True)
    key = manage("create_api_key", "bench", "--accounts", "bench", "--accept-disclosure", "bench").strip().splitlines()[-1]
    manage("shell", "-c", "from trading.models import ApiKey; ApiKey.objects.filter(name='bench').update(rate_limit_per_second=100000)")
    return key


def start(name: str, command: list[str]) -> subprocess.Popen[bytes]:
    log = open(ROOT / "var" / f"bench-live-{name}.log", "wb")  # noqa: SIM115 - closed with the process
    return subprocess.Popen(command, cwd=ROOT, env=server_env(), stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)


def wait_for_port() -> None:
    for _ in range(300):
        try:
            connection = http.client.HTTPConnection("127.0.0.1", PORT, timeout=1)
            connection.request("GET", "/healthz")
            connection.getresponse().read()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("daphne did not start")


class Client:
    def __init__(self) -> None:
        self.latencies: dict[tuple[int, str], float] = {}  # (order id, status) -> seconds
        self.seqs: list[int] = []


async def listen(key: str, client: Client, ready: asyncio.Event, stop: asyncio.Event) -> None:
    import websockets

    async with websockets.connect(f"ws://127.0.0.1:{PORT}/ws/live/", additional_headers={"Authorization": f"Bearer {key}"},
                                  origin=f"http://127.0.0.1:{PORT}", max_queue=None) as socket:  # type: ignore[arg-type]
        json.loads(await socket.recv())  # hello
        ready.set()
        while not stop.is_set():
            try:
                raw = await asyncio.wait_for(socket.recv(), 0.5)
            except TimeoutError:
                continue
            received = time.time()
            event = json.loads(raw)
            if event.get("type") != "event":
                continue
            client.seqs.append(event["seq"])
            if event["kind"] == "order":
                at = datetime.fromisoformat(event["at"]).timestamp()
                client.latencies[(event["data"]["id"], event["data"]["status"])] = received - at


def post_orders(key: str, count: int, rate: float, done: threading.Event) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", PORT, timeout=30)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    started = time.perf_counter()
    for n in range(count):
        pause = started + n / rate - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
        body = json.dumps({"account": "bench", "symbol": "600000.SH", "side": "BUY", "order_type": "LIMIT",
                           "price": "10.01", "quantity": 100, "client_order_id": f"live-{n}"})
        connection.request("POST", "/api/v1/orders", body, headers)
        response = connection.getresponse()
        response.read()
        if response.status != 201:
            print(f"order {n}: HTTP {response.status}", file=sys.stderr)
    done.set()


async def measure(key: str) -> list[Client]:
    clients = [Client() for _ in range(CLIENTS)]
    readies = [asyncio.Event() for _ in clients]
    stop = asyncio.Event()
    tasks = [asyncio.create_task(listen(key, c, r, stop)) for c, r in zip(clients, readies, strict=True)]
    for ready in readies:
        await asyncio.wait_for(ready.wait(), 60)
    done = threading.Event()
    threading.Thread(target=post_orders, args=(key, ORDERS, RATE, done), daemon=True).start()
    expected = ORDERS * STATES_PER_ORDER
    deadline = None
    while True:
        await asyncio.sleep(0.5)
        if done.is_set() and deadline is None:
            deadline = time.monotonic() + 60
        if all(len(c.latencies) >= expected for c in clients) or (deadline and time.monotonic() > deadline):
            break
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    return clients


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(len(ordered) * fraction) - 1))]


def main() -> None:
    print(f"live-update benchmark: {CLIENTS} websocket clients, {ORDERS} orders at {RATE:.0f}/s "
          f"({ORDERS * STATES_PER_ORDER} order state changes), daphne + Celery worker (2) + outbox relay + live relay, "
          f"{DATABASE_URL}, {REDIS_URL}")
    (ROOT / "var").mkdir(exist_ok=True)
    key = prepare()
    python = sys.executable
    processes = [
        start("daphne", [python, "-m", "daphne", "-b", "127.0.0.1", "-p", str(PORT), "trading.asgi:application"]),
        start("worker", [python, "-m", "celery", "-A", "trading", "worker", "-Q", "bench-live", "--concurrency", "2",
                         "--loglevel", "WARNING"]),
        start("relay", [python, "manage.py", "run_outbox_relay"]),
        start("live", [python, "manage.py", "run_live_relay"]),
    ]
    try:
        wait_for_port()
        clients = asyncio.run(measure(key))
    finally:
        for process in processes:
            try:
                os.killpg(process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for process in processes:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
    every = [ms * 1000 for c in clients for ms in c.latencies.values()]
    events = {k for c in clients for k in c.latencies}
    slowest = [max(c.latencies[k] for c in clients if k in c.latencies) * 1000 for k in events]
    expected = ORDERS * STATES_PER_ORDER
    missing = sum(expected - len(c.latencies) for c in clients)
    gaps = sum(1 for c in clients for a, b in zip(sorted(c.seqs), sorted(c.seqs)[1:], strict=False) if b != a + 1)
    if not every:
        print("no event received")
        sys.exit(1)
    print(f"order state changes seen: {len(events)} of {expected}; deliveries {len(every)} "
          f"({missing} missing, {gaps} gaps in the numbers)")
    print(f"every delivery        p50 {statistics.median(every):7.1f} ms   p99 {percentile(every, 0.99):7.1f} ms   "
          f"max {max(every):7.1f} ms")
    print(f"slowest client/event  p50 {statistics.median(slowest):7.1f} ms   p99 {percentile(slowest, 0.99):7.1f} ms")
    p99 = percentile(every, 0.99)
    print(f"target: p99 < {TARGET_P99_MS:.0f} ms: {'met' if p99 < TARGET_P99_MS else 'NOT met'}")
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()


if __name__ == "__main__":
    main()
