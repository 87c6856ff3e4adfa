"""A broker that drops and comes back: the circuit breaker, re-login, the heartbeat, and the
orders that wait meanwhile (brokers/connection.py; issue 10 item 4).

Against the scripted broker (its ``connected`` flag is the session): nothing is lost, nothing is
sent twice, unknown outcomes are queried after the reconnect, never resent, and operators see the
link's state and an event on every change.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.test import override_settings

from audit.models import AuditEvent
from audit.services import Actor
from brokers.adapters.scripted import BrokerScript, Reply
from brokers.connection import breaker_of, brokers_heartbeat, link_changed, link_open
from brokers.interface import OrderRequest
from brokers.models import BrokerLink, LinkState
from brokers.registry import broker_for
from orders.models import Order, OrderStatus
from orders.services import OrderInput, order_submit
from tests import factories
from tests.conftest import Clock
from tests.orders.test_modify import assert_money_invariants
from trading.errors import BrokerError, BrokerTimeout, BrokerUnavailable
from trading.models import Account

pytestmark = pytest.mark.django_db(transaction=True)

ACTOR = Actor.api_key("link-tests")
S = OrderStatus


def account() -> Account:
    return Account.objects.get(name="acc1")


def buy(client_order_id: str = "b-1", quantity: int = 1000) -> Order:
    body = factories.order_body(quantity=quantity, price="9.90", client_order_id=client_order_id)
    return order_submit(OrderInput(**body), actor=ACTOR).order


def request() -> OrderRequest:
    return OrderRequest(client_ref="1", symbol="600000.SH", side="BUY", order_type="LIMIT", quantity=100,
                        price=Decimal("9.90"))


def reload(order: Order) -> Order:
    return Order.objects.get(pk=order.pk)


def link() -> BrokerLink:
    return BrokerLink.objects.get(account=account())


def events(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action, object_type="account").order_by("id"))


@pytest.fixture
def announced() -> list[str]:
    seen: list[str] = []

    def listen(sender: object, *, state: str, **kwargs: object) -> None:
        seen.append(state)

    link_changed.connect(listen, dispatch_uid="test-link-listener")
    yield seen
    link_changed.disconnect(dispatch_uid="test-link-listener")


def drop(script: BrokerScript) -> None:
    script.connected = False
    with pytest.raises(BrokerUnavailable):
        broker_for(account()).query_orders()


# --------------------------------------------------------------------------- the breaker


def test_a_lost_session_opens_the_circuit_at_once_and_says_so(script: BrokerScript, clock: Clock,
                                                               announced: list[str]) -> None:
    drop(script)
    assert (link().state, link().failures) == (LinkState.DOWN, 1)
    assert "券商连接已断开" in link().last_error and link().next_attempt_at > clock()
    [event] = events("broker.disconnected")
    assert event.account == "acc1" and "券商连接已断开" in event.reason
    assert announced == [LinkState.DOWN]
    # Open: calls fail fast without reaching the broker, even though it is back, until the back-off ends.
    script.connected = True
    with pytest.raises(BrokerUnavailable, match="next attempt"):
        broker_for(account()).place_order(request())
    assert script.placed == []


def test_timeouts_open_the_circuit_only_when_they_repeat(script: BrokerScript, clock: Clock) -> None:
    broker = broker_for(account())
    for _ in range(2):
        script.on_place(Reply.TIMEOUT, reaches_broker=False)
        with pytest.raises(BrokerTimeout):
            broker.place_order(request())
    assert link_open(account().pk) and not BrokerLink.objects.exists()
    script.on_place(Reply.TIMEOUT, reaches_broker=False)
    with pytest.raises(BrokerTimeout):
        broker.place_order(request())
    assert link().state == LinkState.DOWN and link().failures == 3


def test_a_refusal_is_an_answer_and_resets_the_count(script: BrokerScript) -> None:
    broker = broker_for(account())
    script.on_place(Reply.TIMEOUT, reaches_broker=False).on_place(Reply.TIMEOUT, reaches_broker=False)
    script.on_place(Reply.REFUSE, "可用资金不足")
    for expected in (BrokerTimeout, BrokerTimeout, BrokerError):
        with pytest.raises(expected):
            broker.place_order(request())
    assert breaker_of(account().pk).failures == 0 and link_open(account().pk)


@override_settings(BROKER_BACKOFF_BASE_SECONDS=4, BROKER_BACKOFF_MAX_SECONDS=10)
def test_the_back_off_doubles_with_jitter_up_to_its_cap_and_a_probe_logs_in_again(
        script: BrokerScript, clock: Clock, announced: list[str]) -> None:
    drop(script)
    waits = []
    for _ in range(4):
        wait = (breaker_of(account().pk).next_attempt - clock()).total_seconds()
        waits.append(wait)
        clock.advance(wait)
        assert link_open(account().pk)
        with pytest.raises(BrokerUnavailable):  # the probe: login fails, the circuit opens again
            broker_for(account()).query_orders()
    assert 3.2 <= waits[0] <= 4.8 and 6.4 <= waits[1] <= 9.6 and 8 <= waits[2] <= 12 and 8 <= waits[3] <= 12
    assert len(events("broker.disconnected")) == 1  # one event for the outage, not one per probe
    script.connected = True
    clock.advance((breaker_of(account().pk).next_attempt - clock()).total_seconds())
    assert broker_for(account()).query_orders() == []
    assert (link().state, link().failures, link().last_error) == (LinkState.UP, 0, "")
    assert len(events("broker.reconnected")) == 1 and announced == [LinkState.DOWN, LinkState.UP]


def test_a_reconnect_seen_by_another_process_lets_this_one_probe_at_once(script: BrokerScript, clock: Clock) -> None:
    drop(script)
    assert not link_open(account().pk)
    clock.advance(0.5)
    BrokerLink.objects.filter(account=account()).update(state=LinkState.UP, changed_at=clock())
    assert link_open(account().pk)


def test_the_heartbeat_notices_a_broker_that_drops_while_nothing_trades_and_finds_it_back(
        script: BrokerScript, clock: Clock) -> None:
    assert brokers_heartbeat() == {"acc1": LinkState.UP}
    script.connected = False
    assert brokers_heartbeat() == {"acc1": LinkState.DOWN}
    script.connected = True
    assert brokers_heartbeat() == {"acc1": LinkState.DOWN}  # not knocked on before its back-off ends
    clock.advance(120)
    assert brokers_heartbeat() == {"acc1": LinkState.UP}
    assert link().last_ok_at is not None


# --------------------------------------------------------------------------- orders while the link is down


def test_orders_wait_while_the_broker_is_down_and_go_once_when_it_is_back(script: BrokerScript, clock: Clock) -> None:
    drop(script)
    first, second = buy("w-1"), buy("w-2")
    assert [reload(o).status for o in (first, second)] == [S.NEW, S.NEW]  # accepted, owed, not sent
    assert script.placed == [] and reload(first).frozen_amount > 0
    assert_money_invariants()
    # Not claimed for the broker while its link is down: no SUBMITTING and back for each offer.
    assert not AuditEvent.objects.filter(object_type="order", after__event="BROKER_UNAVAILABLE").exists()
    script.connected = True
    clock.advance(120)
    brokers_heartbeat()  # finds the broker back: the account is polled and the orders released
    assert [reload(o).status for o in (first, second)] == [S.SUBMITTED, S.SUBMITTED]
    assert sorted(r.client_ref for r in script.placed) == sorted([str(first.pk), str(second.pk)])
    assert_money_invariants()


def test_a_placement_that_never_reached_the_broker_goes_back_to_new_not_rejected(script: BrokerScript,
                                                                                  clock: Clock) -> None:
    script.connected = False
    order = reload(buy())
    assert order.status == S.NEW and "waiting for the broker connection" in order.status_reason
    assert order.frozen_amount > 0 and script.placed == []  # its cash stays held
    assert_money_invariants()
    script.connected = True
    clock.advance(120)
    brokers_heartbeat()
    assert reload(order).status == S.SUBMITTED and len(script.placed) == 1


def test_after_a_reconnect_an_unknown_outcome_is_queried_never_resent(script: BrokerScript, clock: Clock) -> None:
    script.on_place(Reply.TIMEOUT, reaches_broker=True)  # the broker took it; the answer was lost
    order = buy()
    assert reload(order).status == S.UNKNOWN and len(script.placed) == 1
    script.connected = False
    brokers_heartbeat()
    script.connected = True
    clock.advance(120)
    brokers_heartbeat()  # reconnected: the account is polled
    assert reload(order).status == S.SUBMITTED and reload(order).broker_order_id
    assert len(script.placed) == 1  # queried, not sent again


def test_operators_see_the_link_and_the_orders_waiting_for_it(script: BrokerScript, clock: Clock, admin_client) -> None:
    drop(script)
    waiting = buy("w-1")
    page = admin_client.get("/admin/orders/order/?broker_link=waiting")
    assert page.status_code == 200 and f"/admin/orders/order/{waiting.pk}/change/" in page.content.decode()
    links = admin_client.get("/admin/brokers/brokerlink/").content.decode()
    assert "acc1" in links and "已断开" in links
    assert admin_client.get("/healthz").json() == {"status": "ok", "brokers_down": ["acc1"]}
    script.connected = True
    clock.advance(120)
    brokers_heartbeat()
    assert f"/admin/orders/order/{waiting.pk}/change/" not in admin_client.get("/admin/orders/order/?broker_link=waiting").content.decode()
    assert admin_client.get("/healthz").json() == {"status": "ok", "brokers_down": []}
