"""Replay (compliance/replay.py): an account rebuilt from its records matches what was stored.

A day of generated activity goes through the real services (intake, the in-process broker
workers, polling, cancels) against the scripted broker: hundreds of orders in three symbols, buys
and sells, full and partial fills, cancels before and after a partial fill, orders left working,
and sells of the day's purchases on the next trading day (the ``clock`` fixture). The replay to the
present must equal the stored Account, Position and working Order rows; the replay to a moment in
the middle must equal a snapshot of them taken then; and a change made behind the services' back
is reported.
"""

from __future__ import annotations

import random
import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from audit.services import Actor
from brokers.adapters.scripted import BrokerScript
from compliance.replay import account_replay, account_replay_check, account_states_compare, account_stored
from orders.models import Order, OrderStatus
from orders.services import OrderInput, account_poll, order_cancel, order_submit
from tests import factories
from tests.conftest import Clock
from trading.errors import TradingError
from trading.models import Account, Position

pytestmark = pytest.mark.django_db(transaction=True)

ACTOR = Actor.api_key("replay-tests")
SYMBOLS = ("600000.SH", "000001.SZ", "600519.SH")
PRICES = {"600000.SH": Decimal("10.00"), "000001.SZ": Decimal("12.00"), "600519.SH": Decimal("15.00")}


def acc() -> Account:
    return Account.objects.get(name="acc1")


def poll() -> None:
    account_poll(account_id=acc().pk)


def load_opening() -> None:
    from brokers.services import opening_positions_load

    for symbol in SYMBOLS[1:]:
        factories.quote(symbol, prev_close=str(PRICES[symbol]))
    opening_positions_load(account_name="acc1", actor=ACTOR, rows=[
        {"symbol": symbol, "quantity": "20000", "avg_cost": str(PRICES[symbol] - 1), "acquired": "2020-01-02"}
        for symbol in SYMBOLS])


class Day:
    """Generates orders and the broker's answers to them."""

    def __init__(self, script: BrokerScript, seed: int) -> None:
        self.script = script
        self.random = random.Random(seed)
        self.count = 0

    def submit(self, side: str, symbol: str, quantity: int) -> Order | None:
        self.count += 1
        ticks = self.random.randint(-20, 20)
        price = PRICES[symbol] + Decimal(ticks) / 100
        body = factories.order_body(symbol=symbol, side=side, quantity=quantity, price=str(price),
                                    client_order_id=f"gen-{self.count:05d}")
        try:
            return order_submit(OrderInput(**body), actor=ACTOR).order
        except TradingError:  # not enough cash or shares for this one: the day goes on
            return None

    def fill(self, order: Order, quantity: int) -> None:
        order.refresh_from_db()
        fee = (Decimal(quantity) * Decimal("0.0003")).quantize(Decimal("0.01"))
        self.script.fill(order.broker_order_id, quantity, order.price, commission=max(fee, Decimal("5")),
                         stamp_duty=Decimal("1.00") if order.side == "SELL" else Decimal("0"))

    def one(self, side: str | None = None) -> Order | None:
        rnd = self.random
        side = side or rnd.choice(("BUY", "BUY", "SELL"))
        order = self.submit(side, rnd.choice(SYMBOLS), rnd.randint(1, 8) * 100)
        if order is None:
            return None
        order.refresh_from_db()
        if order.status != OrderStatus.SUBMITTED:
            return order
        what = rnd.random()
        if what < 0.35:  # filled in one
            self.fill(order, order.quantity)
            poll()
        elif what < 0.55:  # filled in parts
            first = order.quantity // 2 // 100 * 100 or 100
            self.fill(order, first)
            poll()
            if order.quantity - first:
                self.fill(order, order.quantity - first)
                poll()
        elif what < 0.70:  # partly filled, then cancelled
            self.fill(order, 100)
            poll()
            if order.quantity > 100:
                order_cancel(order_id=order.pk, actor=ACTOR, reason="generated")
        elif what < 0.85:  # cancelled
            order_cancel(order_id=order.pk, actor=ACTOR, reason="generated")
        elif what < 0.93:  # partly filled, left working
            self.fill(order, 100)
            poll()
        # else: left working untouched
        return order


def assert_replay_matches_stored() -> None:
    replayed, differences = account_replay_check(account_name="acc1")
    assert differences == [], "\n".join(map(str, differences))
    assert replayed.open_orders, "the generated day should leave some orders working"


def test_replay_matches_the_stored_state_after_a_day_and_a_snapshot_in_its_middle(
        script: BrokerScript, clock: Clock) -> None:
    load_opening()
    day = Day(script, seed=20261123)
    for _ in range(150):
        day.one()
    time.sleep(0.002)
    middle = timezone.now()
    snapshot = account_stored(account=acc())
    time.sleep(0.002)
    for _ in range(150):
        day.one()
    # The next trading day: sell what was bought (T+1), and more of the same.
    clock.at = clock.at + timedelta(days=1)
    for position in Position.objects.filter(account=acc(), quantity__gt=0).select_related("instrument"):
        sellable = position.sellable_quantity(clock.at.date())
        if sellable >= 100:
            order = day.submit("SELL", position.instrument.symbol, min(sellable // 100, 5) * 100)
            if order is not None:
                day.fill(order, order.quantity)
                poll()
    for _ in range(60):
        day.one()

    orders = Order.objects.filter(account=acc())
    assert orders.count() >= 300
    assert orders.filter(status=OrderStatus.FILLED).count() > 50
    assert orders.filter(status=OrderStatus.CANCELLED, filled_quantity__gt=0).exists()
    assert orders.filter(status=OrderStatus.PARTIALLY_FILLED).exists()
    assert orders.filter(side="SELL", status=OrderStatus.FILLED).exists()

    assert_replay_matches_stored()
    then = account_replay(account=acc(), at=middle)
    assert account_states_compare(snapshot, then) == []
    assert then.cash != acc().cash  # the middle is not the end: the comparison above is not trivial
    assert snapshot.open_orders.keys() != account_stored(account=acc()).open_orders.keys()


def test_the_check_reports_a_change_made_behind_the_services_back(script: BrokerScript) -> None:
    load_opening()
    day = Day(script, seed=7)
    for _ in range(20):
        day.one(side="BUY")
    assert_replay_matches_stored()
    Account.objects.filter(name="acc1").update(cash=acc().cash + 1)
    position = Position.objects.filter(account=acc()).first()
    Position.objects.filter(pk=position.pk).update(quantity=position.quantity + 100)
    _, differences = account_replay_check(account_name="acc1")
    described = {d.what for d in differences}
    assert "cash" in described
    assert f"position {position.instrument.symbol} quantity" in described
    with pytest.raises(CommandError, match="differs"):
        call_command("replay_account", "acc1", "--check")


def test_the_command_prints_the_state_at_a_moment(script: BrokerScript, capsys: pytest.CaptureFixture[str]) -> None:
    from brokers.services import opening_positions_load

    before = timezone.localtime()
    time.sleep(0.002)
    opening_positions_load(account_name="acc1", actor=ACTOR, rows=[
        {"symbol": "600000.SH", "quantity": "3000", "avg_cost": "9.50", "acquired": "2020-01-02"}])
    call_command("replay_account", "acc1", "--at", before.strftime("%Y-%m-%d %H:%M:%S.%f"))
    assert "position 600000.SH" not in capsys.readouterr().out  # not loaded yet then
    call_command("replay_account", "acc1", "--check")
    out = capsys.readouterr().out
    assert "position 600000.SH: 3000 frozen 0" in out and "cash 1000000.00" in out
    assert "matches the stored state" in out
