"""/metrics (monitoring/metrics.py): Prometheus's text format, figures that move with the trading,
summed over the processes of a real gunicorn, and a scrape nobody anonymous may read.

Every figure is compared before and after: the counters of this test process live in files
shared with whatever else ran before (prometheus_client's multiprocess mode)."""

from __future__ import annotations

import http.client
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.db import transaction
from django.test import Client
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from brokers.adapters.scripted import BrokerScript
from brokers.registry import broker_for
from orders import state_machine
from tests import factories
from tests.conftest import Clock
from trading.errors import BrokerUnavailable
from trading.events import EventKind, publish

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "metrics-" + "x" * 40

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    """Every sample of a scrape, parsed by prometheus_client's own parser (which refuses bad text)."""
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of ``name`` over the label values not given."""
    return sum(v for (n, ls), v in samples.items() if n == name and set(labels.items()) <= ls)


def scrape(client: Client | None = None, **headers: str) -> Samples:
    response = (client or Client()).get("/metrics", **(headers or {"HTTP_AUTHORIZATION": f"Bearer {TOKEN}"}))
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=")
    return parse(response.content.decode())


@pytest.fixture(autouse=True)
def metrics_token(settings) -> str:
    settings.METRICS_TOKEN = TOKEN
    return TOKEN


def order_path_publishes() -> bool:
    """Whether the order path announces its changes (trading/events.py) in this tree: the live
    updates' branch adds it; until then the event counters are tested with published events."""
    return hasattr(state_machine, "order_published")


# --------------------------------------------------------------------------- in-process


