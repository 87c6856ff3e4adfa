"""The order path's raw SQL, in one place: PostgreSQL only.

Every order passes its account's row lock in turn, so what runs under the lock bounds an
account's order rate. On PostgreSQL the lock holder therefore talks to the database in three
round trips (README, "Benchmarks"): the lock with the reads that ride on it
(:func:`account_lock_reading`), one statement with every write (:func:`writes_run`, behind
``trading.services.ledger_flush``) and the commit. The statements that make this possible live
here, composed with ``psycopg.sql`` from model metadata (identifiers quoted, every value a bound
parameter) and rendered once per shape; risk control's own are in ``risk.sql``.

SQLite (the embedded default) takes the plain ORM path: its writers are serialised by the
database lock (``transaction_mode`` IMMEDIATE), there is no network round trip to save, and it
cannot send several statements at once.

Each trick's docstring states what it was measured to bring, as milliseconds an order: 400
orders of one account sent in process through the API (Django's test client, the database of
``bench/open_orders.prepare``) to a local PostgreSQL, one client, three runs with the trick on
and off in turn, on the project's shared 2-core machine (November 2026). ``bench/order_intake.py``
(HTTP, two clients) was run too, but identical runs ranged from 46 to 160 orders/s there, more
than any one trick moves it, so it could not tell them apart.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any, NamedTuple

from django.db import connection, connections, models
from django.db.models.expressions import RawSQL
from psycopg import sql

if TYPE_CHECKING:
    from audit.models import AuditEvent
    from trading.models import Account

Statement = tuple[str, list[Any]]


def fast_path() -> bool:
    """Whether the raw statements of this module serve the current connection (PostgreSQL)."""
    return connection.vendor == "postgresql"


def portable_path() -> bool:
    """Whether the statements written in portable SQL (standard joins, ``INSERT ... ON CONFLICT``
    upserts, double-quoted identifiers) serve the current connection: PostgreSQL and SQLite.

    Risk control's two per-order statements (its start-up read and the counter upsert,
    ``risk.sql``) use it on SQLite too, where they run inside the one database write lock. Measured
    in-process on SQLite (1,000 orders resting, 300 sent through the API, ``cProfile``): with
    the ORM in their place an order cost 27,600 Python calls, with these statements 18,300 (the
    whole order: intake, the broker call and its answer).
    """
    return connection.vendor in ("postgresql", "sqlite")


def multi_statement_reads() -> bool:
    """Whether several statements can share one round trip: PostgreSQL with Django's default
    client-side binding cursor (simple query protocol). Server-side binding and SQLite can't."""
    return fast_path() and not connection.settings_dict.get("OPTIONS", {}).get("server_side_binding")


def _render(composed: sql.Composable) -> str:
    """The text of a composed statement, quoted as PostgreSQL quotes identifiers."""
    return composed.as_string(None)


def selects_run(statements: Sequence[Statement]) -> list[list[tuple[Any, ...]]]:
    """The rows of each SELECT, in order: one round trip where ``multi_statement_reads()``, else
    one per statement.

    Measured (the risk reads riding on the account lock's round trip, ``then`` of
    :func:`account_lock_reading`, the one caller with several statements): with every risk rule
    on, 9.0-11.6 ms an order against 14.4-16.9 ms without (each run 3.5-7.7 ms faster); with no
    rule, when only the configuration check rides along, no difference shows above the noise
    (6.5-8.2 ms against 5.9-8.3 ms).
    """
    results: list[list[tuple[Any, ...]]] = []
    with connection.cursor() as cursor:
        if len(statements) > 1 and multi_statement_reads():
            cursor.execute("; ".join(text for text, _ in statements), [p for _, params in statements for p in params])
            results.append([tuple(row) for row in cursor.fetchall()])
            while cursor.nextset():
                results.append([tuple(row) for row in cursor.fetchall()])
        else:
            for text, params in statements:
                cursor.execute(text, params)
                results.append([tuple(row) for row in cursor.fetchall()])
    return results


# --------------------------------------------------------------------------- the account lock


def _lock_fields() -> tuple[models.Field, ...]:
    """The account columns the lock reads, in the order of the lock statement's row.

    Every column but the broker credentials, which the lock holder never needs (Django reads
    them lazily if asked)."""
    from trading.models import Account

    return tuple(f for f in Account._meta.concrete_fields if f.name != "broker_settings")


class LockRow(NamedTuple):
    """One row of the lock statement: the account's columns (``_lock_fields`` order), then
    what rode along."""

    values: tuple[Any, ...]
    also: Any
    allocated_id: int | None

    @classmethod
    def parse(cls, row: Sequence[Any]) -> LockRow:
        return cls(tuple(row[:-2]), row[-2], row[-1])


