"""Live updates against the real stack: daphne serving /ws/live/, a websockets client sending the
Origin header, PostgreSQL and Redis shared with the test process (tests/monitoring/conftest.py).

A strategy's key sees its accounts' events as they commit, numbered per account; a change rolled
back is never seen; a client that missed events re-syncs from the snapshot; nobody without a key
or a verified staff session, or from another site's page, gets a stream; and a client's
messages change nothing.
"""

from __future__ import annotations

import time

import pytest
from django.db import transaction

from monitoring import live
from orders.models import Order, OrderStatus
from tests import factories
from tests.monitoring.conftest import live_connect, live_settle, refused, session_cookie
from tests.staff_helpers import staff_member
from trading.events import EventKind, publish

pytestmark = pytest.mark.django_db(transaction=True)

BUY = {"account": "acc1", "symbol": "600000.SH", "side": "BUY", "order_type": "LIMIT", "price": "10.01", "quantity": 100}


@pytest.fixture
def market():
    """acc1 and acc2; 600000.SH offered at 10.01 (a buy at 10.01 fills at once at the paper broker)."""
    factories.instrument("600000.SH")
    factories.quote("600000.SH", prev_close="10.05", bid="10.00", ask="10.01", bid_volume=50000, ask_volume=50000)
    factories.account("acc1", cash="1000000")
    factories.account("acc2", cash="1000000")
    keys = {"acc1": factories.api_key("key1", accounts=["acc1"]), "acc2": factories.api_key("key2", accounts=["acc2"])}
    live_settle()  # the deposits' events are out: a client connecting now sees what comes next
    return keys


def _relay_pass() -> None:
    """What the outbox relay and a worker do with an owed order, here in the test process."""
    from orders.services import outbox_relay_once

    outbox_relay_once()


def _seqs(events: list[dict]) -> list[int]:
    return [e["seq"] for e in events]


def test_an_order_posted_over_the_api_streams_its_states_fill_position_and_balance_in_number_order(asgi_server, market):
    client = live_connect(asgi_server, key=market["acc1"])
    other = live_connect(asgi_server, key=market["acc2"])
    try:
        assert client.hello["accounts"] == ["acc1"]
        base = client.hello["seq"]["acc1"]  # numbered so far (the deposit of the fixture)
        status, body = asgi_server.request("POST", "/api/v1/orders", {**BUY, "client_order_id": "live-1"},
                                           {"Authorization": f"Bearer {market['acc1']}"})
        assert status == 201, body
        created = client.until(lambda e: e["kind"] == "order")
        assert created["data"]["id"] == body["id"] and created["data"]["status"] == OrderStatus.NEW
        assert created["data"]["symbol"] == "600000.SH" and created["account"] == "acc1"

        _relay_pass()  # in this process: the events travel through Redis to the server's clients
        filled = client.until(lambda e: e["kind"] == "order" and e["data"]["status"] == OrderStatus.FILLED)
        assert filled["data"]["filled_quantity"] == 100
        client.quiet_for(1.0)
        kinds = [(e["kind"], e["data"].get("status")) for e in client.events]
        assert ("order", OrderStatus.SUBMITTING) in kinds and ("order", OrderStatus.SUBMITTED) in kinds
        fill = next(e for e in client.events if e["kind"] == "fill")
        assert fill["data"]["quantity"] == 100 and fill["data"]["price"] == "10.01" and fill["data"]["order"] == body["id"]
        position = next(e for e in client.events if e["kind"] == "position")
        assert position["data"]["symbol"] == "600000.SH" and position["data"]["quantity"] == 100
        balance = [e for e in client.events if e["kind"] == "balance"][-1]
        assert balance["data"]["frozen"] == "0.00" and balance["data"]["cash"] != "1000000.00"
        # numbered 1, 2, 3 ... without a gap, in the order they were sent
        assert sorted(_seqs(client.events)) == list(range(base + 1, base + len(client.events) + 1))
        # another key's client saw nothing of acc1
        assert other.quiet_for(0.5) == []
    finally:
        client.close()
        other.close()


