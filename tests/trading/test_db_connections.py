"""PostgreSQL connections stay bounded under ASGI: 50 concurrent clients on one web process.

Under daphne every request runs on a thread of its own; with persistent per-thread connections
(CONN_MAX_AGE) one process held a connection per thread it had ever used and a default PostgreSQL
(max_connections 100) ran out ("too many clients already"). Connections now come from a pool.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from tests import factories
from trading.models import ApiKey
from trading.services import multi_statement_reads

ROOT = Path(__file__).resolve().parents[2]
CLIENTS = 50
ORDERS_PER_CLIENT = 3
POOL_MAX = 4


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _database_url() -> str:
    db = settings.DATABASES["default"]
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def _settings_in_a_new_process(entry: str, **env: str) -> dict:
    script = (f"import json, {entry}; from django.conf import settings; "
              "db = settings.DATABASES['default']; print(json.dumps([db['CONN_MAX_AGE'], db['OPTIONS'].get('pool')]))")
    environ = {k: v for k, v in os.environ.items() if not k.startswith("DB_POOL")}
    environ.update(DATABASE_URL="postgres://u@127.0.0.1:5432/x", DJANGO_SETTINGS_MODULE="trading.settings", **env)
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=environ, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_the_asgi_server_draws_connections_from_a_bounded_pool_and_other_processes_keep_one() -> None:
    assert _settings_in_a_new_process("trading.asgi") == [0, {"min_size": 1, "max_size": 10, "timeout": 10.0}]
    assert _settings_in_a_new_process("trading.asgi", DB_POOL_MAX_SIZE="25")[1]["max_size"] == 25
    assert _settings_in_a_new_process("trading.asgi", DB_POOL="0") == [60, None]
    # gunicorn's sync workers, Celery, the relay and the market: one thread, one persistent connection.
    assert _settings_in_a_new_process("trading.wsgi") == [60, None]


@pytest.mark.usefixtures("require_postgres")
def test_one_round_trip_reads_work_on_a_pooled_connection(db) -> None:
    """The hot path's multi-statement reads need client-side binding; a pooled connection keeps it."""
    from django.db.utils import ConnectionHandler

    handler = ConnectionHandler({"default": {**settings.DATABASES["default"], "CONN_MAX_AGE": 0,
                                             "OPTIONS": {"pool": {"min_size": 1, "max_size": 2}}}})
    pooled = handler["default"]
    try:
        with pooled.cursor() as cursor:
            # What trading.services.selects_run sends when multi_statement_reads() holds.
            cursor.execute("SELECT 1; SELECT %s; SELECT %s, %s", [2, 3, 4])
            rows = [cursor.fetchall()]
            while cursor.nextset():
                rows.append(cursor.fetchall())
        assert [[tuple(r) for r in result] for result in rows] == [[(1,)], [(2,)], [(3, 4)]]
        assert pooled.pool is not None and not pooled.settings_dict["OPTIONS"].get("server_side_binding")
        assert multi_statement_reads()
    finally:
        pooled.close()
        pooled.close_pool()


@pytest.mark.slow
@pytest.mark.usefixtures("require_postgres")
@pytest.mark.django_db(transaction=True)
def test_fifty_concurrent_clients_on_daphne_use_at_most_the_pool(tmp_path: Path) -> None:
    import psycopg

    factories.quote("600000.SH", prev_close="10.05", bid="10.00", ask="10.01")
    factories.account("conn", cash="1000000000")
    key = factories.api_key("conn", accounts=["conn"])
    ApiKey.objects.filter(name="conn").update(rate_limit_per_second=100000)
    connection.close()

    app_name = f"pool-test-{os.getpid()}"
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_DEBUG" and not k.startswith("DB_POOL")}
    env.update(DATABASE_URL=_database_url(), DB_POOL_MAX_SIZE=str(POOL_MAX), PGAPPNAME=app_name, LOG_LEVEL="WARNING",
               DJANGO_DEBUG="0")
    log = open(tmp_path / "daphne.log", "w+")  # noqa: SIM115 - read back on failure
    # As run_system starts the web server.
    server = subprocess.Popen([sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "trading.asgi:application"],
                              cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    admin = psycopg.connect(_database_url().rsplit("/", 1)[0] + "/postgres", autocommit=True)
    peak = 0
    sampling = True

    def sample() -> None:
        nonlocal peak
        while sampling:
            count = admin.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", [app_name]).fetchone()
            peak = max(peak, count[0] if count else 0)
            time.sleep(0.02)

    statuses: list[int] = []
    lock = threading.Lock()

    def client(index: int, barrier: threading.Barrier) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        barrier.wait(30)
        for n in range(ORDERS_PER_CLIENT):
            body = json.dumps({"account": "conn", "symbol": "600000.SH", "side": "BUY", "order_type": "LIMIT",
                               "price": "9.90", "quantity": 100, "client_order_id": f"c{index}-{n}"})
            try:
                conn.request("POST", "/api/v1/orders", body, headers)
                response = conn.getresponse()
                response.read()
                status = response.status
            except OSError:
                status = 599
            with lock:
                statuses.append(status)
        conn.close()

    try:
        for _ in range(150):
            try:
                http.client.HTTPConnection("127.0.0.1", port, timeout=1).request("GET", "/healthz")
                break
            except OSError:
                time.sleep(0.1)
        sampler = threading.Thread(target=sample)
        sampler.start()
        barrier = threading.Barrier(CLIENTS)
        threads = [threading.Thread(target=client, args=(i, barrier)) for i in range(CLIENTS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        sampling = False
        sampler.join(5)
    finally:
        sampling = False
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        admin.close()
    log.seek(0)
    output = log.read()
    log.close()
    assert len(statuses) == CLIENTS * ORDERS_PER_CLIENT
    assert [s for s in statuses if s != 201] == [], output[-3000:]
    assert 1 <= peak <= POOL_MAX, f"{peak} connections held by one web process serving {CLIENTS} clients"
