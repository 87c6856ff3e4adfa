"""Modify (cancel-and-replace): one live replacement, checked like any order, all or nothing.

Found by outside testing (issue 8): ten concurrent PATCHes sent nine replacements to the broker
without a freeze or risk verdicts; a PATCH that answered 409 had still created a replacement that
was sent and filled; a PATCH with a bad quantity cancelled the good original. The races run on
PostgreSQL with one connection per thread; the rest runs on either database.
"""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
from django.db import connection

from audit.services import Actor
from brokers.models import PaperOrder
from orders.models import TERMINAL_STATUSES, Order, OrderStatus
from orders.services import OrderInput, order_cancel, order_modify, order_submit
from risk.services import risk_rule_set
from tests import factories
from trading.errors import Conflict, InvalidOrder
from trading.models import Account

pytestmark = pytest.mark.django_db(transaction=True)

ACTOR = Actor.api_key("modify-tests")


@pytest.fixture
def market():
    from risk.controller import config_cache_clear

    config_cache_clear()
    factories.account("acc1", cash="1000000")
    factories.instrument("600000.SH")
    # Ask 10.00: a buy at 9.90 rests at the paper broker.
    factories.quote("600000.SH", prev_close="10.00", last="10.00", bid="9.99", ask="10.00")
    yield
    config_cache_clear()


def resting_buy(price: str = "9.90", quantity: int = 1000, client_order_id: str = "m-1") -> Order:
    data = OrderInput(account="acc1", symbol="600000.SH", side="BUY", order_type="LIMIT", price=price,
                      quantity=quantity, client_order_id=client_order_id)
    return order_submit(data, actor=ACTOR).order


