"""One order costs the same with 1,000 orders resting as with none (issue 8, item 21).

No timings: these count the queries an order costs and the order rows a step loads (model
instances built from the database), which grew with the open orders before: the poll after each
placement read every open order here and every order of the day at the broker, and a quote read
every resting order of its symbol.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from audit.services import Actor
from brokers.adapters.paper import PaperBroker
from brokers.models import PaperOrder
from brokers.services import quotes_publish
from orders.models import Order, OrderStatus
from orders.services import OrderInput, account_poll, accounts_poll_all, order_cancel, order_submit
from tests import factories
from trading.models import Account
from trading.selectors import account_trading_day, quote_cache_clear

pytestmark = pytest.mark.django_db(transaction=True)
D = Decimal
ACTOR = Actor.system("test")


@pytest.fixture
def desk() -> Account:
    factories.instrument("000001.SZ")
    factories.quote("600000.SH", prev_close="10.05", bid="10.00", ask="10.01", bid_volume=50000, ask_volume=50000)
    factories.quote("000001.SZ", prev_close="12.00", bid="11.99", ask="12.00")
    return factories.account("acc1", cash="100000000")


def rest(account: Account, count: int, *, symbol: str = "600000.SH", price: str = "9.10", tag: str = "r") -> None:
    """``count`` limit buys resting far below the market, here and at the paper broker (bulk, as bench/open_orders.py)."""
    instrument = factories.instrument(symbol)
    day = account_trading_day(account, timezone.now())
    orders = Order.objects.bulk_create(
        Order(account=account, instrument=instrument, client_order_id=f"{tag}-{i}", side="BUY", order_type="LIMIT",
              price=D(price), quantity=100, trading_day=day, status=OrderStatus.SUBMITTED,
              broker_order_id=f"{tag.upper()}-{i:06d}", dispatched_at=timezone.now())
        for i in range(count)
    )
    PaperOrder.objects.bulk_create(
        PaperOrder(broker_order_id=order.broker_order_id, account_name=account.name, client_ref=str(order.pk),
                   symbol=symbol, side="BUY", order_type="LIMIT", price=D(price), quantity=100, status="OPEN",
                   trading_day=day, created_at=timezone.now(), updated_at=timezone.now())
        for order in orders
    )


@contextmanager
def rows_loaded(monkeypatch: pytest.MonkeyPatch) -> Iterator[Counter[str]]:
    """Counts the Order and PaperOrder instances built from the database inside the block."""
    counts: Counter[str] = Counter()
    with monkeypatch.context() as patch:
        for model in (Order, PaperOrder):
            original = model.from_db.__func__  # type: ignore[attr-defined]

            def counting(cls: Any, db: Any, field_names: Any, values: Any, _original: Any = original) -> Any:
                counts[cls.__name__] += 1
                return _original(cls, db, field_names, values)

            patch.setattr(model, "from_db", classmethod(counting))
        yield counts


def place(n: int, price: str = "9.50") -> Order:
    data = OrderInput(account="acc1", symbol="600000.SH", side="BUY", order_type="LIMIT", quantity=100, price=price,
                      client_order_id=f"o-{n}")
    return order_submit(data, actor=ACTOR).order


def test_placing_an_order_costs_the_same_queries_and_rows_with_1000_resting(desk: Account, monkeypatch) -> None:
    # The order path's own cost: the listeners of its after-commit events (monitoring's periodic
    # checks, due every 30 s or so) would land in one measured block and not the other.
    from trading.events import domain_event

    monkeypatch.setattr(domain_event, "receivers", [])
    domain_event.sender_receivers_cache.clear()
    place(0)  # the first poll in a process reads everything once
    quote_cache_clear()  # both measured orders read the quote (the cache expires with time)
    with CaptureQueriesContext(connection) as alone, rows_loaded(monkeypatch) as rows_alone:
        assert place(1).status == OrderStatus.SUBMITTED
    rest(desk, 1000)
    quote_cache_clear()
    with CaptureQueriesContext(connection) as crowded, rows_loaded(monkeypatch) as rows_crowded:
        assert place(2).status == OrderStatus.SUBMITTED
    assert len(crowded.captured_queries) == len(alone.captured_queries)
    assert rows_crowded == rows_alone
    assert sum(rows_crowded.values()) < 20, rows_crowded


def test_a_quote_reads_only_the_orders_its_prices_reach(desk: Account, monkeypatch) -> None:
    rest(desk, 1000)  # 600000.SH at 9.10
    rest(desk, 300, symbol="000001.SZ", price="11.00", tag="z")
    reached = place(1, price="10.00")  # rests below the ask of 10.01
    assert reached.status == OrderStatus.SUBMITTED
    quote = {"symbol": "600000.SH", "last": "9.99", "prev_close": "10.05", "bid": "9.98", "ask": "9.99",
             "bid_volume": 50000, "ask_volume": 50000}
    with rows_loaded(monkeypatch) as rows:
        result = quotes_publish([quote])
    assert result.accounts_with_fills == {"acc1"}
    assert rows["PaperOrder"] <= 2, rows  # the reached order (read to lock its account, then under the lock)
    assert PaperOrder.objects.get(client_ref=str(reached.pk)).status == "FILLED"
    assert PaperOrder.objects.filter(status="OPEN").count() == 1300


def test_polling_reads_what_changed_not_what_is_open(desk: Account, monkeypatch) -> None:
    rest(desk, 1000)
    reached = place(1, price="10.00")
    accounts_poll_all()  # the scheduler's first poll: a full read
    quotes_publish([{"symbol": "600000.SH", "last": "9.99", "prev_close": "10.05", "bid": "9.98", "ask": "9.99",
                     "bid_volume": 50000, "ask_volume": 50000}])
    with rows_loaded(monkeypatch) as rows:
        assert accounts_poll_all() == 1
    assert Order.objects.get(pk=reached.pk).status == OrderStatus.FILLED
    assert sum(rows.values()) < 20, rows
    with rows_loaded(monkeypatch) as idle:
        assert accounts_poll_all() == 0
    assert sum(idle.values()) == 0, idle


def test_the_broker_lists_the_changes_after_a_cursor(desk: Account) -> None:
    broker = PaperBroker("acc1")
    first = place(1)
    everything = broker.query_changes(None)
    assert everything.complete and [o.client_ref for o in everything.orders] == [str(first.pk)]
    second = place(2)
    changes = broker.query_changes(everything.cursor)
    assert not changes.complete and [o.client_ref for o in changes.orders] == [str(second.pk)]
    order_cancel(order_id=first.pk, actor=ACTOR)
    after_cancel = broker.query_changes(changes.cursor)
    assert [(o.client_ref, o.status) for o in after_cancel.orders] == [(str(first.pk), "CANCELLED")]
    assert broker.query_changes(after_cancel.cursor).orders == []
    # A cursor this account never gave (another account's, or from before the books were reset): a full read.
    assert broker.query_changes("1.0.999").complete


def test_a_stale_order_unknown_to_the_broker_is_sent_again_when_polls_read_changes(desk: Account, settings) -> None:
    settings.ORDERS_SUBMITTING_STALE_SECONDS = 0
    place(1)  # this process now polls acc1 from a cursor
    Account.objects.filter(pk=desk.pk).update(broker_settings={"unreachable": True})
    lost = place(2)
    assert lost.status == OrderStatus.UNKNOWN  # the broker never saw it
    Account.objects.filter(pk=desk.pk).update(broker_settings={})
    account_poll(account_id=desk.pk)
    lost.refresh_from_db()
    assert lost.status == OrderStatus.SUBMITTED
    assert PaperOrder.objects.filter(client_ref=str(lost.pk)).count() == 1


def test_a_fill_between_the_brokers_answer_and_its_record_is_not_lost(desk: Account, monkeypatch) -> None:
    """A poll skips an order while it is SUBMITTING (and moves its cursor on): the placing worker
    reads the order back once the answer is recorded, so the fill is still booked."""
    place(0)  # this process polls acc1 from a cursor from now on
    original = PaperBroker.place_order

    def place_then_fill(self: PaperBroker, request: Any) -> Any:
        ack = original(self, request)
        quotes_publish([{"symbol": "600000.SH", "last": "9.99", "prev_close": "10.05", "bid": "9.98", "ask": "9.99",
                         "bid_volume": 50000, "ask_volume": 50000}])
        assert account_poll(account_id=desk.pk) == 0  # our order is still SUBMITTING here
        return ack

    monkeypatch.setattr(PaperBroker, "place_order", place_then_fill)
    order = place(1, price="10.00")
    assert order.status == OrderStatus.FILLED and order.filled_quantity == 100


def _plan(queryset: Any) -> str:
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN QUERY PLAN " + sql, params)
        return " | ".join(str(row[-1]) for row in cursor.fetchall())


def test_the_books_are_read_along_indexes_not_scanned(desk: Account) -> None:
    """The queries whose rows would grow with the open orders search an index by a range (SQLite's
    plans; PostgreSQL's planner picks by table statistics, so this runs on SQLite only)."""
    if connection.vendor != "sqlite":
        pytest.skip("query plans checked on SQLite")
    from brokers.adapters import paper
    from brokers.models import OPEN_STATUSES
    from trading.models import Quote

    rest(desk, 200)
    quote = Quote.objects.get(instrument__code="600000")
    quote.ask, quote.bid, quote.ask_volume, quote.bid_volume = D("9.99"), D("9.98"), 100, 100
    plans = [_plan(part) for part in paper._reachable_orders(factories.instrument("600000.SH"), quote)]
    assert all("paperorder_book_idx" in plan and "SCAN" not in plan for plan in plans), plans
    assert "price>" in plans[1] and "price<" in plans[2], plans
    session = paper.Session.at_time("always", timezone.now())
    due = _plan(PaperOrder.objects.filter(account_name="acc1", status__in=OPEN_STATUSES).filter(session.due_filter()))
    assert "paperorder_account_open_idx" in due and "trading_day<" in due, due
    changes = _plan(PaperOrder.objects.filter(account_name="acc1", change_seq__gt=5, change_seq__lte=9))
    assert "paperorder_account_change_idx" in changes and "SCAN" not in changes, changes