@pytest.mark.django_db(transaction=True)
def test_an_order_placed_over_the_api_moves_the_figures(clock: Clock) -> None:
    factories.instrument("600000.SH")
    factories.quote("600000.SH", prev_close="10.05", bid="10.00", ask="10.01", bid_volume=50000, ask_volume=50000)
    factories.account("acc1")
    key = factories.api_key("key1", accounts=["acc1"])
    before = scrape()

    response = Client().post("/api/v1/orders", json.dumps(factories.order_body(price="10.01", quantity=1000)),
                             content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {key}")
    assert response.status_code == 201, response.content
    status = response.json()["status"]
    after = scrape()

    assert value(after, "trading_orders_today", status=status) == value(before, "trading_orders_today", status=status) + 1
    assert total(after, "trading_orders_today") == total(before, "trading_orders_today") + 1
    # The one placement, timed where brokers/connection.py guards the adapter (in-process tasks: here).
    placed = {"kind": "paper", "method": "place_order", "outcome": "ok"}
    assert value(after, "trading_broker_call_seconds_count", **placed) == value(before, "trading_broker_call_seconds_count", **placed) + 1
    assert value(after, "trading_broker_call_seconds_bucket", le="+Inf", **placed) == value(after, "trading_broker_call_seconds_count", **placed)
    assert value(after, "trading_broker_link_up", account="acc1", kind="paper") == 1
    assert value(after, "trading_outbox_depth", call="submit") == 0  # sent at once: nothing owed
    if order_path_publishes():
        assert status == "FILLED"
        assert value(after, "trading_fills_total", side="BUY") > value(before, "trading_fills_total", side="BUY")
        assert (value(after, "trading_order_transitions_total", status="FILLED")
                == value(before, "trading_order_transitions_total", status="FILLED") + 1)


@pytest.mark.django_db(transaction=True)
def test_domain_events_are_counted_once_committed_and_never_when_rolled_back() -> None:
    before = scrape()
    with transaction.atomic():
        publish(EventKind.ORDER, "acc1", {"id": 1, "status": "REJECTED", "previous": "NEW", "event": "RISK_REJECTED"})
        publish(EventKind.FILL, "acc1", {"id": 1, "order": 1, "side": "SELL", "quantity": 300, "amount": "3015.00"})
        publish(EventKind.RISK, "acc1", {"rule": "max_order_amount", "action": "REJECT", "level": "WARNING"})
        during = scrape()  # nothing before the commit
        assert value(during, "trading_fills_total", side="SELL") == value(before, "trading_fills_total", side="SELL")
    with pytest.raises(RuntimeError), transaction.atomic():
        publish(EventKind.FILL, "acc1", {"id": 2, "order": 1, "side": "SELL", "quantity": 100, "amount": "1005.00"})
        raise RuntimeError("rolled back")
    after = scrape()

    assert value(after, "trading_order_transitions_total", status="REJECTED") == value(before, "trading_order_transitions_total", status="REJECTED") + 1
    assert value(after, "trading_fills_total", side="SELL") == value(before, "trading_fills_total", side="SELL") + 1
    assert value(after, "trading_filled_amount_yuan_total", side="SELL") == value(before, "trading_filled_amount_yuan_total", side="SELL") + 3015
    verdict = {"rule": "max_order_amount", "action": "REJECT"}
    assert value(after, "trading_risk_verdicts_total", **verdict) == value(before, "trading_risk_verdicts_total", **verdict) + 1


@pytest.mark.django_db(transaction=True)
def test_a_broker_that_drops_shows_in_the_link_gauge_the_changes_and_the_call_outcomes(script: BrokerScript) -> None:
    from trading.models import Account

    before = scrape()
    script.connected = False
    with pytest.raises(BrokerUnavailable):
        broker_for(Account.objects.get(name="acc1")).query_orders()
    after = scrape()

    assert value(before, "trading_broker_link_up", account="acc1", kind="scripted") == 1
    assert value(after, "trading_broker_link_up", account="acc1", kind="scripted") == 0
    assert value(after, "trading_broker_link_changes_total", state="DOWN") == value(before, "trading_broker_link_changes_total", state="DOWN") + 1
    lost = {"kind": "scripted", "method": "query_orders", "outcome": "unavailable"}
    assert value(after, "trading_broker_call_seconds_count", **lost) == value(before, "trading_broker_call_seconds_count", **lost) + 1


def test_the_alert_and_websocket_figures_other_parts_move_are_exposed() -> None:
    from monitoring.metrics import ALERT_DELIVERIES, WEBSOCKET_CLIENTS

    before = scrape()
    ALERT_DELIVERIES.labels(channel="dingtalk", result="failed").inc()
    WEBSOCKET_CLIENTS.inc(2)
    WEBSOCKET_CLIENTS.dec()
    after = scrape()
    failed = {"channel": "dingtalk", "result": "failed"}
    assert value(after, "trading_alert_deliveries_total", **failed) == value(before, "trading_alert_deliveries_total", **failed) + 1
    assert value(after, "trading_websocket_clients") == value(before, "trading_websocket_clients") + 1
    WEBSOCKET_CLIENTS.dec()


# --------------------------------------------------------------------------- who may scrape


@pytest.mark.django_db
def test_anonymous_scrapes_and_wrong_tokens_are_refused_staff_and_the_token_are_let_in(admin_client) -> None:
    anonymous = Client().get("/metrics")
    assert anonymous.status_code == 401 and anonymous["WWW-Authenticate"].startswith("Bearer")
    assert b"trading_" not in anonymous.content
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer " + "y" * 48).status_code == 401
    assert Client().get("/metrics", HTTP_AUTHORIZATION=f"Basic {TOKEN}").status_code == 401
    assert Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 200
    assert admin_client.get("/metrics").status_code == 200  # staff, second factor passed


@pytest.mark.django_db
def test_staff_without_the_second_factor_may_not_scrape(admin_user) -> None:
    client = Client()
    client.force_login(admin_user)
    assert client.get("/metrics").status_code == 401


def _production(**extra: str) -> dict[str, str]:
    from cryptography.fernet import Fernet

    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DJANGO_", "DEMO_MODE", "METRICS_", "DATABASE_URL", "REDIS_URL"))}
    env.update(DJANGO_SETTINGS_MODULE="trading.settings_production", DJANGO_SECRET_KEY=secrets.token_urlsafe(64),
               FIELD_ENCRYPTION_KEY=Fernet.generate_key().decode(), AUDIT_HMAC_KEY=secrets.token_urlsafe(48),
               DJANGO_ALLOWED_HOSTS="backoffice.example.com", LOG_LEVEL="CRITICAL")
    env.update(extra)
    return env


PROBE = """
from django.test import Client
c = Client(HTTP_HOST="backoffice.example.com")
print("anonymous", c.get("/metrics", secure=True).status_code)
print("token", c.get("/metrics", secure=True, HTTP_AUTHORIZATION="Bearer " + __import__("os").environ["PROBE_TOKEN"]).status_code)
print("readyz-plain-http", c.get("/readyz").status_code)
"""


def test_production_settings_never_open_the_scrape_to_anonymous_clients(tmp_path: Path) -> None:
    token = secrets.token_urlsafe(32)
    env = _production(METRICS_PUBLIC="1", METRICS_TOKEN=token, PROBE_TOKEN=token, SQLITE_PATH=str(tmp_path / "db.sqlite3"),
                      PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "prometheus"))
    result = subprocess.run([sys.executable, "manage.py", "shell", "-c", PROBE], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    lines = dict(line.split() for line in result.stdout.splitlines() if line.count(" ") == 1)
    assert lines["anonymous"] == "401"  # METRICS_PUBLIC=1 is ignored in production
    assert lines["token"] == "200"
    assert lines["readyz-plain-http"] in ("200", "503")  # the load balancer's probe is not redirected to HTTPS


def test_production_settings_refuse_a_short_metrics_token(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, capture_output=True, text=True, timeout=120,
                            env=_production(METRICS_TOKEN="short", PROMETHEUS_MULTIPROC_DIR=str(tmp_path)))
    assert result.returncode != 0 and "METRICS_TOKEN" in result.stderr


# --------------------------------------------------------------------------- a real gunicorn, two workers

SETUP = """
from tests import factories
factories.instrument("600000.SH")
factories.quote("600000.SH", prev_close="10.05", bid="10.00", ask="10.01", bid_volume=500000, ask_volume=500000)
factories.account("acc1", cash="100000000")
print("KEY", factories.api_key("key1", accounts=["acc1"]))
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _request(port: int, method: str, path: str, body: str | None = None, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(method, path, body, headers or {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def _per_process(directory: Path, name: str, **labels: str) -> dict[int, float]:
    """``name``'s value in each process's own file (pid -> value), read without the scrape."""
    found: dict[int, float] = {}
    for file in directory.glob("histogram_*.db"):
        pid = int(file.stem.split("_")[-1])
        for metric in MultiProcessCollector.merge([str(file)]):
            for sample in metric.samples:
                if sample.name == name and set(labels.items()) <= set(sample.labels.items()):
                    found[pid] = found.get(pid, 0) + sample.value
    return found


@pytest.mark.slow
def test_a_gunicorn_with_two_workers_answers_the_sum_over_its_workers_and_keeps_a_dead_workers_counts(tmp_path: Path) -> None:
    prometheus = tmp_path / "prometheus"
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "DJANGO_DEBUG")}
    env.update(SQLITE_PATH=str(tmp_path / "db.sqlite3"), PROMETHEUS_MULTIPROC_DIR=str(prometheus), METRICS_TOKEN=TOKEN,
               DJANGO_DEBUG="0", LOG_LEVEL="WARNING", DJANGO_SETTINGS_MODULE="trading.settings")
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput"], cwd=ROOT, env=env, check=True, capture_output=True, timeout=300)
    setup = subprocess.run([sys.executable, "manage.py", "shell", "-c", SETUP], cwd=ROOT, env=env, check=True,
                           capture_output=True, text=True, timeout=120)
    key = next(line.split()[1] for line in setup.stdout.splitlines() if line.startswith("KEY "))
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "gunicorn", "--workers", "2", "--bind", f"127.0.0.1:{port}",
                               "--config", str(ROOT / "deploy" / "gunicorn.conf.py"), "--log-level", "warning",
                               "trading.wsgi:application"], cwd=ROOT, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if _request(port, "GET", "/healthz")[0] == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline and server.poll() is None, "gunicorn did not come up"
            time.sleep(0.3)
        auth = {"Authorization": f"Bearer {TOKEN}"}
        status, body = _request(port, "GET", "/metrics", headers=auth)
        assert status == 200
        before = parse(body.decode())

        # Twelve orders from four clients at once, so that both workers serve some.
        orders, statuses = 12, []

        def place(n: int) -> None:
            for i in range(n, orders, 4):
                order = factories.order_body(price="10.01", quantity=100, client_order_id=f"g-{i}")
                statuses.append(_request(port, "POST", "/api/v1/orders", json.dumps(order),
                                         {"Authorization": f"Bearer {key}", "Content-Type": "application/json"})[0])

        clients = [threading.Thread(target=place, args=(n,)) for n in range(4)]
        for thread in clients:
            thread.start()
        for thread in clients:
            thread.join()
        assert statuses == [201] * orders

        placed = {"kind": "paper", "method": "place_order", "outcome": "ok"}
        per_worker = _per_process(prometheus, "trading_broker_call_seconds_count", **placed)
        assert len([pid for pid, n in per_worker.items() if n]) == 2, per_worker  # both workers placed some
        status, body = _request(port, "GET", "/metrics", headers=auth)
        after = parse(body.decode())
        assert value(after, "trading_broker_call_seconds_count", **placed) == sum(per_worker.values()) == orders
        assert total(after, "trading_orders_today") == total(before, "trading_orders_today") + orders

        # A worker killed: gunicorn replaces it; what it counted stays in the sum.
        victim = max(per_worker, key=lambda pid: per_worker[pid])
        os.kill(victim, signal.SIGKILL)
        time.sleep(2)
        status, body = _request(port, "GET", "/metrics", headers=auth)
        assert status == 200
        assert value(parse(body.decode()), "trading_broker_call_seconds_count", **placed) == orders
        assert _request(port, "GET", "/metrics")[0] == 401  # and still closed to anonymous clients
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


# --------------------------------------------------------------------------- the Grafana dashboard


@pytest.mark.django_db
def test_the_grafana_dashboard_asks_only_for_metrics_the_back_office_exposes() -> None:
    import re

    from prometheus_client import Counter, Gauge, Histogram

    from monitoring import metrics

    read = {family.name for family in metrics.StateCollector().collect()}
    exposed = {family.name for family in metrics.StateCollector().describe()}
    assert read <= exposed and read >= exposed - {"trading_queue_depth"}  # the queue with Redis only
    for metric in vars(metrics).values():
        if isinstance(metric, Counter):
            exposed.add(f"{metric._name}_total")
        elif isinstance(metric, Histogram):
            exposed |= {f"{metric._name}_bucket", f"{metric._name}_count", f"{metric._name}_sum"}
        elif isinstance(metric, Gauge):
            exposed.add(metric._name)
    dashboard = json.loads((ROOT / "deploy" / "grafana" / "trading-backoffice.json").read_text())
    asked = {name for panel in dashboard["panels"] for target in panel["targets"]
             for name in re.findall(r"\btrading_[a-z_]+", target["expr"])}
    assert asked and asked <= exposed, asked - exposed
    # Every part the issue names is on it.
    for name in ("trading_orders_today", "trading_fills_total", "trading_broker_call_seconds_bucket",
                 "trading_broker_link_up", "trading_queue_depth", "trading_outbox_depth",
                 "trading_alert_deliveries_total", "trading_websocket_clients"):
        assert name in asked, name