def race(calls: list) -> list[object]:
    """Run each call in its own thread (own connection), all released at once; their results or exceptions."""
    barrier = threading.Barrier(len(calls))
    results: list[object] = [None] * len(calls)

    def run(index: int) -> None:
        try:
            barrier.wait(10)
            results[index] = calls[index]()
        except Exception as exc:  # noqa: BLE001 - every outcome is asserted
            results[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


def assert_money_invariants() -> None:
    """Cash = available + frozen, and every order's freeze is what the account holds frozen."""
    from django.db.models import Sum

    from trading.models import CashEntryKind

    account = Account.objects.get(name="acc1")
    frozen_by_orders = Order.objects.filter(account=account).aggregate(s=Sum("frozen_amount"))["s"] or Decimal("0")
    assert account.frozen == frozen_by_orders
    assert account.cash == account.available + account.frozen
    freezes = [CashEntryKind.FREEZE, CashEntryKind.UNFREEZE]
    assert account.ledger.exclude(kind__in=freezes).aggregate(s=Sum("amount"))["s"] == account.cash
    assert (account.ledger.filter(kind__in=freezes).aggregate(s=Sum("amount"))["s"] or 0) == account.frozen


def sent_to_broker() -> list[Order]:
    refs = set(PaperOrder.objects.filter(account_name="acc1").values_list("client_ref", flat=True))
    return list(Order.objects.filter(pk__in=[int(r) for r in refs if r]))


# --------------------------------------------------------------------------- all or nothing


@pytest.mark.parametrize(
    ("change", "field", "rule"),
    [
        ({"quantity": 150}, "quantity", "lot_size"),
        ({"quantity": 1_000_100}, "quantity", None),  # above the per-order maximum
        ({"quantity": 200_000}, "quantity", "available_cash"),  # 1.98 million CNY, 1 million in cash
        ({"price": "12.00"}, "price", None),  # above the limit-up price 11.00
    ],
)
def test_a_modify_that_cannot_be_admitted_is_422_and_leaves_the_original(market, change, field, rule) -> None:
    original = resting_buy()
    assert original.status == OrderStatus.SUBMITTED
    with pytest.raises(InvalidOrder) as refused:
        order_modify(order_id=original.pk, actor=ACTOR, **change)
    problem = refused.value.problems[0]
    assert problem.field == field
    if rule:
        assert problem.rule == rule
    original.refresh_from_db()
    assert original.status == OrderStatus.SUBMITTED
    assert Order.objects.count() == 1
    assert original.frozen_amount > 0
    assert PaperOrder.objects.get(client_ref=str(original.pk)).status == "OPEN"
    assert_money_invariants()


def test_a_modify_refused_by_risk_control_is_422_and_leaves_the_original(market) -> None:
    risk_rule_set(code="max_order_amount", params={"max_amount": "20000"}, action="REJECT")
    original = resting_buy()
    with pytest.raises(InvalidOrder) as refused:
        order_modify(order_id=original.pk, actor=ACTOR, quantity=3000)
    assert (refused.value.problems[0].field, refused.value.problems[0].rule) == ("quantity", "max_order_amount")
    original.refresh_from_db()
    assert original.status == OrderStatus.SUBMITTED and Order.objects.count() == 1


def test_the_original_s_freeze_counts_toward_the_replacement(market) -> None:
    """A buy that holds most of the cash can be repriced: its freeze is released before the replacement's."""
    original = resting_buy(price="9.90", quantity=100_000)  # about 990,000 CNY frozen
    replacement = order_modify(order_id=original.pk, actor=ACTOR, price="9.80")
    assert replacement.status == OrderStatus.SUBMITTED and replacement.replaces_id == original.pk
    original.refresh_from_db()
    assert original.status == OrderStatus.CANCELLED and original.frozen_amount == 0
    assert replacement.frozen_amount > 0 and replacement.admitted_at is not None
    assert_money_invariants()


def test_a_waiting_replacement_is_never_sent_or_modified(market, monkeypatch) -> None:
    """While the original's cancel is outstanding the replacement holds nothing and nothing sends it."""
    import orders.services as services
    from orders.services import outbox

    original = resting_buy()
    monkeypatch.setattr(outbox, "enqueue", lambda order_id, kind: True)  # queued, never run: the cancel never reaches the broker
    replacement = order_modify(order_id=original.pk, actor=ACTOR, price="9.95")
    assert replacement.status == OrderStatus.NEW and replacement.admitted_at is None and replacement.frozen_amount == 0
    assert services.outbox_relay_once() == 1  # the original's cancel only
    assert services.order_send_to_broker(order_id=replacement.pk).status == OrderStatus.NEW
    assert str(replacement.pk) not in set(PaperOrder.objects.values_list("client_ref", flat=True))
    with pytest.raises(Conflict):
        order_modify(order_id=replacement.pk, actor=ACTOR, price="9.96")
    with pytest.raises(Conflict):
        order_modify(order_id=original.pk, actor=ACTOR, price="9.97")
    assert Order.objects.count() == 2


def test_a_refused_cancel_returns_the_original_and_drops_the_replacement(market, monkeypatch) -> None:
    """The exchanges refuse cancels in the 9:20-9:25 auction: the original works on, the modify is abandoned."""
    from brokers.adapters.paper import PaperBroker
    from trading.errors import BrokerError

    def refuse(self, broker_order_id: str) -> None:
        raise BrokerError("集合竞价时段不可撤单 (cancels are refused 9:20-9:25)")

    monkeypatch.setattr(PaperBroker, "cancel_order", refuse)
    original = resting_buy()
    replacement = order_modify(order_id=original.pk, actor=ACTOR, price="9.95")
    original.refresh_from_db()
    replacement.refresh_from_db()
    assert original.status == OrderStatus.SUBMITTED and "cancel refused" in original.status_reason
    assert replacement.status == OrderStatus.CANCELLED and replacement.frozen_amount == 0
    assert [o.pk for o in sent_to_broker()] == [original.pk]
    assert_money_invariants()


# --------------------------------------------------------------------------- races (PostgreSQL)


@pytest.mark.usefixtures("require_postgres")
def test_ten_concurrent_modifies_make_one_replacement_that_is_checked_and_frozen(market) -> None:
    original = resting_buy()
    prices = [f"9.{80 + i}" for i in range(10)]
    results = race([lambda p=p: order_modify(order_id=original.pk, actor=ACTOR, price=p) for p in prices])
    accepted = [r for r in results if isinstance(r, Order)]
    refused = [r for r in results if isinstance(r, Conflict)]
    assert len(accepted) == 1 and len(refused) == 9, results
    replacements = list(Order.objects.filter(replaces=original))
    assert len(replacements) == 1
    at_broker = sent_to_broker()
    assert sorted(o.pk for o in at_broker) == sorted([original.pk, replacements[0].pk])
    for order in at_broker:
        assert order.admitted_at is not None
    live = Order.objects.exclude(status__in=TERMINAL_STATUSES).get()
    assert live.pk == replacements[0].pk and live.frozen_amount > 0
    assert_money_invariants()


@pytest.mark.usefixtures("require_postgres")
def test_concurrent_modifies_of_a_held_order_leave_one_held_replacement(market) -> None:
    risk_rule_set(code="max_order_amount", params={"max_amount": "50000"}, action="REVIEW")
    held = resting_buy(quantity=6000)  # 59,400 CNY: held for review
    assert held.status == OrderStatus.PENDING_APPROVAL
    results = race([lambda q=q: order_modify(order_id=held.pk, actor=ACTOR, quantity=q) for q in (9000, 8000)])
    accepted = [r for r in results if isinstance(r, Order)]
    assert len(accepted) == 1 and isinstance([r for r in results if r not in accepted][0], Conflict), results
    replacement = Order.objects.get(replaces=held)
    assert replacement.status == OrderStatus.PENDING_APPROVAL and replacement.risk_verdicts
    assert sent_to_broker() == []
    assert_money_invariants()


def modify_with_cancel_at(step: int) -> tuple[Order, object, object] | None:
    """Modify a fresh resting buy, with a cancel of it sent from another connection just before
    the modify's ``step``-th statement; None when the modify ran fewer statements."""
    original = resting_buy(client_order_id=f"m-{step}")
    fired = threading.Event()
    outcome: dict[str, object] = {}

    def competing_cancel() -> None:
        try:
            outcome["cancel"] = order_cancel(order_id=original.pk, actor=ACTOR)
        except Exception as exc:  # noqa: BLE001 - asserted by the caller
            outcome["cancel"] = exc
        finally:
            connection.close()

    thread = threading.Thread(target=competing_cancel)
    seen = [0]

    def inject(execute, sql, params, many, context):
        if seen[0] == step and not fired.is_set():
            fired.set()
            thread.start()
            thread.join(0.3)  # it may wait for a lock the modify holds: then it lands after
        seen[0] += 1
        return execute(sql, params, many, context)

    with connection.execute_wrapper(inject):
        try:
            modified: object = order_modify(order_id=original.pk, actor=ACTOR, price="9.95")
        except Exception as exc:  # noqa: BLE001 - asserted by the caller
            modified = exc
    if not fired.is_set():
        return None
    thread.join(30)
    return original, modified, outcome["cancel"]


@pytest.mark.usefixtures("require_postgres")
def test_a_cancel_landing_anywhere_in_a_modify_leaves_all_or_nothing(market) -> None:
    """A cancel of the original is injected before each statement the modify runs in turn (the
    broker calls after its commit included), until the modify runs out of statements. Wherever it
    lands, a refused modify created nothing and an accepted one made exactly one replacement."""
    step = 0
    while (run := modify_with_cancel_at(step)) is not None:
        original, modified, cancelled = run
        replacements = list(Order.objects.filter(replaces=original))
        if isinstance(modified, Exception):
            assert isinstance(modified, Conflict), (step, modified)
            assert replacements == [], f"step {step}: the modify answered {modified!r} but created {replacements}"
        else:
            assert isinstance(modified, Order) and [r.pk for r in replacements] == [modified.pk], step
        assert isinstance(cancelled, Order | Conflict), (step, cancelled)
        original.refresh_from_db()
        assert original.status == OrderStatus.CANCELLED, step
        for order in sent_to_broker():
            assert order.admitted_at is not None, step
        assert_money_invariants()
        step += 1
    assert step > 5  # the modify ran statements and the cancel was tried before each


# --------------------------------------------------------------------------- lock order (PostgreSQL)


class RowsHeld:
    """Rows locked FOR UPDATE by another connection, as a concurrent intake or cancel holds them."""

    def __init__(self, *statements: tuple[str, list[int]]) -> None:
        self.statements = statements
        self.locked = threading.Event()
        self.release = threading.Event()
        self.thread = threading.Thread(target=self._hold)

    def _hold(self) -> None:
        from django.db import transaction

        try:
            with transaction.atomic(), connection.cursor() as cursor:
                for sql, params in self.statements:
                    cursor.execute(sql, params)
                self.locked.set()
                self.release.wait(30)
        finally:
            connection.close()

    def __enter__(self) -> RowsHeld:
        self.thread.start()
        assert self.locked.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.thread.join(30)


def lock_timeout() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SET lock_timeout = '2s'")


@pytest.mark.usefixtures("require_postgres")
def test_the_worker_locks_only_the_order_row(market, monkeypatch, settings) -> None:
    """Submitting to the broker never waits on the account or instrument row: the worker takes no
    lock but the order's, so it cannot close a cycle with intake, which locks the account first."""
    import orders.services as services

    settings.ORDERS_DISPATCH = "relay"  # the order waits in the outbox for the worker below
    monkeypatch.setattr(services, "account_poll", lambda account_id: 0)
    order = resting_buy()
    assert order.status == OrderStatus.NEW
    account, instrument = order.account, order.instrument
    with RowsHeld(("SELECT id FROM trading_account WHERE id = %s FOR UPDATE", [account.pk]),
                  ("SELECT id FROM trading_instrument WHERE id = %s FOR KEY SHARE", [instrument.pk])):
        lock_timeout()
        sent = services.order_send_to_broker(order_id=order.pk)
    assert sent is not None and sent.status == OrderStatus.SUBMITTED


@pytest.mark.usefixtures("require_postgres")
def test_cancel_never_locks_the_instrument_row(market) -> None:
    """Orders of every account share instrument rows: no order path locks one. (Any INSERT of a row
    that refers to it, another account's order say, holds FOR KEY SHARE on it until commit.)"""
    order = resting_buy()
    with RowsHeld(("SELECT id FROM trading_instrument WHERE id = %s FOR KEY SHARE", [order.instrument_id])):
        lock_timeout()
        cancelled = order_cancel(order_id=order.pk, actor=ACTOR)
    assert cancelled.status == OrderStatus.CANCELLED
