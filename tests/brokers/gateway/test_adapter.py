"""The ``gateway`` adapter: the easytrader adapter over the gateway, sending each order under our
client_ref at most once and reporting the client_ref on the broker's orders."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest

from brokers.adapters.gateway import GatewayBroker
from brokers.gateway.client import GatewayClient
from brokers.interface import OrderRequest
from brokers.registry import adapter_class
from tests.brokers.contract.targets.gateway import GatewayGJVenue, GatewayVenue, OverGateway
from tests.brokers.gateway.harness import KEY
from trading.errors import BrokerError, BrokerTimeout, BrokerUnavailable

D = Decimal


def order(client_ref: str = "ord-1", price: str = "9.90", quantity: int = 1000) -> OrderRequest:
    return OrderRequest(client_ref=client_ref, symbol="600000.SH", side="BUY", order_type="LIMIT",
                        quantity=quantity, price=D(price))


def journal(venue: OverGateway) -> GatewayClient:
    return GatewayClient(venue.gateway.url, KEY.key_id, KEY.secret)


@pytest.fixture
def ht() -> Iterator[GatewayVenue]:
    venue = GatewayVenue()
    venue.fund(D("1000000"))
    yield venue
    venue.close()


@pytest.fixture
def gj() -> Iterator[GatewayGJVenue]:
    venue = GatewayGJVenue()
    venue.fund(D("1000000"))
    yield venue
    venue.close()


def test_the_gateway_kind_is_registered() -> None:
    assert adapter_class("gateway") is GatewayBroker
    assert GatewayBroker.capabilities.client_ref is True


def test_a_resubmit_after_a_lost_answer_gets_the_first_order_not_a_second(ht: GatewayVenue) -> None:
    broker = ht.adapter()
    ht.fail_next_place(took_effect=True)
    with pytest.raises(BrokerTimeout):
        broker.place_order(order())
    ack = broker.place_order(order())  # a retry under the same client_ref is safe through the gateway
    assert len(ht.host.sent) == 1
    [listed] = [o for o in broker.query_orders() if o.client_ref == "ord-1"]
    assert listed.broker_order_id == ack.broker_order_id


def test_a_resubmit_after_a_gateway_restart_gets_the_first_order(ht: GatewayVenue) -> None:
    first = ht.adapter().place_order(order())
    ht.disconnect()
    ht.reconnect()
    again = ht.adapter().place_order(order())  # a new worker, a restarted gateway
    assert again.broker_order_id == first.broker_order_id and len(ht.host.sent) == 1
    assert [o.client_ref for o in ht.adapter().query_orders()] == ["ord-1"]


def test_an_order_confirmed_without_a_number_is_bound_to_its_client_ref(gj: GatewayGJVenue) -> None:
    broker = gj.adapter()
    ack = broker.place_order(order())
    assert journal(gj).submission("ord-1")["entrust_no"] == ack.broker_order_id
    assert [(o.broker_order_id, o.client_ref) for o in gj.adapter().query_orders()] == [(ack.broker_order_id, "ord-1")]


def test_an_order_whose_answer_was_lost_is_bound_when_it_shows(gj: GatewayGJVenue) -> None:
    broker = gj.adapter()
    gj.fail_next_place(took_effect=True)  # the window timed out after the order was entered
    with pytest.raises(BrokerTimeout):
        broker.place_order(order())
    assert journal(gj).submission("ord-1")["entrust_no"] is None
    [listed] = gj.adapter().query_orders()
    assert listed.client_ref == "ord-1"
    assert journal(gj).submission("ord-1")["entrust_no"] == listed.broker_order_id
    with pytest.raises(BrokerTimeout):  # the gateway replays the first answer; nothing is sent again
        broker.place_order(order())
    assert len(gj.host.sent) == 1


def test_two_lost_orders_alike_stay_unbound(gj: GatewayGJVenue) -> None:
    broker = gj.adapter()
    for ref in ("ord-1", "ord-2"):
        gj.fail_next_place(took_effect=True)
        with pytest.raises(BrokerTimeout):
            broker.place_order(order(ref))
    assert [o.client_ref for o in broker.query_orders()] == ["", ""]  # which is which cannot be told
    assert journal(gj).submission("ord-1")["entrust_no"] is None


def test_a_lost_order_is_not_bound_to_an_order_of_another_client_ref(gj: GatewayGJVenue) -> None:
    broker = gj.adapter()
    gj.fail_next_place(took_effect=False)  # reported success, never entered
    with pytest.raises(BrokerTimeout):
        broker.place_order(order("ord-1"))
    broker.place_order(order("ord-2"))  # the same order again, under a new reference
    assert [o.client_ref for o in broker.query_orders()] == ["ord-2"]
    assert journal(gj).submission("ord-1")["entrust_no"] is None


def test_the_clients_refusal_keeps_the_brokers_words_and_is_never_resent(ht: GatewayVenue) -> None:
    broker = ht.adapter()
    for _ in range(2):
        with pytest.raises(BrokerError) as info:
            broker.place_order(order(quantity=200_000))
        assert not isinstance(info.value, BrokerTimeout | BrokerUnavailable)
        assert "可用资金不足" in info.value.message
    assert len(ht.host.sent) == 1


def test_a_wrong_secret_is_unavailable_and_reaches_nothing(ht: GatewayVenue) -> None:
    broker = GatewayBroker(ht.account, {"url": ht.gateway.url, "key_id": KEY.key_id, "secret": "00" * 32,
                                        "client": "ht_client"})
    logins = ht.host.logins
    with pytest.raises(BrokerUnavailable, match="bad signature"):
        broker.login()
    with pytest.raises(BrokerUnavailable):
        broker.place_order(order())
    assert ht.host.sent == [] and ht.host.logins == logins


def test_missing_settings_are_named_without_the_secret() -> None:
    with pytest.raises(BrokerUnavailable) as info:
        GatewayBroker("acc", {"url": "https://10.0.0.5:8430", "secret": "ab" * 32})
    assert "key_id" in info.value.message and "ab" * 32 not in info.value.message


def test_the_gateway_logs_a_restarted_client_in_again(gj: GatewayGJVenue) -> None:
    broker = gj.adapter()
    broker.place_order(order())
    logins = gj.host.logins
    gj.disconnect()
    with pytest.raises(BrokerUnavailable):
        broker.get_balance()
    gj.reconnect()  # the client process is back, logged out
    assert broker.get_balance().cash == D("1000000")
    assert gj.host.logins == logins + 1


def test_the_heartbeat_asks_the_gateways_health(ht: GatewayVenue) -> None:
    broker = ht.adapter()
    broker.heartbeat()
    ht.host.disconnect()  # the client process dies; the gateway's probe finds out
    ht.gateway.server.app.host.probe_after = 0  # type: ignore[union-attr]
    with pytest.raises(BrokerUnavailable, match="not connected"):
        broker.heartbeat()
    ht.gateway.stop()
    with pytest.raises(BrokerUnavailable, match="cannot be reached"):
        broker.heartbeat()
    ht.gateway.start()
    ht.host.reconnect()
    broker.heartbeat()  # the gateway logged its client in again
