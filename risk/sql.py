"""Risk control's reads and its one write, as named rows.

A pre-trade check reads two things: the *fingerprint* (the global trading state, the
configuration's version, and today's counter rows of the account and symbol) and the
*snapshot* (the account's holdings with quotes and, with a control group, the other accounts'
holdings and open buys of the order's instrument). The order path then adds to the counters.

On PostgreSQL (``trading.db.fast_path()``) these are raw statements composed with
``psycopg.sql`` from model metadata, so that the reads ride on the account lock's round trip
and the upsert on the order path's one write statement (their gains: ``trading.db``). The
fingerprint and the counter upsert are portable SQL and serve SQLite too
(``trading.db.portable_path``: measured there against the ORM); the other reads go through the
ORM on SQLite. Either way the rows come back as the named rows below, the one place that states
their columns.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from datetime import date, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from functools import lru_cache
from typing import Any, NamedTuple

from django.db.models import CharField, IntegerField, Q, Value
from psycopg import sql

from trading.db import Statement, fast_path, selects_run
from trading.money import ZERO, to_cent


def _decimal(value: Any) -> Decimal:
    if value is None:
        return ZERO
    return value if isinstance(value, Decimal) else to_cent(Decimal(str(value)), ROUND_HALF_EVEN)


class CounterRow(NamedTuple):
    """Today's running totals of the account (``key`` "") or of one of its symbols."""

    key: str
    orders: int
    amount: Decimal
    cancels: int
    rejected: int
    last_order_at: datetime | None
    second: int
    second_count: int
    instrument_id: int | None
    open_buy_quantity: int
    open_buy_amount: Decimal
    industry: str  # of the symbol's instrument ("" for the account row)

    @classmethod
    def parse(cls, row: Sequence[Any]) -> CounterRow:
        """From a row in this class's column order, zeros for NULLs."""
        (key, orders, amount, cancels, rejected, last_order_at, second, second_count, instrument_id, open_quantity,
         open_amount, industry) = row
        return cls(key, int(orders or 0), _decimal(amount), int(cancels or 0), int(rejected or 0), last_order_at,
                   int(second or 0), int(second_count or 0), instrument_id, int(open_quantity or 0), _decimal(open_amount),
                   industry or "")


class Fingerprint(NamedTuple):
    """The global trading state and what tells whether the cached configuration is current:
    its version and time of last change, which triggers bump on any write to the rule and
    restricted-symbol tables (migration risk 0003). NULLs while the singleton row is absent."""

    trading_state: str | None
    trading_state_reason: str | None
    version: int | None
    updated_at: datetime | None
    counters: list[CounterRow] | None  # today's counter rows, when asked for

    @property
    def config_key(self) -> tuple[str, str]:
        return str(self.version), str(self.updated_at)


class SnapshotRow(NamedTuple):
    """A holding: the account's position with quotes (``kind`` P) or, with a control group, another
    account's shares (G) or open buys (H, from its counter row) of the order's instrument."""

    kind: str
    instrument_id: int
    account_id: int
    quantity: int
    frozen: int
    amount: Decimal
    industry: str
    last: Decimal | None
    prev_close: Decimal | None


_FINGERPRINT_COLUMNS = ("trading_state", "trading_state_reason", "version", "updated_at")
_COUNTERS_MATCH = """
        c.account_id = %s AND c.trading_day = %s AND (c.key IN ('', %s) OR c.open_buy_quantity > 0)"""


def _counters_match(account_id: int, day: date, symbol: str) -> Q:
    """``_COUNTERS_MATCH`` for the ORM."""
    return Q(account_id=account_id, trading_day=day) & (Q(key__in=["", symbol]) | Q(open_buy_quantity__gt=0))


def _tables() -> dict[str, sql.Identifier]:
    from risk.models import RiskControl, RiskCounter
    from trading.models import Account, Instrument, Position, Quote

    models = {"control": RiskControl, "counter": RiskCounter, "position": Position, "instrument": Instrument,
              "quote": Quote, "account": Account}
    return {name: sql.Identifier(model._meta.db_table) for name, model in models.items()}


def _counter_columns() -> sql.Composable:
    """The columns of a CounterRow, counter rows aliased ``c`` and their instrument ``i``."""
    return sql.SQL(", ").join(sql.SQL("{}.{}").format(sql.Identifier("i" if name == "industry" else "c"), sql.Identifier(name))
                              for name in CounterRow._fields)


# --------------------------------------------------------------------------- the fingerprint


