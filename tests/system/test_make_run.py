"""The system `make run` starts, started as the README says, seen from outside: static files, docs, an order.

The browser tests use a live test server, which serves static files itself; this starts
`manage.py run_system` (the web server, the scheduler, the simulated market) on SQLite in a temporary
directory with DEBUG off, and talks to it over HTTP.
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
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(port: int, path: str, *, method: str = "GET", body: str | None = None,
         headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, body, headers or {})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


@pytest.fixture
def system(tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "DJANGO_DEBUG")}
    env.update(SQLITE_PATH=str(tmp_path / "db.sqlite3"), STATIC_ROOT=str(tmp_path / "static"),
               DEMO_FILES_DIR=str(tmp_path), DJANGO_DEBUG="0", LOG_LEVEL="WARNING", PYTHONUNBUFFERED="1",
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
