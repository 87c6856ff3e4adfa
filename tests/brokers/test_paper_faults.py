"""The paper broker's simulated faults (``faults`` in its broker settings): what each kind does to
a placement, a cancel and a read, at what rate, and that a seed makes them repeat."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import pytest

from brokers.adapters import paper
from brokers.adapters.paper import MSG_BUSY, PaperBroker
from brokers.interface import BrokerOrderStatus
from brokers.models import PaperOrder
from tests.brokers.test_paper import instruments, limit, open_account, publish  # noqa: F401 - fixture
from tests.conftest import Clock
from trading.errors import BrokerError, BrokerTimeout, BrokerUnavailable

pytestmark = pytest.mark.django_db


@pytest.fixture
def market(clock: Clock, instruments) -> None:  # noqa: F811 - the fixture imported above
    open_account()
    publish("000001.SZ", bid="9.99", ask="10.00", bid_volume=300, ask_volume=300)


def broker(**faults: Any) -> PaperBroker:
    return PaperBroker("alpha", {"faults": faults})


def outcome(call: Any) -> str:
    """What a call met: "ok", or the error class and message."""
    try:
        call()
    except BrokerError as exc:
        return f"{type(exc).__name__}: {exc.message}"
    return "ok"


def entered(ref: str) -> list[PaperOrder]:
    return list(PaperOrder.objects.filter(account_name="alpha", client_ref=ref))


def test_each_kind_on_a_placement(market) -> None:
    def place(kind: str, ref: str) -> str:
        return outcome(lambda: broker(calls=["place"], kinds={kind: 1.0}, slow_ms=50).place_order(
            limit("000001.SZ", "BUY", 100, "9.90", ref=ref)))

    assert place("timeout_after", "a") == "BrokerTimeout: 券商应答超时"
    assert [o.status for o in entered("a")] == ["OPEN"]  # entered, only the answer lost
    assert place("timeout_before", "b") == "BrokerTimeout: 券商应答超时" and entered("b") == []
    assert place("disconnect", "c") == "BrokerUnavailable: 与券商的连接已断开" and entered("c") == []
    assert place("error", "d") == f"BrokerError: {MSG_BUSY}"
    assert [(o.status, o.message) for o in entered("d")] == [("REJECTED", MSG_BUSY)]  # a refusal is recorded
    started = time.monotonic()
    assert place("slow", "e") == "ok"
    assert time.monotonic() - started >= 0.05 and [o.status for o in entered("e")] == ["OPEN"]


def test_each_kind_on_a_cancel(market) -> None:
    def cancel(kind: str) -> tuple[str, str]:
        ack = broker().place_order(limit("000001.SZ", "BUY", 100, "9.90", ref=f"c-{kind}"))
        met = outcome(lambda: broker(calls=["cancel"], kinds={kind: 1.0}, slow_ms=1).cancel_order(ack.broker_order_id))
        return met, PaperOrder.objects.get(broker_order_id=ack.broker_order_id).status

    assert cancel("timeout_after") == ("BrokerTimeout: 券商应答超时", "CANCELLED")
    assert cancel("timeout_before") == ("BrokerTimeout: 券商应答超时", "OPEN")
    assert cancel("disconnect") == ("BrokerUnavailable: 与券商的连接已断开", "OPEN")
    assert cancel("error") == (f"BrokerError: {MSG_BUSY}", "OPEN")
    assert cancel("slow") == ("ok", "CANCELLED")


def test_reads_fail_and_a_replayed_trade_is_listed_once_unless_passed_on(market) -> None:
    ack = broker().place_order(limit("000001.SZ", "BUY", 1000, "10.00", ref="r"))  # 300 fill at once
    for kind, expected in (("timeout_before", "BrokerTimeout"), ("timeout_after", "BrokerTimeout"),
                           ("disconnect", "BrokerUnavailable"), ("error", "BrokerError")):
        down = broker(calls=["query"], kinds={kind: 1.0})
        for read in (down.query_orders, down.query_trades, down.get_balance, down.get_positions,
                     lambda b=down: b.query_order(ack.broker_order_id), lambda b=down: b.query_changes(None)):
            assert outcome(read).startswith(f"{expected}:")
    replay = broker(calls=["query"], kinds={"duplicate": 1.0})
    assert len(replay.query_trades()) == len(replay.query_order(ack.broker_order_id).trades) == 1
    assert len(replay.query_changes(None).trades) == 1
    passed_on = broker(calls=["query"], kinds={"duplicate": 1.0}, report_duplicates=True)
    [first, second] = passed_on.query_trades()
    assert first == second and first.quantity == 300
    assert len(passed_on.query_order(ack.broker_order_id).trades) == len(passed_on.query_changes(None).trades) == 2


def test_disconnected_refuses_every_call_until_reconnected(market) -> None:
    faults: dict[str, Any] = {"disconnected": True}
    adapter = PaperBroker("alpha", {"faults": faults})
    for call in (adapter.login, adapter.query_orders, adapter.get_balance,
                 lambda: adapter.place_order(limit("000001.SZ", "BUY", 100, "9.90", ref="x"))):
        with pytest.raises(BrokerUnavailable):
            call()
    assert entered("x") == []
    faults["disconnected"] = False  # the same adapter, reconnected
    adapter.place_order(limit("000001.SZ", "BUY", 100, "9.90", ref="x"))
    assert len(entered("x")) == 1


def test_a_rate_is_spread_over_the_kinds_and_a_seed_repeats_the_same_faults(market) -> None:
    def run(seed: int) -> list[str]:
        paper._FAULT_CALLS.clear()  # as in a fresh process
        adapter = broker(rate=0.3, seed=seed, calls=["place"], slow_ms=0)
        return [outcome(lambda n=n: adapter.place_order(limit("000001.SZ", "BUY", 100, "9.00", ref=f"s{seed}-{n}")))
                .split(":")[0] for n in range(400)]

    first = run(7)
    counts = Counter(first)
    assert 80 <= len(first) - counts["ok"] <= 160  # 30 % of 400, but slow answers count as "ok"
    assert {"BrokerTimeout", "BrokerUnavailable", "BrokerError"} <= set(counts)
    PaperOrder.objects.all().delete()
    again = [o for o in run(7)]
    assert again == first  # same seed, same refs: the same faults
    PaperOrder.objects.all().delete()
    assert run(8) != first


def test_an_order_sent_again_draws_afresh(market) -> None:
    """A placement that failed is not doomed to fail every time: each attempt draws again, and the
    attempts repeat with the seed."""
    def attempts(ref: str) -> list[str]:
        adapter = broker(rate=0.5, seed=3, kinds={"timeout_before": 1}, calls=["place"])
        seen = []
        for _ in range(20):
            met = outcome(lambda: adapter.place_order(limit("000001.SZ", "BUY", 100, "9.00", ref=ref)))
            seen.append(met)
            if met == "ok":
                return seen
        return seen

    runs = [attempts(f"again-{n}") for n in range(30)]
    assert all(run[-1] == "ok" for run in runs)  # every order got through
    assert any(len(run) > 1 for run in runs)  # and some only after a failed attempt
    assert all(len(entered(f"again-{n}")) == 1 for n in range(30))  # once each
    paper._FAULT_CALLS.clear()
    PaperOrder.objects.all().delete()
    assert [attempts(f"again-{n}") for n in range(30)] == runs


def test_legacy_settings_are_the_same_network(market) -> None:
    lossy = PaperBroker("alpha", {"lose_cancel_answers": True})
    ack = lossy.place_order(limit("000001.SZ", "BUY", 100, "9.90", ref="l"))
    with pytest.raises(BrokerTimeout):
        lossy.cancel_order(ack.broker_order_id)
    assert PaperOrder.objects.get(broker_order_id=ack.broker_order_id).status == BrokerOrderStatus.CANCELLED
    with pytest.raises(BrokerTimeout, match="券商连接超时"):
        PaperBroker("alpha", {"unreachable": True, "faults": {"rate": 0}}).query_orders()
