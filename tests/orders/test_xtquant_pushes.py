"""miniQMT's pushes drive the order path: a callback of the xtquant adapter becomes a poll of the
account (brokers.signals.broker_update -> orders.receivers -> orders.tasks.poll_account, run
in-process here), which syncs the order. Nothing in these tests polls by itself.

The broker side is the fake miniQMT of tests/brokers/fakes/xtquant_trader.py; its pushes run on
its own callback thread, as xttrader's do, so the poll they cause runs there too. On PostgreSQL
they arrive whenever miniQMT sends them, racing the workers as in production; on SQLite's
in-memory test database (one writer at a time, no waiting) they are held until the test
``settle``s, while the test thread waits.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection, connections, transaction
from django.utils import timezone

from audit.models import AuditEvent
from audit.services import Actor
from brokers.adapters import xtquant
from brokers.signals import broker_update
from orders.models import Fill, Order, OrderStatus
from orders.services import OrderInput, account_poll, order_cancel, order_submit
from tests import factories
from tests.brokers.fakes.xtquant_trader import FakeMiniQmt
from trading.models import Position

pytestmark = pytest.mark.django_db(transaction=True)

ACCOUNT_ID = "8800009999"
PATH = "C:\\miniQMT-pushes\\userdata_mini"
START = Decimal("1000000")
ACTOR = Actor.api_key("xtquant-push-tests")


@pytest.fixture
def qmt() -> Iterator[FakeMiniQmt]:
    from risk.controller import config_cache_clear

    fake = FakeMiniQmt(paused=connection.vendor != "postgresql")
    fake.open_account(ACCOUNT_ID)
    fake.fund(ACCOUNT_ID, float(START))
    previous = xtquant.set_trader_factory(fake.trader)
    config_cache_clear()
    factories.instrument("600000.SH")
    factories.quote("600000.SH", prev_close="10.00")
    factories.account("xt1", cash=str(START), broker_kind="xtquant", broker_settings={
        "path": PATH, "session_id": 3, "account_id": ACCOUNT_ID, "call_timeout": 0.5, "cancel_wait": 1, "reconnect_seconds": 0})
    yield fake
    fake.settle()
    fake.delivery.submit(connections.close_all)  # the callback thread's own database connection
    fake.close()
    xtquant.set_trader_factory(previous)
    xtquant.sessions_close(PATH)
    config_cache_clear()


def submit(quantity: int = 1000, price: str = "9.90") -> Order:
    body = factories.order_body(account="xt1", quantity=quantity, price=price, client_order_id="xt-1")
    order = order_submit(OrderInput(**body), actor=ACTOR).order
    return Order.objects.get(pk=order.pk)


def reload(order: Order) -> Order:
    return Order.objects.get(pk=order.pk)


def age(order: Order, seconds: int = 120) -> None:
    """As if nothing had happened to ``order`` for ``seconds`` (past ORDERS_SUBMITTING_STALE_SECONDS)."""
    Order.objects.filter(pk=order.pk).update(updated_at=timezone.now() - timedelta(seconds=seconds))


def test_a_pushed_fill_is_synced_without_anyone_polling(qmt: FakeMiniQmt) -> None:
    order = submit()
    qmt.settle()
    order = reload(order)
    assert order.status == OrderStatus.SUBMITTED and order.broker_order_id
    assert qmt.sent[0]["order_remark"] == str(order.pk)

    qmt.fill(int(order.broker_order_id), 300, 9.90)
    qmt.settle()  # the pushes were delivered, and the poll they caused has run
    order = reload(order)
    assert (order.status, order.filled_quantity) == (OrderStatus.PARTIALLY_FILLED, 300)
    [fill] = Fill.objects.filter(order=order)
    assert (fill.quantity, fill.price) == (300, Decimal("9.90"))

    qmt.repeat_trades = True  # the rest is pushed twice
    qmt.fill(int(order.broker_order_id), 700, 9.80)
    qmt.settle()
    order = reload(order)
    assert (order.status, order.filled_quantity) == (OrderStatus.FILLED, 1000)
    assert Fill.objects.filter(order=order).count() == 2
    position = Position.objects.get(account=order.account, instrument=order.instrument)
    assert position.quantity == 1000
    assert AuditEvent.objects.filter(object_type="order", object_id=str(order.pk), actor_type="broker").exists()


def test_a_rejection_pushed_after_acceptance_ends_the_order_and_frees_the_cash(qmt: FakeMiniQmt) -> None:
    order = submit()
    qmt.settle()
    assert reload(order).status == OrderStatus.SUBMITTED
    qmt.reject(int(reload(order).broker_order_id), "证券代码停牌")
    qmt.settle()
    order = reload(order)
    assert order.status == OrderStatus.REJECTED and "证券代码停牌" in order.status_reason
    assert order.frozen_amount == 0


def test_a_cancel_confirmed_by_miniqmt_ends_the_order(qmt: FakeMiniQmt) -> None:
    order = submit()
    qmt.settle()
    order_cancel(order_id=order.pk, actor=ACTOR)  # the in-process worker asks miniQMT
    qmt.settle()  # 已撤 pushed (on PostgreSQL while the worker waits for it)
    order = reload(order)
    assert order.status == OrderStatus.CANCELLED and order.frozen_amount == 0
    assert qmt.accounts[ACCOUNT_ID].orders[int(order.broker_order_id)].order_status == 54  # 已撤


def test_a_cancel_refused_by_callback_returns_the_order_to_work(require_postgres: None, qmt: FakeMiniQmt) -> None:
    """The refusal comes by callback while the worker waits for it (pushes racing the worker:
    PostgreSQL only)."""
    order = submit()
    qmt.settle()
    qmt.refuse_next_cancel("集合竞价时段不可撤单")
    order_cancel(order_id=order.pk, actor=ACTOR)
    qmt.settle()
    order = reload(order)
    assert order.status == OrderStatus.SUBMITTED and "集合竞价时段不可撤单" in order.status_reason


def test_an_order_whose_answer_was_lost_is_found_by_its_remark_not_sent_again(qmt: FakeMiniQmt) -> None:
    qmt.hang_next_order(took_effect=True)  # miniQMT entered it; its answer never came back
    order = submit()
    assert reload(order).status == OrderStatus.UNKNOWN
    qmt.settle()  # its pushes (未报, 已报) may already lead the poll to it
    age(order)
    account_poll(account_id=order.account_id)  # the periodic poll
    order = reload(order)
    assert order.status == OrderStatus.SUBMITTED and order.broker_order_id
    assert [sent["order_remark"] for sent in qmt.sent] == [str(order.pk)]  # sent once


def test_the_receiver_polls_only_after_the_senders_transaction_commits(monkeypatch: pytest.MonkeyPatch) -> None:
    from orders import receivers

    factories.account("xt2")
    polled: list[list[str]] = []
    monkeypatch.setattr(receivers, "accounts_poll_later", polled.append)
    with transaction.atomic():
        broker_update.send(sender=xtquant.XtQuantBroker, account_name="xt2")
        assert polled == []
    assert polled == [["xt2"]]

