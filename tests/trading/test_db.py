"""trading.db: the order path's raw statements (PostgreSQL) and the ORM path that replaces them on
SQLite. The same answers on either database; the round trips are checked where they are the point."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from audit.models import AuditEvent
from audit.services import SYSTEM, audit_event
from tests import factories
from trading import db
from trading.models import Account, CashEntryKind, CashLedgerEntry
from trading.services import LedgerPost, cash_post, ledger_flush, ledger_totals

pytestmark = pytest.mark.django_db

ALSO_CLIENT_ORDER = ("SELECT count(*) FROM trading_account x WHERE x.id = a.id AND x.name = %s", ["acc1"])


@pytest.fixture
def require_sqlite() -> None:
    if connection.vendor != "sqlite":
        pytest.skip("the ORM path serves SQLite")


def _sqls(queries: CaptureQueriesContext) -> list[str]:
    return [q["sql"] for q in queries.captured_queries if "SAVEPOINT" not in q["sql"]]


# --------------------------------------------------------------------------- on either database


def test_the_locked_account_is_the_row_as_the_orm_reads_it() -> None:
    account = factories.account(cash="1234.56")
    with transaction.atomic():
        locked = db.account_lock_reading(account.pk, also=ALSO_CLIENT_ORDER)
    expected = Account.objects.get(pk=account.pk)
    for field in Account._meta.concrete_fields:
        if field.name != "broker_settings":
            assert getattr(locked.account, field.attname) == getattr(expected, field.attname), field.name
    assert locked.account.cash == Decimal("1234.56") and isinstance(locked.account.fee_schedule, dict)
    assert locked.account.created_at.tzinfo is not None
    assert "broker_settings" in locked.account.get_deferred_fields()  # read lazily, only if asked
    assert locked.account.broker_settings == expected.broker_settings
    assert locked.also == 1  # evaluated with the account row aliased ``a``
    assert not locked.account._state.adding


def test_an_unknown_account_is_refused() -> None:
    with transaction.atomic(), pytest.raises(Account.DoesNotExist):
        db.account_lock_reading(987654)


def test_ledger_flush_writes_the_entries_the_events_and_the_totals() -> None:
    account = factories.account(cash="1000")
    audited = AuditEvent.objects.count()
    with transaction.atomic():
        account = db.account_lock_reading(account.pk).account
        posts: list[LedgerPost] = []
        cash_post(account, kind=CashEntryKind.FREEZE, amount=Decimal("120.50"), defer=posts)
        cash_post(account, kind=CashEntryKind.DEPOSIT, amount=Decimal("10"), defer=posts)
        extra = audit_event(actor=SYSTEM, action="test.flushed", object_type="account", object_id=account.pk,
                            account=account.name)
        ledger_flush(account, posts, [extra])
    account.refresh_from_db()
    assert (account.cash, account.frozen) == (Decimal("1010.00"), Decimal("120.50"))
    assert ledger_totals(account) == (account.cash, account.frozen)
    kinds = list(CashLedgerEntry.objects.filter(account=account).order_by("pk").values_list("kind", "amount"))
    assert kinds[-2:] == [(CashEntryKind.FREEZE, Decimal("120.50")), (CashEntryKind.DEPOSIT, Decimal("10.00"))]
    assert list(AuditEvent.objects.order_by("pk").values_list("action", flat=True)[audited:]) == [
        "test.flushed", "cash.freeze", "cash.deposit"]


# --------------------------------------------------------------------------- PostgreSQL: the raw statements


def test_selects_run_sends_several_selects_in_one_round_trip(require_postgres) -> None:
    with CaptureQueriesContext(connection) as queries:
        rows = db.selects_run([("SELECT %s::int", [1]), ("SELECT x FROM (VALUES (2), (3)) v(x) ORDER BY x", [])])
    assert rows == [[(1,)], [(2,), (3,)]]
    assert len(_sqls(queries)) == 1


def test_the_lock_carries_the_idempotency_lookup_a_new_key_and_the_reads_in_one_round_trip(require_postgres) -> None:
    account = factories.account()
    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        first = db.account_lock_reading(account.pk, also=ALSO_CLIENT_ORDER, allocate_for=AuditEvent,
                                        then=[("SELECT %s::int", [7]), ("SELECT %s::text", ["b"])])
        second = db.account_lock_reading(account.pk, allocate_for=AuditEvent)
    (lock, _), = [(q, None) for q in _sqls(queries)[:1]]
    assert len(_sqls(queries)) == 2  # one round trip each
    assert "FOR UPDATE OF a" in lock and "nextval" in lock and lock.count("\n") > 3  # written over several lines
    assert first.also == 1 and first.then_rows == [[(7,)], [("b",)]]
    assert first.allocated_id is not None and second.allocated_id == first.allocated_id + 1
    assert second.also is None and second.then_rows is None


def test_the_lock_statement_quotes_identifiers_and_binds_values(require_postgres) -> None:
    text = db.account_lock_sql()
    assert 'FROM "trading_account" a' in text and '"a"."cash"' in text and '"broker_settings"' not in text
    assert text.count("%s") == 1


def test_ledger_flush_is_one_statement_with_the_new_rows_first(require_postgres) -> None:
    account = factories.account(cash="1000")
    with transaction.atomic():
        locked = db.account_lock_reading(account.pk, allocate_for=AuditEvent)
        account = locked.account
        new = audit_event(actor=SYSTEM, action="test.new_row", object_type="account", object_id=account.pk,
                          account=account.name)
        new.pk = locked.allocated_id
        posts: list[LedgerPost] = []
        cash_post(account, kind=CashEntryKind.FREEZE, amount=Decimal("1.00"), defer=posts)
        other = db.insert_sql(AuditEvent, [audit_event(actor=SYSTEM, action="test.other_table", object_type="x", object_id=1)])
        with CaptureQueriesContext(connection) as queries:
            ledger_flush(account, posts, [], [other], new_rows=[new])
    sqls = _sqls(queries)
    assert len(sqls) == 1 and sqls[0].startswith('WITH "w0" AS (INSERT INTO "audit_auditevent"'), sqls
    assert not new._state.adding and new._state.db == connection.alias  # saved: a later save() updates
    assert AuditEvent.objects.filter(pk=locked.allocated_id, action="test.new_row").exists()
    account.refresh_from_db()
    assert account.frozen == Decimal("1.00") and AuditEvent.objects.filter(action="test.other_table").exists()


def test_insert_sql_takes_the_key_of_a_related_row_saved_after_assignment(require_postgres) -> None:
    account = factories.account()
    entry = CashLedgerEntry(account=Account(name="later"), kind=CashEntryKind.DEPOSIT, amount=Decimal("1"),
                            cash_after=Decimal("1"), frozen_after=Decimal("0"))
    with pytest.raises(ValueError, match="not saved"):
        db.insert_sql(CashLedgerEntry, [entry])
    entry.account = account
    text, values = db.insert_sql(CashLedgerEntry, [entry, entry])
    assert text.startswith('INSERT INTO "trading_cashledgerentry" (') and text.count("), (") == 1
    assert values.count(account.pk) == 2


def test_nothing_to_write_sends_nothing(require_postgres) -> None:
    account = factories.account()
    with CaptureQueriesContext(connection) as queries:
        db.writes_run(account)
    assert _sqls(queries) == []


# --------------------------------------------------------------------------- SQLite: the ORM path


def test_on_sqlite_the_lock_is_one_orm_query_with_nothing_drawn_or_carried(require_sqlite) -> None:
    account = factories.account()
    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        locked = db.account_lock_reading(account.pk, also=ALSO_CLIENT_ORDER, allocate_for=AuditEvent,
                                         then=[("SELECT 1", [])])
    assert len(_sqls(queries)) == 1
    assert locked.also == 1 and locked.allocated_id is None and locked.then_rows is None
    assert not db.multi_statement_reads() and not db.fast_path()


def test_on_sqlite_selects_run_one_statement_at_a_time(require_sqlite) -> None:
    with CaptureQueriesContext(connection) as queries:
        rows = db.selects_run([("SELECT 1", []), ("SELECT 2", [])])
    assert rows == [[(1,)], [(2,)]] and len(_sqls(queries)) == 2


def test_on_sqlite_ledger_flush_saves_new_rows_through_the_orm(require_sqlite) -> None:
    account = factories.account()
    new = audit_event(actor=SYSTEM, action="test.new_row", object_type="account", object_id=account.pk,
                      account=account.name)
    with transaction.atomic():
        ledger_flush(account, [], [], [], new_rows=[new])
    assert new.pk is not None and AuditEvent.objects.filter(pk=new.pk).exists()
