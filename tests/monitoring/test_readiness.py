"""/readyz (monitoring/readiness.py) for load balancers: 200 when every required part answers,
503 naming the part that does not: the database, Redis, the workers, a broker link."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.test import Client

from brokers.models import BrokerLink, LinkState
from tests import factories

ROOT = Path(__file__).resolve().parents[2]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # closed again when the socket is


def readyz() -> tuple[int, dict]:
    response = Client().get("/readyz")
    assert response["Cache-Control"].startswith("max-age=0")
    return response.status_code, response.json()


@pytest.mark.django_db
def test_ready_when_every_part_answers(settings) -> None:
    settings.REDIS_URL = ""  # embedded: no Redis, tasks in-process
    status, body = readyz()
    assert (status, body["status"], body["failing"]) == (200, "ok", [])
    assert set(body["checks"]) == {"database", "redis", "workers", "brokers"}
    assert body["checks"]["workers"]["mode"] == "in-process"


@pytest.mark.django_db
def test_a_broker_link_down_is_named_and_makes_it_unready_only_when_required(settings) -> None:
    settings.REDIS_URL = ""
    settings.READYZ_CHECKS = ["database", "redis", "workers", "brokers"]  # an operator who wants it
    account = factories.account("acc1")
    factories.account("acc2")
    BrokerLink.objects.create(account=account, state=LinkState.DOWN, last_error="session lost")
    status, body = readyz()
    assert (status, body["failing"], body["checks"]["brokers"]["down"]) == (503, ["brokers"], ["acc1"])
    assert "session lost" not in json.dumps(body)

    settings.READYZ_CHECKS = ["database", "redis", "workers"]  # the default: the web stays in rotation
    status, body = readyz()
    assert (status, body["failing"]) == (200, [])
    assert body["checks"]["brokers"] == {**body["checks"]["brokers"], "ok": False, "required": False}


@pytest.mark.django_db
def test_redis_down_makes_it_unready_naming_redis_and_the_workers_behind_it(settings) -> None:
    settings.REDIS_URL = f"redis://127.0.0.1:{closed_port()}/0"
    started = time.monotonic()
    status, body = readyz()
    assert (status, body["failing"]) == (503, ["redis", "workers"])
    assert body["checks"]["redis"]["error"].endswith("ConnectionError")
    assert "127.0.0.1" not in json.dumps(body)  # an open probe names parts, not addresses
    assert time.monotonic() - started < 5


@pytest.mark.django_db
def test_no_worker_answering_makes_it_unready(settings, require_redis: str) -> None:
    # This test's Redis database has no Celery worker listening (the tests run tasks in-process).
    settings.READYZ_TIMEOUT_SECONDS = 0.5
    status, body = readyz()
    assert (status, body["failing"]) == (503, ["workers"])
    assert body["checks"]["redis"]["ok"] and body["checks"]["workers"]["replies"] == 0


PROBE = """
from django.test import Client
r = Client().get("/readyz")
print(r.status_code, r.content.decode())
"""


def test_the_database_down_makes_it_unready(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL",)}
    env.update(DATABASE_URL=f"postgres://postgres@127.0.0.1:{closed_port()}/nowhere", LOG_LEVEL="CRITICAL",
               PROMETHEUS_MULTIPROC_DIR=str(tmp_path))
    result = subprocess.run([sys.executable, "manage.py", "shell", "-c", PROBE], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    status, body = result.stdout.strip().splitlines()[-1].split(" ", 1)
    report = json.loads(body)
    assert (status, report["failing"]) == ("503", ["database"])
    assert report["checks"]["database"]["error"] == "OperationalError"
    assert report["checks"]["brokers"]["ok"] is False  # not asked without the database; reported, not required


@pytest.mark.slow
def test_a_real_worker_makes_it_ready_and_its_end_unready(tmp_path: Path, require_redis: str, settings) -> None:
    settings.REDIS_URL = require_redis
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "LOG_LEVEL": "WARNING"}
    worker = subprocess.Popen([sys.executable, "-m", "celery", "-A", "trading", "worker", "--pool", "solo",
                               "--loglevel", "WARNING", "-n", f"readyz-{os.getpid()}@%h"], cwd=ROOT, env=env,
                              start_new_session=True)
    try:
        from trading.celery import app

        deadline = time.monotonic() + 60
        while not app.control.ping(timeout=0.5):
            assert time.monotonic() < deadline and worker.poll() is None, "the worker did not come up"
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(settings, "READYZ_CHECKS", ["redis", "workers"])  # the database is the test's own
            status, body = readyz()
            assert (status, body["checks"]["workers"]["ok"]) == (200, True)
            worker.send_signal(signal.SIGTERM)
            worker.wait(30)
            status, body = readyz()
            assert (status, body["failing"]) == (503, ["workers"])
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()