@lru_cache(maxsize=2)
def _fingerprint_text(with_counters: bool) -> str:
    t = _tables()
    control = sql.SQL(", ").join(sql.SQL("r.{}").format(sql.Identifier(name)) for name in _FINGERPRINT_COLUMNS)
    if not with_counters:
        return sql.SQL("""
        SELECT {control}
          FROM (SELECT 1 AS one) o
          LEFT JOIN {control_table} r ON r.id = 1""").format(control=control, control_table=t["control"]).as_string(None)
    return sql.SQL("""
        SELECT {control}, {counters}
          FROM (SELECT 1 AS one) o
          LEFT JOIN {control_table} r ON r.id = 1
          LEFT JOIN {counter} c ON {match}
          LEFT JOIN {instrument} i ON i.id = c.instrument_id""").format(
        control=control, counters=_counter_columns(), control_table=t["control"], counter=t["counter"],
        instrument=t["instrument"], match=sql.SQL(_COUNTERS_MATCH)).as_string(None)


def fingerprint_sql(counters_for: tuple[int, Any, str] | None) -> Statement:
    """The fingerprint's statement (portable: PostgreSQL and SQLite): one row, or with ``counters_for`` = (account id,
    day, symbol) one row per counter row a check reads (the account's, the symbol's, those of
    symbols with open buys), or one row of NULL counter columns when there is none."""
    if counters_for is None:
        return _fingerprint_text(False), []
    return _fingerprint_text(True), list(counters_for)


def fingerprint_parse(rows: Sequence[Sequence[Any]], with_counters: bool) -> Fingerprint:
    """The Fingerprint from the rows of ``fingerprint_sql``."""
    n = len(_FINGERPRINT_COLUMNS)
    state, reason, version, updated_at = rows[0][:n]
    counters = [CounterRow.parse(row[n:]) for row in rows if row[n] is not None] if with_counters else None
    return Fingerprint(state, reason, version, updated_at, counters)


def fingerprint_read(counters_for: tuple[int, Any, str] | None) -> Fingerprint:
    """The fingerprint: one query (``fingerprint_sql``, portable: PostgreSQL and SQLite)."""
    return fingerprint_parse(selects_run([fingerprint_sql(counters_for)])[0], counters_for is not None)


# --------------------------------------------------------------------------- the counters


@lru_cache(maxsize=1)
def _counters_text() -> str:
    t = _tables()
    return sql.SQL("""
        SELECT {columns}
          FROM {counter} c
          LEFT JOIN {instrument} i ON i.id = c.instrument_id
         WHERE {match}""").format(columns=_counter_columns(), counter=t["counter"], instrument=t["instrument"],
                                 match=sql.SQL(_COUNTERS_MATCH)).as_string(None)


def counters_read(account_id: int, day: date, symbol: str) -> list[CounterRow]:
    """Today's counter rows a check reads (the account's, the symbol's, those with open buys)."""
    from risk.models import RiskCounter

    if fast_path():
        return [CounterRow.parse(row) for row in selects_run([(_counters_text(), [account_id, day, symbol])])[0]]
    query = (RiskCounter.objects.filter(_counters_match(account_id, day, symbol)).order_by()
             .values_list(*CounterRow._fields[:-1], "instrument__industry"))
    return [CounterRow.parse(row) for row in query]


@dataclass(frozen=True)
class CounterAdd:
    """What to add to one counter row (created when missing). The one-second window moves only
    when ``second_count`` > 0; the last-order time only when given; the instrument only when the
    row has none."""

    account_id: int
    trading_day: date
    key: str
    instrument_id: int | None
    orders: int
    amount: Decimal
    rejected: int
    cancels: int
    last_order_at: datetime | None
    second: int
    second_count: int
    open_buy_quantity: int
    open_buy_amount: Decimal
    updated_at: datetime


_COUNTER_ADD_FIELDS = tuple(f.name for f in fields(CounterAdd))


@lru_cache(maxsize=4)
def _upsert_text(rows_count: int) -> str:
    t = _tables()["counter"]
    names = [f.name for f in fields(CounterAdd)]
    row = sql.SQL("({})").format(sql.SQL(", ").join(sql.Placeholder() * len(names)))

    def col(name: str) -> sql.Composable:
        return sql.SQL("{}.{}").format(t, sql.Identifier(name))

    def new(name: str) -> sql.Composable:
        return sql.SQL("excluded.{}").format(sql.Identifier(name))

    added = sql.SQL(",\n            ").join(sql.SQL("{name} = {old} + {new}").format(name=sql.Identifier(name), old=col(name), new=new(name))
                                             for name in ("orders", "amount", "rejected", "cancels", "open_buy_quantity",
                                                          "open_buy_amount"))
    return sql.SQL("""
        INSERT INTO {table} ({columns})
        VALUES {rows}
            ON CONFLICT (account_id, trading_day, "key") DO UPDATE SET
            updated_at = excluded.updated_at,
            {added},
            last_order_at = COALESCE(excluded.last_order_at, {last_order_at}),
            second_count = CASE WHEN excluded.second_count > 0
                                THEN (CASE WHEN {second} = excluded.second THEN {second_count} + excluded.second_count
                                           ELSE excluded.second_count END)
                                ELSE {second_count} END,
            second = CASE WHEN excluded.second_count > 0 THEN excluded.second ELSE {second} END,
            instrument_id = COALESCE({instrument_id}, excluded.instrument_id)""").format(
        table=t, columns=sql.SQL(", ").join(sql.Identifier(name) for name in names),
        rows=sql.SQL(", ").join([row] * rows_count), added=added, last_order_at=col("last_order_at"), second=col("second"),
        second_count=col("second_count"), instrument_id=col("instrument_id")).as_string(None)


