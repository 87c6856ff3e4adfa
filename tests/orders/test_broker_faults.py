"""The order path against the paper broker's simulated faults (brokers/adapters/paper.py, ``faults``).

Each fault the paper broker can inject, met by the real services (intake with the in-process
worker, ``account_poll``, the cancel worker): whatever the broker does, the order ends in the
state the broker's books say, nothing reaches the broker twice, no fill is recorded twice or
lost, and the money adds up (cash = available + frozen, the ledger sums to the balance, the
position is what was filled).
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from audit.services import Actor
from bench.broker_faults import books_compare
from brokers.adapters.paper import PaperBroker
from brokers.connection import brokers_heartbeat
from brokers.interface import BrokerSnapshot, OrderAck, OrderRequest
from brokers.models import PaperOrder
from orders.models import Fill, Order, OrderStatus
from orders.services import OrderInput, account_poll, order_cancel, order_submit
from orders.services.broker import order_cancel_at_broker
from tests import factories
from tests.orders.test_modify import assert_money_invariants
from trading.errors import BrokerTimeout
from trading.models import Account, Position

pytestmark = pytest.mark.django_db(transaction=True)

ACTOR = Actor.api_key("fault-tests")
S = OrderStatus


@pytest.fixture
def market(settings):
    """acc1 at the paper broker with 1,000,000 CNY; 600000.SH quoted 9.99 / 10.00, 300 shares
    offered (a buy at 10.00 fills 300 at once, a buy at 9.90 rests). Stale after 0 s, so a poll
    acts on a lost order at once; after a disconnect the circuit breaker (brokers/connection.py)
    lets the next call probe at once."""
    from risk.controller import config_cache_clear

    settings.ORDERS_SUBMITTING_STALE_SECONDS = 0
    settings.BROKER_BACKOFF_BASE_SECONDS = 0
    config_cache_clear()
    factories.account("acc1", cash="1000000")
    factories.instrument("600000.SH")
    factories.quote("600000.SH", prev_close="10.00", last="10.00", bid="9.99", ask="10.00", ask_volume=300)
    yield
    config_cache_clear()


def faults(**network: object) -> None:
    """Set acc1's broker settings: the paper broker's simulated network (an empty call clears it)."""
    Account.objects.filter(name="acc1").update(broker_settings={"faults": network} if network else {})


def buy(price: str = "9.90", quantity: int = 1000, ref: str = "f-1") -> Order:
    data = OrderInput(account="acc1", symbol="600000.SH", side="BUY", order_type="LIMIT", price=price,
                      quantity=quantity, client_order_id=ref)
    return order_submit(data, actor=ACTOR).order


def reload(order: Order) -> Order:
    return Order.objects.get(pk=order.pk)


def poll() -> int:
    return account_poll(account_id=Account.objects.get(name="acc1").pk)


def at_broker(order: Order) -> list[PaperOrder]:
    return list(PaperOrder.objects.filter(account_name="acc1", client_ref=str(order.pk)))


def test_a_trade_reported_twice_is_recorded_once(market) -> None:
    faults(calls=["query"], kinds={"duplicate": 1.0}, report_duplicates=True)
    order = reload(buy(price="10.00"))  # 300 of 1,000 fill on arrival; every read reports that trade twice
    poll()
    order = reload(order)
    assert (order.status, order.filled_quantity) == (S.PARTIALLY_FILLED, 300)
    assert Fill.objects.filter(order=order).count() == 1
    assert Position.objects.get(account__name="acc1").quantity == 300
    assert books_compare("acc1").problems == []
    assert_money_invariants()


def test_a_disconnect_on_placement_is_not_a_rejection_and_the_order_is_sent_once_reconnected(market) -> None:
    faults(disconnected=True)
    order = reload(buy())
    assert order.status == S.NEW  # never reached the broker: not refused, owed again
    assert order.frozen_amount > 0 and at_broker(order) == []
    assert brokers_heartbeat()["acc1"] != "UP"  # the heartbeat finds it still down: nothing is sent
    assert reload(order).status == S.NEW and at_broker(order) == []
    faults()
    brokers_heartbeat()  # finds the broker back: the waiting order is offered again
    order = reload(order)
    assert order.status == S.SUBMITTED
    [sent] = at_broker(order)
    assert order.broker_order_id == sent.broker_order_id
    assert_money_invariants()


def test_a_disconnect_on_cancel_keeps_the_cancel_owed(market) -> None:
    order = reload(buy())
    assert order.status == S.SUBMITTED
    faults(calls=["cancel"], kinds={"disconnect": 1.0})
    order_cancel(order_id=order.pk, actor=ACTOR)
    order = reload(order)
    assert order.status == S.CANCEL_REQUESTED  # the broker never heard the cancel: still owed
    assert at_broker(order)[0].status == "OPEN"
    faults()
    order_cancel_at_broker(order_id=order.pk)  # what the outbox sweep does with an owed cancel
    order = reload(order)
    assert order.status == S.CANCELLED and order.frozen_amount == 0
    assert_money_invariants()


@pytest.mark.parametrize("kind", ["timeout_after", "timeout_before", "error", "slow"])
def test_each_placement_fault_ends_in_the_brokers_state(market, kind: str) -> None:
    faults(calls=["place"], kinds={kind: 1.0}, slow_ms=1)
    order = buy()
    faults()
    poll()
    order = reload(order)
    copies = at_broker(order)
    assert len(copies) == 1  # entered once: found again after a lost answer, sent again when missing
    expected = {"OPEN": S.SUBMITTED, "REJECTED": S.REJECTED}[copies[0].status]
    assert order.status == expected
    assert books_compare("acc1").problems == []
    assert_money_invariants()


@pytest.mark.parametrize("kind", ["timeout_after", "timeout_before", "error", "slow"])
def test_each_cancel_fault_ends_in_the_brokers_state(market, kind: str) -> None:
    order = reload(buy())
    faults(calls=["cancel"], kinds={kind: 1.0}, slow_ms=1)
    order_cancel(order_id=order.pk, actor=ACTOR)
    faults()
    poll()
    order = reload(order)
    [copy] = at_broker(order)
    expected = {"OPEN": {S.SUBMITTED, S.CANCEL_REQUESTED}, "CANCELLED": {S.CANCELLED}}[copy.status]
    assert order.status in expected
    if order.status == S.CANCEL_REQUESTED:  # the broker never got the cancel: it is asked again
        order_cancel_at_broker(order_id=order.pk)
        assert reload(order).status == S.CANCELLED
    assert_money_invariants()


def test_many_orders_at_a_seeded_fault_rate_end_as_the_broker_says(market) -> None:
    """Sixty orders (fills on arrival, partial fills, resting orders, cancels) with half of all calls
    failing, every kind in turn; then polls without faults until quiet."""
    faults(rate=0.5, seed=11, slow_ms=1, report_duplicates=True)
    orders = []
    for n in range(60):
        price = ("10.00", "9.90", "10.01")[n % 3]  # 10.00 / 10.01: 300 fill at once, the rest waits
        orders.append(buy(price=price, quantity=(n % 4 + 1) * 100, ref=f"many-{n}"))
        factories.quote("600000.SH", prev_close="10.00", last="10.00", bid="9.99", ask="10.00", ask_volume=300)
        if n % 5 == 0:
            poll_quietly()
        if n % 7 == 0 and reload(orders[n - 3] if n >= 3 else orders[0]).status in (S.SUBMITTED, S.PARTIALLY_FILLED):
            order_cancel(order_id=(orders[n - 3] if n >= 3 else orders[0]).pk, actor=ACTOR)
    faults()
    for _ in range(5):
        for order in Order.objects.filter(status=S.CANCEL_REQUESTED):
            order_cancel_at_broker(order_id=order.pk)
        poll()
    report = books_compare("acc1")
    assert report.problems == []
    assert report.orders == 60 and report.duplicates_at_broker == 0 and report.lost_fills == 0
    assert report.money == []  # assert_money_invariants' checks, to the cent (SQLite sums money as floats)


def poll_quietly() -> None:
    try:
        poll()
    except Exception:  # noqa: BLE001, S110 - a read the faults broke: the next poll reads again
        pass


def test_the_money_check_sees_a_fill_recorded_twice(market) -> None:
    """books_compare must fail on a fill the back office has and the broker does not."""
    order = reload(buy(price="10.00"))
    fill = Fill.objects.get(order=order)
    Fill.objects.create(order=order, broker_trade_id="T-bogus", quantity=fill.quantity, price=fill.price,
                        amount=fill.amount, fees=Decimal("0"), filled_at=fill.filled_at, trading_day=fill.trading_day)
    assert books_compare("acc1").problems


def test_a_fill_a_poll_skipped_while_submitting_is_found_when_the_read_back_fails(market, monkeypatch, settings) -> None:
    """A poll skips an order while its worker waits for the broker's answer, and moves its cursor
    past the order's change; the worker's read-back after the answer normally books the fill. When
    that read fails (its answer lost), a later poll must still find the fill."""
    settings.ORDERS_SUBMITTING_STALE_SECONDS = 30
    buy(price="9.90", ref="first")
    poll()  # this process now polls acc1 from a cursor
    real_place, real_read = PaperBroker.place_order, PaperBroker.query_order

    def place_then_poll(self: PaperBroker, request: OrderRequest) -> OrderAck:
        ack = real_place(self, request)
        poll()  # another worker's poll, while this one waits for the answer
        return ack

    def read_lost(self: PaperBroker, broker_order_id: str) -> BrokerSnapshot:
        raise BrokerTimeout("券商应答超时")

    monkeypatch.setattr(PaperBroker, "place_order", place_then_poll)
    monkeypatch.setattr(PaperBroker, "query_order", read_lost)
    order = reload(buy(price="10.00", ref="second"))  # 300 fill on arrival
    assert (order.status, order.filled_quantity) == (S.SUBMITTED, 0)
    monkeypatch.setattr(PaperBroker, "place_order", real_place)
    monkeypatch.setattr(PaperBroker, "query_order", real_read)
    poll()
    order = reload(order)
    assert (order.status, order.filled_quantity) == (S.PARTIALLY_FILLED, 300)
    assert books_compare("acc1").problems == []
