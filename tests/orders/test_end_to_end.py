"""End to end on PostgreSQL with real Celery workers on Redis and a real HTTP server.

An order sent over HTTP is taken by a worker process, placed at the paper
broker, filled against the simulated market, and the fill lands in the
position, the sellable quantity and the cash ledger with exact fees. A worker
killed mid-submission, or a broker answer lost on the way back, still leaves
every order at the broker exactly once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from django.db import connection

from brokers.models import PaperOrder
from orders import services
from orders.models import Order
from tests import factories
from trading.models import Account, Position
from trading.services import ledger_totals

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
SETTLED = {"SUBMITTED", "PARTIALLY_FILLED", "FILLED", "CANCELLED", "REJECTED", "EXPIRED"}


class Worker:
    """A real `celery worker` process on the test database."""

    def __init__(self, redis_url: str, log_dir: Path) -> None:
        db = connection.settings_dict
        self.env = dict(os.environ)
        self.env.update(
            DATABASE_URL=f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
            REDIS_URL=redis_url,
            ORDERS_SUBMITTING_STALE_SECONDS="3",
            ORDERS_DISPATCH="relay",
            CELERY_VISIBILITY_TIMEOUT="4",
            LOG_LEVEL="INFO",
        )
        self.log_dir = log_dir
        self.process: subprocess.Popen | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        log = self.log_dir / f"worker-{self.starts}.log"
        self.log = log
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "trading", "worker", "--pool", "solo", "-Q", "trading",
             "--without-heartbeat", "--without-gossip", "--without-mingle", "--loglevel", "INFO"],
            cwd=ROOT, env=self.env, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while "ready." not in log.read_text():
            assert self.process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "worker did not start:\n" + log.read_text()
            time.sleep(0.1)

    def kill(self) -> None:
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)


class Relay:
    """The outbox relay process (`manage.py run_outbox_relay`) on the test database."""

    def __init__(self, worker: Worker) -> None:
        log = worker.log_dir / "relay.log"
        self.process = subprocess.Popen([sys.executable, "manage.py", "run_outbox_relay"], cwd=ROOT, env=worker.env,
                                        stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 30
        while "outbox relay" not in log.read_text():
            assert self.process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "relay did not start:\n" + log.read_text()
            time.sleep(0.1)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(10)


@pytest.fixture
def worker(require_postgres, require_redis, tmp_path, settings):
    from trading.celery import app

    app.control.purge()
    settings.ORDERS_OUTBOX_GRACE_SECONDS = 2
    settings.ORDERS_SUBMITTING_STALE_SECONDS = 3
    settings.ORDERS_DISPATCH = "relay"  # as in production with Redis: the relay process enqueues
    w = Worker(require_redis, tmp_path)
    w.start()
    relay = Relay(w)
    yield w
    relay.stop()
    w.stop()
    app.control.purge()


@pytest.fixture
def http(live_server):
    factories.account("e2e")
    for symbol, prev_close, bid, ask in (("600000.SH", "10.05", "10.00", "10.01"), ("000001.SZ", "10.00", "9.99", "10.00")):
        factories.instrument(symbol)
        factories.quote(symbol, prev_close=prev_close, bid=bid, ask=ask, bid_volume=100000, ask_volume=100000)
    key = factories.api_key("e2e-key", accounts=["e2e"])
    with httpx.Client(base_url=f"{live_server.url}/api/v1", headers={"Authorization": f"Bearer {key}"}, timeout=30) as client:
        yield client


def wait_for(predicate, seconds: float = 30, every: float = 0.2, on_tick=None):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if on_tick:
            on_tick()
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError("condition not reached in time")


def place(http, **fields) -> dict:
    body = {"account": "e2e", "symbol": "600000.SH", "side": "BUY", "order_type": "LIMIT", "price": "10.05", "quantity": 1000}
    body.update(fields)
    response = http.post("/orders", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def test_order_over_http_is_filled_by_a_worker_with_exact_cash_and_position(worker, http) -> None:
    sh = place(http, client_order_id="e2e-sh")
    sz = place(http, client_order_id="e2e-sz", symbol="000001.SZ", price="10.00")
    assert sh["status"] == "NEW"  # accepted; the worker process does the rest

    def filled():
        return all(http.get(f"/orders/{o['id']}").json()["status"] == "FILLED" for o in (sh, sz))

    wait_for(filled)
    # 600000.SH: 1000 x 10.01 = 10010.00, commission max(5, 2.50) = 5.00, transfer 0.10
    # 000001.SZ (MARKET_RULES worked example): 10,000.00, commission 5.00, transfer 0.10, no stamp duty
    fills = http.get(f"/orders/{sz['id']}/fills").json()
    assert [(f["commission"], f["transfer_fee"], f["stamp_duty"]) for f in fills] == [("5.00", "0.10", "0.00")]
    balance = http.get("/accounts/e2e/balance").json()
    expected_cash = Decimal("1000000") - Decimal("10010.00") - Decimal("5.10") - Decimal("10000.00") - Decimal("5.10")
    assert Decimal(balance["cash"]) == expected_cash
    assert balance["frozen"] == "0.00" and Decimal(balance["available"]) == expected_cash
    positions = {p["symbol"]: p for p in http.get("/accounts/e2e/positions").json()}
    assert positions["600000.SH"]["quantity"] == 1000
    assert positions["600000.SH"]["sellable_quantity"] == 0  # T+1: bought today
    assert positions["000001.SZ"]["avg_cost"] == "10.0051"  # (10,000 + 5.10) / 1000
    account = Account.objects.get(name="e2e")
    assert ledger_totals(account) == (account.cash, account.frozen)
    # The sell of today's shares is refused by the T+1 rule.
    response = http.post("/orders", json={"account": "e2e", "symbol": "600000.SH", "side": "SELL", "order_type": "LIMIT",
                                          "price": "10.00", "quantity": 1000})
    assert response.status_code == 422 and response.json()["detail"][0]["rule"] == "sellable_quantity"


def _broker_copies() -> Counter:
    return Counter(PaperOrder.objects.filter(account_name="e2e").values_list("client_ref", flat=True))


def test_worker_killed_mid_submission_every_order_reaches_the_broker_exactly_once(worker, http) -> None:
    Account.objects.filter(name="e2e").update(broker_settings={"latency_ms": 1500})
    orders = [place(http, client_order_id=f"kill-{i}", price="9.90", quantity=100) for i in range(5)]
    ids = [o["id"] for o in orders]
    # Kill the worker while it is inside the broker call of one order.
    wait_for(lambda: Order.objects.filter(pk__in=ids, status="SUBMITTING").exists(), every=0.05)
    worker.kill()
    stuck = Order.objects.filter(pk__in=ids).exclude(status__in=SETTLED).count()
    assert stuck >= 1
    worker.start()

    def recover():
        services.outbox_sweep()
        services.accounts_poll_all()

    wait_for(lambda: Order.objects.filter(pk__in=ids, status__in=SETTLED).count() == len(ids), seconds=60, every=0.5, on_tick=recover)
    copies = _broker_copies()
    assert sorted(copies) == sorted(str(i) for i in ids)
    assert set(copies.values()) == {1}, copies
    assert all(o.broker_order_id for o in Order.objects.filter(pk__in=ids))


def test_lost_broker_answer_is_reconciled_without_a_second_submission(worker, http) -> None:
    Account.objects.filter(name="e2e").update(broker_settings={"lose_answers": True})
    order = place(http, client_order_id="lost-1")
    wait_for(lambda: Order.objects.get(pk=order["id"]).status == "UNKNOWN")
    Account.objects.filter(name="e2e").update(broker_settings={})
    time.sleep(3.2)  # the stale period after which reconciliation acts

    def reconciled():
        services.accounts_poll_all()
        return Order.objects.get(pk=order["id"]).status == "FILLED"

    wait_for(reconciled, seconds=20, every=0.5)
    assert _broker_copies() == Counter({str(order["id"]): 1})
    assert Position.objects.get(account__name="e2e").quantity == 1000