@lru_cache(maxsize=8)
def account_lock_sql(also: str = "", allocate_table: str = "") -> str:
    """``SELECT <account columns>, (<also>) AS also, nextval(...) AS allocated_id FROM account a
    WHERE a.id = %s FOR UPDATE OF a`` (the parameters of ``also`` first, then the account id)."""
    from trading.models import Account

    account = sql.Identifier("a")
    columns: list[sql.Composable] = [sql.SQL("{}.{}").format(account, sql.Identifier(str(f.column))) for f in _lock_fields()]
    columns.append(sql.SQL("({}) AS also").format(sql.SQL(also)) if also else sql.SQL("NULL AS also"))  # also: caller's SQL text, values bound
    columns.append(
        sql.SQL("nextval(pg_get_serial_sequence({}, 'id')) AS allocated_id").format(sql.Literal(allocate_table))
        if allocate_table else sql.SQL("NULL AS allocated_id"))
    return _render(sql.SQL("""
        SELECT {columns}
          FROM {table} a
         WHERE a.id = %s
           FOR UPDATE OF a""").format(columns=sql.SQL(", ").join(columns), table=sql.Identifier(Account._meta.db_table)))


@lru_cache(maxsize=4)
def _account_converters(vendor: str) -> tuple[list[str], list[tuple[int, Any, list[Any]]]]:
    """The lock row's field names and, per column that needs any, the converters the ORM applies."""
    from trading.models import Account

    fields = _lock_fields()
    converters = []
    for i, f in enumerate(fields):
        col = f.get_col(Account._meta.db_table)
        found = [*connection.ops.get_db_converters(col), *col.get_db_converters(connection)]
        if found:
            converters.append((i, col, found))
    return [f.attname for f in fields], converters


def _account_from_values(values: Sequence[Any]) -> Account:
    """An Account from the lock row's columns, each converted as the ORM would (``Model.from_db``)."""
    from trading.models import Account

    conn = connections[connection.alias]  # the wrapper itself: the proxy costs a lookup per use
    names, converters = _account_converters(conn.vendor)
    converted = list(values)
    for i, col, found in converters:
        for convert in found:
            converted[i] = convert(converted[i], col, conn)
    return Account.from_db(conn.alias, names, converted)


@lru_cache(maxsize=8)
def _also_orm_sql(also: str) -> str:
    """``also`` as a scalar the ORM's account query can annotate (its row aliased ``a`` again)."""
    from trading.models import Account

    table = sql.Identifier(Account._meta.db_table)
    return _render(sql.SQL("SELECT ({also}) FROM {table} a WHERE a.id = {table}.id").format(
        also=sql.SQL(also), table=table))  # also: caller's SQL text, values bound


@dataclass
class LockedAccount:
    """The locked account row and what rode along with the lock (see ``account_lock_reading``)."""

    account: Account
    also: Any = None
    allocated_id: int | None = None
    then_rows: list[list[tuple[Any, ...]]] | None = None


def account_lock_reading(account_id: int, *, also: Statement | None = None,
                         allocate_for: type[models.Model] | None = None,
                         then: list[Statement] | None = None) -> LockedAccount:
    """Lock and return the account row (``SELECT ... FOR UPDATE``), with extras that spare the
    lock holder round trips. Take it before any order lock.

    - ``also`` = (scalar SQL, its parameters) is evaluated with the lock; the account row is
      aliased ``a``. It reads the snapshot of the statement's start, possibly from before the
      lock was granted: use it only where a stale answer is caught later (e.g. by a unique key).
      Measured (the idempotency lookup of intake): with every risk rule on, 9.0-11.6 ms an order
      against 10.5-14.5 ms as a query of its own (each run 1.4-5.5 ms faster); with no rule
      within the noise (6.5-8.2 ms against 6.9-8.8 ms).
    - ``allocate_for`` (PostgreSQL): the next primary key of that model's table is drawn
      (``allocated_id``; None elsewhere), so the new row's INSERT can join the caller's other
      writes (:func:`ledger_flush` ``new_rows``). Measured (no rule): 6.5-8.2 ms an order
      against 8.1-9.1 ms with the order INSERTed on its own first (each run 0.0-2.0 ms faster).
    - ``then``: SELECTs run once the lock is granted (so they see everything committed before),
      in the same round trip where ``multi_statement_reads()``; their rows, or None where they
      could not ride along (the caller then reads for itself). Measured: see :func:`selects_run`.

    On PostgreSQL the row is read with a raw statement and turned into an Account with
    ``Model.from_db``, as the ORM would, because ``then`` needs the statement's text for the
    shared round trip. Measured (no rule): 6.5-8.2 ms an order against 7.2-9.3 ms with the ORM's
    ``select_for_update().get()`` and nothing riding along (each run 0.7-1.2 ms faster); the ORM
    query alone, against the raw one with nothing riding either, cost 1.2-2.1 ms an order.
    SQLite uses the ORM (``also`` as an annotation; its writers are
    serialised by the database lock, so there is no row lock to take).
    """
    from trading.models import Account

    if not fast_path():
        query = Account.objects.defer("broker_settings")
        if also is not None:
            query = query.annotate(also=RawSQL(_also_orm_sql(also[0]), also[1]))
        account = query.get(pk=account_id)
        return LockedAccount(account, getattr(account, "also", None))
    allocate_table = allocate_for._meta.db_table if allocate_for is not None else ""
    lock = (account_lock_sql(also[0] if also else "", allocate_table), [*(also[1] if also else []), account_id])
    then = then if then and multi_statement_reads() else []
    found, *then_rows = selects_run([lock, *then])
    if not found:
        raise Account.DoesNotExist(f"account {account_id} does not exist")
    row = LockRow.parse(found[0])
    return LockedAccount(_account_from_values(row.values), row.also, row.allocated_id, then_rows if then else None)


