"""What the whole-system benchmarks share: a fresh database, the system started as `make run`
starts it (`manage.py run_system`), waiting for it, stopping it, percentiles.

Used by bench/open_orders.py, bench/broker_faults.py, bench/risk_check.py, bench/audit_scale.py
and bench/alert_latency.py. Each benchmark run is a child process
whose environment (DATABASE_URL, REDIS_URL, ...) is set before Django loads; these helpers take
their URLs as arguments, so nothing here reads a benchmark's own settings.
"""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parent.parent


def recreate_postgres(database_url: str) -> None:
    """Drop and create the database named in ``database_url``."""
    import psycopg

    name = database_url.rsplit("/", 1)[1]
    admin_url = database_url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def fresh_postgres(database_url: str, redis_url: str) -> None:
    """Drop and create the database named in ``database_url``; empty the Redis database."""
    import redis

    recreate_postgres(database_url)
    redis.Redis.from_url(redis_url).flushdb()


def django_in_process(database_url: str) -> None:
    """Load Django in this process on ``database_url`` (no Redis: tasks in process, quiet logs)."""
    os.environ["DATABASE_URL"] = database_url
    os.environ.pop("REDIS_URL", None)
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ["DJANGO_DEBUG"] = "0"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "trading.settings")
    import django

    django.setup()


def fresh_sqlite(path: str) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        Path(path + suffix).unlink(missing_ok=True)


def system_start(port: int, log: IO[str], *extra: str) -> subprocess.Popen:
    """Start `manage.py run_system` on ``port`` in its own process group (the environment is this
    process's), and wait until it answers /healthz."""
    system = subprocess.Popen([sys.executable, "manage.py", "run_system", "--port", str(port), *extra], cwd=ROOT,
                              env=os.environ.copy(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for_server(system, port)
    except BaseException:
        system_stop(system)
        raise
    return system


def wait_for_server(process: subprocess.Popen, port: int) -> None:
    for _ in range(600):
        if process.poll() is not None:
            raise SystemExit(f"run_system exited with {process.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/healthz")
            conn.getresponse().read()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("the server did not start")


def system_stop(system: subprocess.Popen) -> None:
    """Stop run_system and everything it started (SIGTERM, then SIGKILL after 20 s)."""
    os.killpg(system.pid, signal.SIGTERM)
    try:
        system.wait(20)
    except subprocess.TimeoutExpired:
        os.killpg(system.pid, signal.SIGKILL)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(len(ordered) * fraction), len(ordered) - 1)] if ordered else float("nan")
