"""The system `make run` starts, started as the README says, seen from outside: static files, docs, an order.

The browser tests use a live test server, which serves static files itself; this starts
`manage.py run_system` (the web server, the scheduler, the simulated market) on SQLite in a temporary
directory with DEBUG off, and talks to it over HTTP. With PostgreSQL and Redis it starts the other
configuration too (gunicorn, daphne for the websockets on the next port, Celery worker and beat,
the live relay) and follows an order from the API to a websocket client.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def _free_port() -> int:
    """A free port whose next one is free too (run_system serves websockets there with Redis)."""
    while True:
        with socket.socket() as sock, socket.socket() as next_sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
            try:
                next_sock.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
            return port


def _get(port: int, path: str, *, method: str = "GET", body: str | None = None,
         headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, body, headers or {})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def _start(tmp_path: Path, env: dict[str, str]):
    """Set up and start `manage.py run_system` as `make run` does; yield (port, process, output file)."""
    env.update(STATIC_ROOT=str(tmp_path / "static"), DEMO_FILES_DIR=str(tmp_path), DJANGO_DEBUG="0",
               LOG_LEVEL="WARNING", PYTHONUNBUFFERED="1",
               PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "prometheus"))  # run_system empties it: not this process's
    for step in (["migrate", "--noinput"], ["load_instruments"], ["demo_setup"],
                 ["collectstatic", "--noinput", "--verbosity", "0"]):
        subprocess.run([sys.executable, "manage.py", *step], cwd=ROOT, env=env, check=True, capture_output=True, timeout=120)
    port = _free_port()
    out = open(tmp_path / "run_system.out", "w+")  # noqa: SIM115 - read back below
    process = subprocess.Popen([sys.executable, "manage.py", "run_system", "--port", str(port)], cwd=ROOT,
                               env={**env, "DEMO_MODE": "1"}, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            assert process.poll() is None, (tmp_path / "run_system.out").read_text()
            out.flush()
            text = (tmp_path / "run_system.out").read_text()
            if "Ctrl-C" in text:
                try:
                    if _get(port, "/healthz")[0] == 200:
                        break
                except OSError:
                    pass
            time.sleep(0.3)
        else:
            pytest.fail("run_system did not come up: " + (tmp_path / "run_system.out").read_text())
        yield port, process, (tmp_path / "run_system.out")
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        out.close()


@pytest.fixture
def system(tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "DJANGO_DEBUG")}
    env["SQLITE_PATH"] = str(tmp_path / "db.sqlite3")
    yield from _start(tmp_path, env)


@pytest.fixture
def system_on_redis(tmp_path: Path, require_postgres, require_redis: str):
    """The PostgreSQL + Redis configuration, on a database of its own (dropped afterwards) and the
    tests' Redis database (emptied before and after)."""
    import psycopg
    import redis
    from django.conf import settings

    db = settings.DATABASES["default"]
    name = f"make_run_{os.getpid()}"
    admin = f"host={db['HOST'] or '127.0.0.1'} port={db['PORT'] or 5432} user={db['USER']} dbname=postgres"
    if db.get("PASSWORD"):
        admin += f" password={db['PASSWORD']}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    redis.Redis.from_url(require_redis).flushdb()
    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_DEBUG", "SQLITE_PATH")}
    env.update(DATABASE_URL=f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{name}",
               REDIS_URL=require_redis, CELERY_QUEUE=f"make-run-{os.getpid()}")
    try:
        yield from _start(tmp_path, env)
    finally:
        redis.Redis.from_url(require_redis).flushdb()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_the_system_make_run_starts_serves_the_admin_styles_the_docs_and_takes_the_printed_first_order(system) -> None:
    port, process, output = system
    status, headers, body = _get(port, "/static/admin/css/base.css")
    assert status == 200 and headers["content-type"].startswith("text/css") and b"body" in body

    status, headers, body = _get(port, "/admin/login/")
    assert status == 200 and b"/static/admin/css/base.css" in body

    status, headers, body = _get(port, "/api/v1/docs")
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert _get(port, "/api/v1/openapi.json")[0] == 200

    # The first order, exactly as printed: its key and its price (the current ask).
    text = output.read_text()
    key = re.search(r"Authorization: Bearer (\S+)'", text).group(1)
    order = json.loads(re.search(r"-d '(\{.*\})'", text).group(1))
    assert re.fullmatch(r"\d+\.\d{2}", order["price"]), order  # on the 0.01 tick, as a user would type it
    status, _, body = _get(port, "/api/v1/orders", method="POST", body=json.dumps(order),
                           headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    assert status == 201, body
    order_id = json.loads(body)["id"]
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        state = json.loads(_get(port, f"/api/v1/orders/{order_id}", headers={"Authorization": f"Bearer {key}"})[2])
        if state["status"] in ("FILLED", "PARTIALLY_FILLED", "REJECTED", "CANCELLED"):
            break
        time.sleep(0.3)
    assert state["status"] in ("FILLED", "PARTIALLY_FILLED", "ACCEPTED"), state

    # Ctrl-C (SIGTERM here) stops every process it started.
    process.send_signal(signal.SIGTERM)
    assert process.wait(20) == 0
    pids = [int(p) for p in re.findall(r"\(pid (\d+)\)", text)]
    assert len(pids) >= 3
    time.sleep(0.5)
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_make_run_on_postgres_and_redis_streams_an_order_from_the_api_to_a_websocket_client(system_on_redis) -> None:
    """gunicorn serves the pages and speaks no websocket: `make run` serves /ws/live/ with daphne on
    the next port, and the pages are told so (the port in the page, the policy allowing it)."""
    from websockets.sync.client import connect

    port, process, output = system_on_redis
    text = output.read_text()
    assert f"ws://127.0.0.1:{port + 1}/ws/live/" in text
    status, headers, body = _get(port, "/admin/login/")
    assert status == 200 and f"ws://127.0.0.1:{port + 1}" in headers["content-security-policy"]
    deadline = time.monotonic() + 40  # ready once a Celery worker answers its ping
    while (ready := _get(port, "/readyz"))[0] != 200 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert ready[0] == 200, ready[2]

    key = re.search(r"Authorization: Bearer (\S+)'", text).group(1)
    order = json.loads(re.search(r"-d '(\{.*\})'", text).group(1))
    with connect(f"ws://127.0.0.1:{port + 1}/ws/live/", additional_headers={"Authorization": f"Bearer {key}"},
                 origin=f"http://127.0.0.1:{port}", open_timeout=20) as socket_:  # type: ignore[arg-type]  # websockets' Origin type is a str subclass
        hello = json.loads(socket_.recv(timeout=10))
        assert hello["type"] == "hello" and "demo" in hello["seq"], hello
        status, _, body = _get(port, "/api/v1/orders", method="POST", body=json.dumps(order),
                               headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
        assert status == 201, body
        order_id = json.loads(body)["id"]
        statuses = []
        deadline = time.monotonic() + 20
        while "FILLED" not in statuses and time.monotonic() < deadline:
            message = json.loads(socket_.recv(timeout=max(deadline - time.monotonic(), 0.1)))
            if message.get("type") == "event" and message["kind"] == "order" and message["data"].get("id") == order_id:
                statuses.append(message["data"]["status"])
    # The order's states as they happened, pushed by the worker's and the web server's processes.
    assert statuses[0] == "NEW" and statuses[-1] == "FILLED", statuses