def counters_upsert_sql(adds: Sequence[CounterAdd]) -> Statement:
    """One INSERT ... ON CONFLICT DO UPDATE adding ``adds`` to the counter rows (portable:
    PostgreSQL and SQLite): one statement whatever exists; on PostgreSQL it rides in the order
    path's batch of writes."""
    # Shallow reads: dataclasses.astuple deep-copies every value (about 400 calls an order).
    return _upsert_text(len(adds)), [getattr(add, name) for add in adds for name in _COUNTER_ADD_FIELDS]


# --------------------------------------------------------------------------- the snapshot


@lru_cache(maxsize=2)
def _snapshot_text(with_group: bool) -> str:
    t = _tables()
    own = sql.SQL("""
        SELECT 'P' AS kind, p.instrument_id, p.account_id, p.quantity, p.frozen_quantity AS frozen,
               p.cost_amount AS amount, i.industry, q.last, q.prev_close
          FROM {position} p
          JOIN {instrument} i ON i.id = p.instrument_id
          LEFT JOIN {quote} q ON q.instrument_id = p.instrument_id
         WHERE p.account_id = %s AND p.quantity > 0""").format(**t)
    if not with_group:
        return own.as_string(None)
    return sql.SQL("""{own}
        UNION ALL
        SELECT 'G', p.instrument_id, p.account_id, p.quantity, p.frozen_quantity, 0, '', NULL, NULL
          FROM {position} p
          JOIN {account} a ON a.id = p.account_id
         WHERE a.control_group = %s AND a.id <> %s AND p.instrument_id = %s
        UNION ALL
        SELECT 'H', c.instrument_id, c.account_id, c.open_buy_quantity, 0, c.open_buy_amount, '', NULL, NULL
          FROM {counter} c
          JOIN {account} a ON a.id = c.account_id
         WHERE a.control_group = %s AND a.id <> %s AND c.trading_day = %s AND c.key = %s
               AND c.open_buy_quantity > 0""").format(own=own, **t).as_string(None)


@dataclass(frozen=True)
class SnapshotFor:
    """Whose holdings a snapshot reads."""

    account_id: int
    instrument_id: int
    day: date
    symbol: str
    group: str  # the account's control group ("" for none)


def snapshot_sql(of: SnapshotFor) -> Statement:
    """The snapshot's statement (PostgreSQL): rows in SnapshotRow order."""
    if not of.group:
        return _snapshot_text(False), [of.account_id]
    return _snapshot_text(True), [of.account_id, of.group, of.account_id, of.instrument_id, of.group, of.account_id, of.day,
                                  of.symbol]


def snapshot_parse(rows: Iterable[Sequence[Any]]) -> list[SnapshotRow]:
    return [SnapshotRow._make(row) for row in rows]


def snapshot_read(of: SnapshotFor) -> list[SnapshotRow]:
    """The snapshot (one round trip on PostgreSQL; the ORM elsewhere)."""
    from risk.models import RiskCounter
    from trading.models import Position, Quote

    if fast_path():
        return snapshot_parse(selects_run([snapshot_sql(of)])[0])
    quote = Quote._meta
    own = Position.objects.filter(account_id=of.account_id, quantity__gt=0).order_by().annotate(row_kind=Value("P")).values_list(
        "row_kind", "instrument_id", "account_id", "quantity", "frozen_quantity", "cost_amount", "instrument__industry",
        "instrument__quote__last", "instrument__quote__prev_close")
    if not of.group:
        return snapshot_parse(own)
    group = Q(account__control_group=of.group) & ~Q(account_id=of.account_id)
    blanks = {"blank_industry": Value("", output_field=CharField()),
              "null_last": Value(None, output_field=quote.get_field("last")),
              "null_prev_close": Value(None, output_field=quote.get_field("prev_close"))}
    held = (Position.objects.filter(group, instrument_id=of.instrument_id).order_by()
            .annotate(row_kind=Value("G"), zero_amount=Value(ZERO, output_field=Position._meta.get_field("cost_amount")), **blanks)
            .values_list("row_kind", "instrument_id", "account_id", "quantity", "frozen_quantity", "zero_amount", *blanks))
    buying = (RiskCounter.objects.filter(group, trading_day=of.day, key=of.symbol, open_buy_quantity__gt=0).order_by()
              .annotate(row_kind=Value("H"), zero_frozen=Value(0, output_field=IntegerField()), **blanks)
              .values_list("row_kind", "instrument_id", "account_id", "open_buy_quantity", "zero_frozen", "open_buy_amount",
                           *blanks))
    return snapshot_parse(own.union(held, buying, all=True))