# --------------------------------------------------------------------------- the batched write


@lru_cache(maxsize=64)
def _insert_head(model: type[models.Model], with_pk: bool) -> tuple[tuple[models.Field, ...], str, str]:
    """The fields, the ``INSERT INTO table (columns) VALUES`` head and one row's placeholders."""
    fields = tuple(f for f in model._meta.concrete_fields if with_pk or not f.primary_key)
    head = sql.SQL("INSERT INTO {table} ({columns}) VALUES ").format(
        table=sql.Identifier(model._meta.db_table), columns=sql.SQL(", ").join(sql.Identifier(str(f.column)) for f in fields))
    row = sql.SQL("({})").format(sql.SQL(", ").join(sql.Placeholder() * len(fields)))
    return fields, _render(head), _render(row)


def _foreign_keys_settle(row: models.Model, fields: Iterable[models.Field]) -> None:
    """Copy the key of a related object saved after it was assigned (as ``save()`` would), and
    refuse a related object that has none yet."""
    for f in fields:
        if f.is_relation and f.many_to_one and getattr(row, f.attname) is None:
            related = getattr(row, f.name)  # no query: the key is None, so only an assigned object is returned
            if related is not None:
                if related.pk is None:
                    raise ValueError(f"{type(row).__name__}.{f.name}: the related {type(related).__name__} is not saved")
                setattr(row, f.attname, related.pk)


def insert_sql(model: type[models.Model], rows: Sequence[models.Model], *, with_pk: bool = False) -> Statement:
    """An INSERT of ``rows`` (PostgreSQL), every value prepared by its own field as
    ``bulk_create`` would; ``with_pk``: their primary keys are given too."""
    conn = connections[connection.alias]
    fields, head, placeholder = _insert_head(model, with_pk)
    values: list[Any] = []
    for row in rows:
        _foreign_keys_settle(row, fields)
        values.extend([f.get_db_prep_save(f.pre_save(row, True), conn) for f in fields])
    return head + ", ".join([placeholder] * len(rows)), values


@lru_cache(maxsize=256)
def _chain_sql(statements: tuple[str, ...]) -> str:
    """``WITH w0 AS (<first>), w1 AS (<second>) ... <last>``: data-modifying statements in one."""
    *ctes, last = statements
    if not ctes:
        return last
    return _render(sql.SQL("WITH {ctes}\n{last}").format(
        ctes=sql.SQL(",\n     ").join(sql.SQL("{} AS ({})").format(sql.Identifier(f"w{i}"), sql.SQL(text))  # text: composed here or by risk.sql, values bound
                                      for i, text in enumerate(ctes)),
        last=sql.SQL(last)))  # as above


@lru_cache(maxsize=4)
def _account_totals_sql() -> str:
    from trading.models import Account

    return _render(sql.SQL("""
        UPDATE {table}
           SET cash = %s, frozen = %s
         WHERE id = %s""").format(table=sql.Identifier(Account._meta.db_table)))


def writes_run(account: Account, *, new_rows: Sequence[models.Model] = (), statements: Sequence[Statement] = (),
               entries: Sequence[models.Model] = (), events: Sequence[AuditEvent] = (), totals: bool = False) -> None:
    """Every write of a use case in one statement (PostgreSQL; data-modifying CTEs): ``new_rows``
    with the primary keys drawn beforehand, the other ``statements``, the ledger ``entries``, the
    audit ``events`` and, with ``totals``, the account's cash and frozen cash.

    Measured (no rule; the order's key drawn by the lock, which it needs to carry the order's
    INSERT): 6.5-8.2 ms an order against 7.1-9.7 ms with one statement per table (each run
    0.5-1.5 ms faster).
    """
    from audit.models import AuditEvent
    from trading.models import CashLedgerEntry

    texts: list[str] = []
    params: list[Any] = []
    parts: list[Statement] = [insert_sql(type(row), [row], with_pk=True) for row in new_rows]
    parts.extend(statements)
    for model, rows in ((CashLedgerEntry, entries), (AuditEvent, events)):
        if rows:
            parts.append(insert_sql(model, rows))
    if totals:
        parts.append((_account_totals_sql(), [account.cash, account.frozen, account.pk]))
    for text, values in parts:
        texts.append(text)
        params.extend(values)
    if not texts:
        return
    with connection.cursor() as cursor:
        cursor.execute(_chain_sql(tuple(texts)), params)
    for row in new_rows:  # saved now: a later save() updates it
        row._state.adding = False
        row._state.db = connection.alias
