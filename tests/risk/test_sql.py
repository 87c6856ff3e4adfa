"""risk.sql: the reads and the counter upsert of a check, as named rows. The same answers on
PostgreSQL (raw statements) and SQLite (the ORM)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from risk import sql
from risk.models import RiskControl, RiskCounter
from tests import factories
from trading.models import Account, Position

pytestmark = pytest.mark.django_db

DAY = date(2026, 11, 23)
AT = datetime(2026, 11, 23, 2, 0, 0, tzinfo=UTC)


def _add(account_id: int, key: str, *, instrument_id: int | None = None, orders: int = 1, amount: str = "100.00",
         second: int = 0, second_count: int = 0, last_order_at: datetime | None = AT, open_quantity: int = 0,
         open_amount: str = "0") -> sql.CounterAdd:
    return sql.CounterAdd(account_id=account_id, trading_day=DAY, key=key, instrument_id=instrument_id, orders=orders,
                          amount=Decimal(amount), rejected=0, cancels=0, last_order_at=last_order_at, second=second,
                          second_count=second_count, open_buy_quantity=open_quantity, open_buy_amount=Decimal(open_amount),
                          updated_at=AT)


def _counters_add(adds: list[sql.CounterAdd]) -> None:
    with connection.cursor() as cursor:
        cursor.execute(*sql.counters_upsert_sql(adds))


def test_counters_are_added_to_and_read_back_as_named_rows() -> None:
    account = factories.account()
    instrument = factories.instrument("600000.SH")
    _counters_add([_add(account.pk, "", second=100, second_count=1),
                   _add(account.pk, "600000.SH", instrument_id=instrument.pk, open_quantity=100, open_amount="1000")])
    _counters_add([_add(account.pk, "", second=100, second_count=1, last_order_at=None),
                   _add(account.pk, "600000.SH", instrument_id=None, open_quantity=100, open_amount="1000")])
    _counters_add([_add(account.pk, "", second=101, second_count=1)])  # the one-second window moves on
    rows = {row.key: row for row in sql.counters_read(account.pk, DAY, "600000.SH")}
    assert rows[""] == sql.CounterRow("", 3, Decimal("300.00"), 0, 0, AT, 101, 1, None, 0, Decimal("0.00"), "")
    symbol = rows["600000.SH"]
    assert (symbol.orders, symbol.amount, symbol.instrument_id, symbol.open_buy_quantity, symbol.open_buy_amount) == (
        2, Decimal("200.00"), instrument.pk, 200, Decimal("2000.00"))
    assert symbol.industry == instrument.industry and symbol.last_order_at == AT
    assert RiskCounter.objects.count() == 2


def test_the_fingerprint_is_one_query_with_the_counters() -> None:
    account = factories.account()
    RiskControl.objects.update_or_create(pk=RiskControl.SINGLETON_ID, defaults={"trading_state": "REDUCING",
                                                                                "trading_state_reason": "test"})
    _counters_add([_add(account.pk, "")])
    with CaptureQueriesContext(connection) as queries:
        fingerprint = sql.fingerprint_read((account.pk, DAY, "600000.SH"))
    assert len(queries) == 1
    assert (fingerprint.trading_state, fingerprint.trading_state_reason) == ("REDUCING", "test")
    assert fingerprint.version is not None and fingerprint.updated_at is not None
    assert [row.key for row in fingerprint.counters or []] == [""]
    without = sql.fingerprint_read(None)
    assert without.counters is None and without.config_key == fingerprint.config_key


def test_without_the_singleton_the_fingerprint_is_nulls() -> None:
    account = factories.account()
    RiskControl.objects.all().delete()
    fingerprint = sql.fingerprint_read((account.pk, DAY, "600000.SH"))
    assert fingerprint == sql.Fingerprint(None, None, None, None, [])


def test_the_snapshot_reads_holdings_and_the_control_group_in_one_query() -> None:
    account = factories.account("acc1")
    other = factories.account("acc2")
    Account.objects.filter(pk__in=[account.pk, other.pk]).update(control_group="g")
    quote = factories.quote("600000.SH", last="10.50", prev_close="10.00")
    instrument = quote.instrument
    Position.objects.create(account=account, instrument=instrument, quantity=300, frozen_quantity=100,
                            cost_amount=Decimal("3000"))
    Position.objects.create(account=other, instrument=instrument, quantity=500, frozen_quantity=0,
                            cost_amount=Decimal("5000"))
    _counters_add([_add(other.pk, "600000.SH", instrument_id=instrument.pk, open_quantity=200, open_amount="2100")])
    of = sql.SnapshotFor(account_id=account.pk, instrument_id=instrument.pk, day=DAY, symbol="600000.SH", group="g")
    with CaptureQueriesContext(connection) as queries:
        rows = sorted(sql.snapshot_read(of))
    assert len(queries) == 1
    assert [(r.kind, r.account_id, r.quantity) for r in rows] == [("G", other.pk, 500), ("H", other.pk, 200),
                                                                  ("P", account.pk, 300)]
    own = rows[2]
    assert (own.frozen, own.amount, own.last, own.prev_close, own.industry) == (
        100, Decimal("3000.00"), Decimal("10.50"), Decimal("10.00"), instrument.industry)
    assert rows[1].amount == Decimal("2100.00")
    alone = sql.snapshot_read(sql.SnapshotFor(account.pk, instrument.pk, DAY, "600000.SH", ""))
    assert [r.kind for r in alone] == ["P"]


def test_on_postgresql_the_statements_are_composed_over_several_lines(require_postgres) -> None:
    text, params = sql.fingerprint_sql((1, DAY, "600000.SH"))
    assert '"risk_riskcounter" c' in text and text.count("\n") > 3 and params == [1, DAY, "600000.SH"]
    text, params = sql.counters_upsert_sql([_add(1, ""), _add(1, "600000.SH")])
    assert text.count("%s") == len(params) == 2 * 14 and "ON CONFLICT" in text
    text, params = sql.snapshot_sql(sql.SnapshotFor(1, 2, DAY, "600000.SH", "g"))
    assert text.count("UNION ALL") == 2 and text.count("%s") == len(params)