def test_an_idle_stream_stays_open(asgi_server, market):
    """Longer than the channel layer's 5 s blocking pop: the socket timeout must outwait it."""
    import time

    client = live_connect(asgi_server, key=market["acc1"])
    try:
        time.sleep(7)
        with transaction.atomic():
            publish(EventKind.BALANCE, "acc1", {"cash": "4.00", "frozen": "0.00", "available": "4.00"})
        assert client.until(lambda e: e["kind"] == "balance", timeout=10)["data"]["cash"] == "4.00"
    finally:
        client.close()
    assert "Timeout reading" not in asgi_server.log.read_text()


def test_a_change_rolled_back_is_never_streamed_and_leaves_no_gap(asgi_server, market):
    client = live_connect(asgi_server, key=market["acc1"])
    base = client.hello["seq"]["acc1"]
    try:
        with pytest.raises(RuntimeError), transaction.atomic():
            publish(EventKind.BALANCE, "acc1", {"cash": "1.00", "frozen": "0.00", "available": "1.00"})
            raise RuntimeError("the change fails")
        with transaction.atomic():
            publish(EventKind.BALANCE, "acc1", {"cash": "2.00", "frozen": "0.00", "available": "2.00"})
        event = client.until(lambda e: e["kind"] == "balance")
        assert event["data"]["cash"] == "2.00" and event["seq"] == base + 1
        assert client.quiet_for(0.5) == []
    finally:
        client.close()


def test_a_client_that_missed_events_resyncs_from_the_snapshot(asgi_server, market):
    key = market["acc1"]
    client = live_connect(asgi_server, key=key)
    status, body = asgi_server.request("POST", "/api/v1/orders", {**BUY, "client_order_id": "live-2"},
                                       {"Authorization": f"Bearer {key}"})
    assert status == 201
    seen = client.until(lambda e: e["kind"] == "order")["seq"]
    client.close()  # offline while the order fills

    _relay_pass()
    assert Order.objects.get(pk=body["id"]).status == OrderStatus.FILLED
    live_settle()  # sent while nobody listened
    again = live_connect(asgi_server, key=key)
    try:
        missed = again.hello["seq"]["acc1"]
        assert missed > seen + 1  # the numbers say events were missed
        status, snapshot = asgi_server.request("GET", "/api/v1/accounts/acc1/live-snapshot",
                                               headers={"Authorization": f"Bearer {key}"})
        assert status == 200, snapshot
        assert snapshot["seq"]["acc1"] >= missed  # complete up to at least what was missed
        [account] = snapshot["accounts"]
        assert [(o["id"], o["status"], o["filled_quantity"]) for o in account["orders"]] == [(body["id"], "FILLED", 100)]
        assert [(p["symbol"], p["quantity"]) for p in account["positions"]] == [("600000.SH", 100)]
        assert account["balance"]["frozen"] == "0.00"
        # the stream goes on from there
        with transaction.atomic():
            publish(EventKind.BALANCE, "acc1", {"cash": "3.00", "frozen": "0.00", "available": "3.00"})
        assert again.until(lambda e: e["kind"] == "balance")["seq"] == snapshot["seq"]["acc1"] + 1
        assert again.events[-1]["data"]["cash"] == "3.00"
    finally:
        again.close()
    # another key's account: the same 403 as every REST endpoint
    status, _ = asgi_server.request("GET", "/api/v1/accounts/acc2/live-snapshot", headers={"Authorization": f"Bearer {key}"})
    assert status == 403


def test_refused_without_credentials_with_a_wrong_key_or_from_another_site(asgi_server, market):
    assert refused(asgi_server) == 403
    assert refused(asgi_server, origin=None) == 403
    assert refused(asgi_server, key="tbo_00000000_not-a-key") == 403
    assert refused(asgi_server, key=market["acc1"], origin="http://evil.example") == 403
    assert refused(asgi_server, key=market["acc1"], query="?account=acc2") == 403
    # a key without an Origin (a strategy's script, not a browser) is fine
    live_connect(asgi_server, key=market["acc1"], origin=None).close()


