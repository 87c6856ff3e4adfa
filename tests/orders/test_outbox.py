"""Nothing is lost between the database and the queue: what was written but not
enqueued is sent by the sweep, once."""

from __future__ import annotations

import pytest

from brokers.models import PaperOrder
from orders import services, tasks
from orders.models import Order
from orders.services import intake
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def setup(api):
    factories.instrument("600000.SH")
    factories.quote("600000.SH", prev_close="10.05", bid="10.00", ask="10.01")
    return api


def test_an_order_whose_enqueue_failed_is_sent_by_the_sweep_exactly_once(setup, monkeypatch, settings) -> None:
    def queue_down(*args, **kwargs):
        raise ConnectionError("redis is down")

    monkeypatch.setattr(intake, "request_is_worker", lambda: False)  # a queue between the request and the worker
    monkeypatch.setattr(tasks.submit_order, "delay", queue_down)
    response = setup.post("/orders", {"account": "acc1", "symbol": "600000.SH", "side": "BUY", "order_type": "LIMIT",
                                      "price": "10.05", "quantity": 100, "client_order_id": "lost-enqueue"})
    assert response.status_code == 201 and response.json()["status"] == "NEW"
    monkeypatch.undo()
    settings.ORDERS_OUTBOX_GRACE_SECONDS = 0
    assert services.outbox_sweep() == 1
    order = Order.objects.get(client_order_id="lost-enqueue")
    assert order.status == "FILLED"
    assert services.outbox_sweep() == 0  # nothing owed any more
    assert PaperOrder.objects.filter(client_ref=str(order.pk)).count() == 1


def test_a_request_that_fails_after_claiming_its_order_leaves_it_to_reconciliation(setup, monkeypatch, settings) -> None:
    """In-process tasks: intake claims the order (SUBMITTING) and the request calls the broker after
    commit. If that call never happens, the poll finds the stale SUBMITTING order missing at the
    broker and sends it, once."""

    def process_dies(*args, **kwargs):
        raise RuntimeError("the process died before the broker call")

    monkeypatch.setattr(intake, "order_place", process_dies)
    response = setup.post("/orders", {"account": "acc1", "symbol": "600000.SH", "side": "BUY", "order_type": "LIMIT",
                                      "price": "10.05", "quantity": 100, "client_order_id": "claimed"})
    assert response.status_code == 201 and response.json()["status"] == "SUBMITTING"
    order = Order.objects.get(client_order_id="claimed")
    assert not PaperOrder.objects.filter(client_ref=str(order.pk)).exists()
    monkeypatch.undo()
    assert services.outbox_sweep() == 0  # a claimed order is not the outbox's: reconciliation owns it
    services.account_poll(account_id=order.account_id)
    order.refresh_from_db()
    assert order.status == "SUBMITTING"  # not stale yet: it may still be on its way
    settings.ORDERS_SUBMITTING_STALE_SECONDS = 0
    services.account_poll(account_id=order.account_id)
    services.account_poll(account_id=order.account_id)
    order.refresh_from_db()
    assert order.status == "FILLED"
    assert PaperOrder.objects.filter(client_ref=str(order.pk)).count() == 1


def test_sweep_leaves_recent_orders_and_waiting_replacements_alone(setup, monkeypatch, settings) -> None:
    monkeypatch.setattr(intake, "request_is_worker", lambda: False)  # a queue between the request and the worker
    monkeypatch.setattr(tasks.submit_order, "delay", lambda *a, **k: None)  # a queue that never delivers
    setup.post("/orders", {"account": "acc1", "symbol": "600000.SH", "side": "BUY", "order_type": "LIMIT",
                           "price": "9.90", "quantity": 100, "client_order_id": "recent"})
    settings.ORDERS_OUTBOX_GRACE_SECONDS = 60
    assert services.outbox_sweep() == 0


def test_relay_sends_each_owed_call_once_and_a_cancel_after_a_submit(setup, settings) -> None:
    settings.ORDERS_DISPATCH = "relay"
    body = {"account": "acc1", "symbol": "600000.SH", "side": "BUY", "order_type": "LIMIT", "price": "9.90",
            "quantity": 100, "client_order_id": "relayed"}
    created = setup.post("/orders", body).json()
    assert created["status"] == "NEW"  # owed, not yet sent: the relay sends it
    assert services.outbox_relay_once() == 1
    assert services.outbox_relay_once() == 0
    order = Order.objects.get(pk=created["id"])
    assert order.status == "SUBMITTED" and order.dispatched_at is not None
    assert setup.post(f"/orders/{order.pk}/cancel").json()["status"] == "CANCEL_REQUESTED"
    assert services.outbox_relay_once() == 1  # the cancel is owed now
    assert Order.objects.get(pk=order.pk).status == "CANCELLED"
    assert PaperOrder.objects.filter(client_ref=str(order.pk)).count() == 1


def test_a_queue_that_falls_behind_holds_one_message_per_owed_order(setup, monkeypatch, settings, require_redis) -> None:
    """A sweep re-enqueued every owed order each pass once the queue fell behind its grace period,
    so a slow or flapping broker grew the queue without bound (bench/broker_faults.py: 130,000
    messages for 7,000 orders). Now a call whose message still waits is not enqueued again; once a
    worker takes the message, the sweep may offer the order again."""
    from orders.services import outbox
    from trading.redis_clients import redis_client

    settings.REDIS_URL = require_redis
    for key in redis_client().scan_iter(outbox.QUEUED_KEY + "*"):
        redis_client().delete(key)
    monkeypatch.setattr(outbox, "tasks_run_inline", lambda: False)  # a real queue: messages wait in it
    monkeypatch.setattr(intake, "request_is_worker", lambda: False)
    queued: list[int] = []
    monkeypatch.setattr(tasks.submit_order, "delay", queued.append)
    for n in range(5):
        response = setup.post("/orders", {"account": "acc1", "symbol": "600000.SH", "side": "BUY", "order_type": "LIMIT",
                                          "price": "10.05", "quantity": 100, "client_order_id": f"slow-{n}"})
        assert response.status_code == 201 and response.json()["status"] == "NEW"
    ids = sorted(Order.objects.filter(client_order_id__startswith="slow-").values_list("pk", flat=True))
    assert sorted(queued) == ids

    settings.ORDERS_OUTBOX_GRACE_SECONDS = 0  # every owed order is past its grace at once
    for _ in range(20):
        assert services.outbox_sweep() == 0  # their messages still wait: none enqueued again
    assert sorted(queued) == ids

    # A worker takes the first message (and the order stays owed, e.g. its broker is down): the
    # sweep may offer that order again, and only that one.
    monkeypatch.setattr("orders.services.broker.link_open", lambda account_id: False)
    services.order_send_to_broker(order_id=ids[0])
    assert Order.objects.get(pk=ids[0]).status == "NEW"
    assert services.outbox_sweep() == 1
    assert sorted(queued) == sorted([*ids, ids[0]])