def test_staff_sessions_by_role_and_second_factor(asgi_server, market):
    operator = staff_member("zhang.wei", "Operator")
    cookie = session_cookie(operator)
    client = live_connect(asgi_server, cookie=cookie)
    try:
        assert client.hello["accounts"] == ["acc1", "acc2"] and client.hello["system"] is True
        with transaction.atomic():
            publish(EventKind.HEALTH, "", {"part": "worker", "state": "down"})
            publish(EventKind.BALANCE, "acc2", {"cash": "5.00", "frozen": "0.00", "available": "5.00"})
        # two groups: each in its order, not one after the other
        client.until(lambda e: {(x["kind"], x["account"]) for x in client.events} >= {("health", ""), ("balance", "acc2")})
    finally:
        client.close()
    # the cookie from another site's page: refused (cross-site websocket hijacking)
    assert refused(asgi_server, cookie=cookie, origin="http://evil.example") == 403
    assert refused(asgi_server, cookie=cookie, origin=None) == 403
    # password without the one-time password: refused
    from django.test import Client

    half = Client()
    half.force_login(staff_member("half.way", "Operator").user)
    assert refused(asgi_server, cookie=half.cookies["sessionid"].value) == 403
    # staff without a role that may view orders: refused
    assert refused(asgi_server, cookie=session_cookie(staff_member("no.role", None))) == 403


def _closed_with(client, timeout: float = 15.0) -> int:
    """Read until the server closes the stream; the close code."""
    from websockets.exceptions import ConnectionClosed

    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            client.next_message(timeout=deadline - time.monotonic())
    except ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd else 0
    raise AssertionError(f"still open after {timeout} s")


def test_a_stream_ends_when_its_key_is_revoked_or_its_staff_member_made_inactive(asgi_server, market):
    from audit.services import Actor
    from staff.services import api_key_revoke
    from trading.models import ApiKey

    client = live_connect(asgi_server, key=market["acc1"])
    other = live_connect(asgi_server, key=market["acc2"])
    operator = staff_member("li.na", "Operator")
    watching = live_connect(asgi_server, cookie=session_cookie(operator))
    try:
        api_key_revoke(key_id=ApiKey.objects.get(name="key1").pk, actor=Actor.system("test"), reason="leaked")
        assert _closed_with(client) == 4401  # within the recheck and the key cache's few seconds
        operator.user.is_active = False
        operator.user.save(update_fields=["is_active"])
        assert _closed_with(watching) == 4401
        other.connection.send('{"type": "ping"}')  # the others watch on
        assert "pong" in [message.get("type") for message in other.quiet_for(3)]
    finally:
        for each in (client, other, watching):
            each.close()


def test_a_client_message_changes_nothing(asgi_server, market):
    from tests.admin import desk

    desk.market()
    held = desk.held()
    live_settle()
    client = live_connect(asgi_server, cookie=session_cookie(staff_member("zhang.wei", "Operator")))
    try:
        for message in (f'{{"type": "approve", "order": {held.pk}}}', "not json", '{"type": "live.event", "text": "x"}',
                        '{"type": "websocket.disconnect"}'):
            client.connection.send(message)
            answer = client.next_message()
            assert answer["type"] == "error" and "read-only" in answer["detail"]
        client.connection.send('{"type": "ping"}')
        assert client.next_message() == {"type": "pong"}
    finally:
        client.close()
    held.refresh_from_db()
    assert held.status == OrderStatus.PENDING_APPROVAL


def test_publishing_in_a_process_without_consumers_or_redis_is_harmless(settings):
    settings.REDIS_URL = ""
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    live.consumer_loop = None
    before = live.seq_current(["acc1"])["acc1"]  # earlier tests of this process may have numbered some
    with transaction.atomic():
        publish(EventKind.ORDER, "acc1", {"id": 1})
    assert live.seq_current(["acc1"])["acc1"] == before  # nobody listens here: nothing numbered
