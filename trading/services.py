"""Writes to the core domain: accounts, the cash ledger and positions.

Money moves only through :func:`cash_post`, which appends a ledger row, keeps
the account's cached ``cash``/``frozen`` equal to the ledger sums and writes an
audit event, all in the caller's transaction. Callers that change an account's
money hold the account row lock (``account_lock``), always before any order
lock, so concurrent writers queue instead of deadlocking.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import lru_cache
from typing import Any

from django.db import connection, connections, models

from audit.models import AuditEvent
from audit.services import SYSTEM, Actor, audit_event, audit_record
from trading import market_rules
from trading.errors import Conflict, InvalidOrder
from trading.market_rules import Side, format_symbol
from trading.models import Account, CashEntryKind, CashLedgerEntry, Instrument, Position

ZERO = Decimal("0")
CENT = Decimal("0.01")


def multi_statement_reads() -> bool:
    """Whether several statements can share one round trip: PostgreSQL with Django's default
    client-side binding cursor (simple query protocol). Server-side binding and SQLite can't."""
    return connection.vendor == "postgresql" and not connection.settings_dict.get("OPTIONS", {}).get("server_side_binding")


def selects_run(statements: list[tuple[str, list[Any]]]) -> list[list[tuple[Any, ...]]]:
    """The rows of each SELECT, in order: one round trip where ``multi_statement_reads()``, else
    one per statement."""
    results: list[list[tuple[Any, ...]]] = []
    with connection.cursor() as cursor:
        if len(statements) > 1 and multi_statement_reads():
            cursor.execute("; ".join(sql for sql, _ in statements), [p for _, params in statements for p in params])
            results.append([tuple(row) for row in cursor.fetchall()])
            while cursor.nextset():
                results.append([tuple(row) for row in cursor.fetchall()])
        else:
            for sql, params in statements:
                cursor.execute(sql, params)
                results.append([tuple(row) for row in cursor.fetchall()])
    return results


def _lock_fields() -> list[models.Field]:
    # Every column but the broker credentials, which the lock holder never needs (reading them lazily if asked).
    return [f for f in Account._meta.concrete_fields if f.name != "broker_settings"]


@lru_cache(maxsize=8)
def _account_lock_sql(also: str = "", allocate_table: str = "") -> str:
    # Written out once, as the hot path runs it per order.
    columns = [f"a.{f.column}" for f in _lock_fields()]
    columns.append(f"({also}) AS also" if also else "NULL AS also")
    columns.append(f"nextval(pg_get_serial_sequence('{allocate_table}', 'id')) AS allocated_id" if allocate_table else "NULL")
    table = Account._meta.db_table
    # SQLite has no row locks: its writers are serialised by the database lock
    # (transaction_mode IMMEDIATE in settings), so the clause is dropped there.
    lock = " FOR UPDATE OF a" if connection.features.has_select_for_update else ""
    return f"SELECT {', '.join(columns)} FROM {table} a WHERE a.id = %s{lock}"  # noqa: S608 - identifiers from model metadata; values are bound


@lru_cache(maxsize=4)
def _account_converters(vendor: str) -> tuple[list[str], list[tuple[int, Any, list[Any]]]]:
    """The lock query's field names and, per column that needs any, the ORM's converters."""
    fields = _lock_fields()
    converters = []
    for i, f in enumerate(fields):
        col = f.get_col(Account._meta.db_table)
        found = [*connection.ops.get_db_converters(col), *col.get_db_converters(connection)]
        if found:
            converters.append((i, col, found))
    return [f.attname for f in fields], converters


def _account_from_row(row: tuple[Any, ...]) -> Account:
    """An Account from the lock query's columns, each converted as the ORM would."""
    conn = connections[connection.alias]
    names, converters = _account_converters(conn.vendor)
    values = list(row[:len(names)])
    for i, col, found in converters:
        for convert in found:
            values[i] = convert(values[i], col, conn)
    return Account.from_db(conn.alias, names, values)


def account_lock(account_id: int) -> Account:
    """Lock and return the account row (SELECT ... FOR UPDATE). Take it before any order lock."""
    return account_lock_reading(account_id).account


@dataclass
class LockedAccount:
    """The locked account row and what rode along with the lock (see ``account_lock_reading``)."""

    account: Account
    also: Any = None
    allocated_id: int | None = None
    then_rows: list[list[tuple[Any, ...]]] | None = None


def account_lock_reading(account_id: int, *, also: tuple[str, list[Any]] | None = None,
                         allocate_for: type[models.Model] | None = None,
                         then: list[tuple[str, list[Any]]] | None = None) -> LockedAccount:
    """``account_lock`` with extras in the same round trip, so that the lock holder waits on the
    database as little as possible:

    - ``also`` = (scalar SQL, its parameters) is evaluated with the lock; the
      account row is aliased ``a``. It reads the snapshot of the statement's
      start, possibly from before the lock was granted: use it only where a stale
      answer is caught later (e.g. by a unique key).
    - ``allocate_for`` (PostgreSQL): the next primary key of that model's table is
      drawn (``allocated_id``; None elsewhere), so the new row's INSERT can join
      the caller's other writes.
    - ``then``: SELECTs run once the lock is granted (so they see everything
      committed before), in the same round trip where ``multi_statement_reads()``;
      their rows, or None where they could not ride along (the caller then reads
      for itself).
    """
    allocate_table = allocate_for._meta.db_table if allocate_for is not None and connection.vendor == "postgresql" else ""
    sql = _account_lock_sql(also[0] if also else "", allocate_table)
    params = [*(also[1] if also else []), account_id]
    then = then if then and multi_statement_reads() else []
    found, *then_rows = selects_run([(sql, params), *then])
    if not found:
        raise Account.DoesNotExist(f"account {account_id} does not exist")
    row = found[0]
    return LockedAccount(_account_from_row(row), row[-2], row[-1], then_rows if then else None)


@dataclass
class LedgerPost:
    """A ledger row and its audit event, built but not yet inserted."""

    entry: CashLedgerEntry
    audit: AuditEvent


def cash_post(
    account: Account,
    *,
    kind: str,
    amount: Decimal,
    actor: Actor = SYSTEM,
    order: Any = None,
    fill: Any = None,
    memo: str = "",
    defer: list[LedgerPost] | None = None,
) -> CashLedgerEntry:
    """Apply one signed change of cash (DEPOSIT/WITHDRAW/FILL/FEE) or of frozen cash
    (FREEZE/UNFREEZE) to ``account`` and record it.

    Precondition: the caller holds the account lock. With ``defer`` the rows are
    collected for one bulk insert by the caller (the account row is still saved
    by the caller, see :func:`ledger_flush`).
    """
    amount = Decimal(amount).quantize(CENT)
    if kind in (CashEntryKind.FREEZE, CashEntryKind.UNFREEZE):
        account.frozen += amount
    else:
        account.cash += amount
    if account.frozen < ZERO:
        raise Conflict(f"冻结资金不能为负 (frozen cash of {account.name} would go negative)")
    entry = CashLedgerEntry(
        account=account,
        kind=kind,
        amount=amount,
        cash_after=account.cash,
        frozen_after=account.frozen,
        order=order,
        fill=fill,
        memo=memo[:255],
    )
    event = audit_event(
        actor=actor,
        action=f"cash.{kind.lower()}",
        object_type="account",
        object_id=account.pk,
        account=account.name,
        after={
            "amount": str(amount),
            "cash": str(account.cash),
            "frozen": str(account.frozen),
            "order": getattr(order, "pk", None),
        },
        reason=memo,
    )
    if defer is not None:
        defer.append(LedgerPost(entry, event))
        return entry
    entry.save()
    event.save()
    account.save(update_fields=["cash", "frozen"])
    return entry


def ledger_flush(account: Account, posts: list[LedgerPost], audits: list[AuditEvent] | None = None,
                 statements: list[tuple[str, list[Any]]] | None = None, new_rows: list[models.Model] | None = None) -> None:
    """Insert deferred ledger rows, their audit events and any other prepared ``audits``,
    save the account totals if money moved, and run any other prepared write ``statements``
    (each a data-modifying SQL statement with its parameters, touching other tables).
    ``new_rows`` (PostgreSQL): new rows whose primary key was drawn beforehand (see
    ``account_lock(allocate_for=...)``), inserted first with their keys.

    On PostgreSQL this is one statement (data-modifying CTEs), since it runs
    for every order while the account lock is held; elsewhere one per table.
    """
    entries = [p.entry for p in posts]
    events = [*(audits or []), *(p.audit for p in posts)]
    if connection.vendor != "postgresql":
        CashLedgerEntry.objects.bulk_create(entries)
        AuditEvent.objects.bulk_create(events)
        if posts:
            account.save(update_fields=["cash", "frozen"])
        with connection.cursor() as cursor:
            for sql, values in statements or []:
                cursor.execute(sql, values)
        return
    sqls: list[str] = []
    params: list[Any] = []
    for obj in new_rows or []:
        sql, values = insert_sql(type(obj), [obj], with_pk=True)
        sqls.append(sql)
        params.extend(values)
    for sql, values in statements or []:
        sqls.append(sql)
        params.extend(values)
    for model, rows in ((CashLedgerEntry, entries), (AuditEvent, events)):
        if rows:
            sql, values = insert_sql(model, rows)
            sqls.append(sql)
            params.extend(values)
    if posts:
        sqls.append(f"UPDATE {Account._meta.db_table} SET cash = %s, frozen = %s WHERE id = %s")  # noqa: S608 - identifiers from model metadata; values are bound
        params.extend([account.cash, account.frozen, account.pk])
    if not sqls:
        return
    *ctes, last = sqls
    head = "WITH " + ", ".join(f"w{i} AS ({sql})" for i, sql in enumerate(ctes)) + " " if ctes else ""
    with connection.cursor() as cursor:
        cursor.execute(head + last, params)
    for obj in new_rows or []:
        obj._state.adding = False
        obj._state.db = connection.alias


@lru_cache(maxsize=64)
def _insert_head(model: type[models.Model], with_pk: bool, vendor: str) -> tuple[tuple[models.Field, ...], str, str]:
    """The fields, the INSERT head and one row's placeholder of ``model`` (per database vendor)."""
    fields = tuple(f for f in model._meta.concrete_fields if with_pk or not f.primary_key)
    columns = ", ".join(connection.ops.quote_name(str(f.column)) for f in fields)
    return fields, f"INSERT INTO {model._meta.db_table} ({columns}) VALUES ", "(" + ", ".join(["%s"] * len(fields)) + ")"  # noqa: S608 - identifiers from model metadata


def insert_sql(model: type[models.Model], rows: list[Any], *, with_pk: bool = False) -> tuple[str, list[Any]]:
    """An INSERT of ``rows`` with every value prepared by its own field (as bulk_create would);
    ``with_pk``: their primary keys are given too."""
    conn = connections[connection.alias]  # the wrapper itself: the proxy costs a lookup per use
    fields, head, placeholder = _insert_head(model, with_pk, conn.vendor)
    values: list[Any] = []
    for row in rows:
        row._prepare_related_fields_for_save(operation_name="ledger_flush")
        values.extend([f.get_db_prep_save(f.pre_save(row, True), conn) for f in fields])
    return head + ", ".join([placeholder] * len(rows)), values


def ledger_totals(account: Account) -> tuple[Decimal, Decimal]:
    """Cash and frozen cash recomputed from the ledger (the truth the caches must equal)."""
    from django.db.models import Case, DecimalField, Sum, When

    from trading.models import CASH_KINDS, FROZEN_KINDS

    sums = CashLedgerEntry.objects.filter(account=account).aggregate(
        cash=Sum(Case(When(kind__in=CASH_KINDS, then="amount"), default=ZERO, output_field=DecimalField())),
        frozen=Sum(Case(When(kind__in=FROZEN_KINDS, then="amount"), default=ZERO, output_field=DecimalField())),
    )
    return (sums["cash"] or ZERO), (sums["frozen"] or ZERO)


def position_for_update(account: Account, instrument: Instrument) -> Position:
    """The account's position row in ``instrument``, locked, created empty if absent.

    Precondition: the caller holds the account lock (so creation cannot race).
    """
    position = Position.objects.select_for_update().filter(account=account, instrument=instrument).first()
    if position is None:
        position = Position.objects.create(account=account, instrument=instrument)
    return position


def position_freeze(position: Position, quantity: int, *, today: date) -> None:
    """Hold ``quantity`` sellable shares for an open sell. Caller holds the account lock."""
    sellable = position.sellable_quantity(today)
    if quantity > sellable:
        raise InvalidOrder.single(
            "quantity",
            "sellable_quantity",
            f"可卖数量不足 (only {sellable} shares of {format_symbol(position.instrument.code, position.instrument.exchange)} "
            f"are sellable today (T+1 and open sells excluded); got {quantity})",
        )
    position.frozen_quantity += quantity
    position.save(update_fields=["frozen_quantity", "updated_at"])


def position_unfreeze(position: Position, quantity: int) -> None:
    position.frozen_quantity = max(position.frozen_quantity - quantity, 0)
    position.save(update_fields=["frozen_quantity", "updated_at"])


def position_apply_fill(
    position: Position, *, side: str, quantity: int, amount: Decimal, fees: Decimal, trading_day: date, t0: bool
) -> Decimal:
    """Update a position for one fill; returns the realized P&L of a sell (fees included).

    A buy adds unsettled shares (T+1) unless the instrument is T+0; a sell takes
    the shares out of the frozen quantity its order held.
    """
    realized = ZERO
    if side == Side.BUY:
        if position.unsettled_day != trading_day:
            position.unsettled_day = trading_day
            position.unsettled_quantity = 0
        if not t0:
            position.unsettled_quantity += quantity
        position.quantity += quantity
        position.cost_amount += amount + fees
    else:
        if quantity > position.quantity:
            raise Conflict(f"卖出数量超过持仓 (sell fill of {quantity} exceeds position {position.quantity})")
        cost_out = (position.cost_amount * quantity / position.quantity).quantize(CENT) if position.quantity else ZERO
        realized = amount - fees - cost_out
        position.quantity -= quantity
        position.frozen_quantity = max(position.frozen_quantity - quantity, 0)
        position.cost_amount -= cost_out
        position.realized_pnl += realized
        if position.quantity == 0:
            position.cost_amount = ZERO
    position.save()
    return realized


@dataclass(frozen=True)
class OpeningLot:
    """Shares of one instrument held at the start, bought on ``acquired`` at ``avg_cost`` a share."""

    symbol: str
    quantity: int
    avg_cost: Decimal
    acquired: date


def _lot_field(line: int, name: str, rule: str, message: str) -> InvalidOrder:
    return InvalidOrder.single(f"line {line}.{name}", rule, message)


def opening_lots_parse(rows: list[dict[str, str]], *, today: date) -> list[OpeningLot]:
    """Validate CSV rows (``symbol, quantity, avg_cost, acquired``; lines numbered from 2, after the
    header) into lots. Raises InvalidOrder naming every bad line and field; a date after ``today``
    is refused (those shares are not held yet)."""
    problems = []
    lots: list[OpeningLot] = []
    for line, row in enumerate(rows, start=2):
        row = {str(k).strip().lower(): (v or "").strip() for k, v in row.items() if k is not None}
        try:
            code, exchange = market_rules.normalize_symbol(row.get("symbol", ""))
            symbol = format_symbol(code, exchange)
            raw_quantity = row.get("quantity", "")
            if not raw_quantity.isdigit() or int(raw_quantity) <= 0 or int(raw_quantity) > 10**12:
                raise _lot_field(line, "quantity", "positive_integer",
                                 f"第{line}行: 数量须为正整数 (line {line}: quantity must be a positive whole number; got {raw_quantity!r})")
            try:
                avg_cost = Decimal(row.get("avg_cost", ""))
            except ArithmeticError:
                avg_cost = Decimal("NaN")
            if not avg_cost.is_finite() or avg_cost < ZERO or avg_cost > Decimal("100000000"):
                raise _lot_field(line, "avg_cost", "non_negative_decimal",
                                 f"第{line}行: 成本价须为非负数 (line {line}: avg_cost must be a decimal >= 0; got {row.get('avg_cost')!r})")
            try:
                acquired = date.fromisoformat(row.get("acquired", ""))
            except ValueError:
                raise _lot_field(line, "acquired", "date",
                                 f"第{line}行: 买入日须为 YYYY-MM-DD (line {line}: acquired must be a date YYYY-MM-DD; "
                                 f"got {row.get('acquired')!r})") from None
            if acquired > today:
                raise _lot_field(line, "acquired", "not_future",
                                 f"第{line}行: 买入日晚于今日 (line {line}: acquired {acquired} is after today {today})")
            lots.append(OpeningLot(symbol, int(raw_quantity), avg_cost, acquired))
        except InvalidOrder as exc:
            problems.extend(exc.problems)
        except market_rules.MarketRuleViolation as exc:
            problems.append(_lot_field(line, "symbol", "symbol", f"第{line}行: {exc} (line {line})").problems[0])
    if problems:
        raise InvalidOrder(problems)
    if not lots:
        raise InvalidOrder.single("file", "required", "文件中没有持仓 (the file has no positions)")
    return lots


def position_open(*, account: Account, instrument: Instrument, lots: list[OpeningLot], today: date, actor: Actor) -> Position:
    """Set the account's position in ``instrument`` to the opening ``lots`` (replacing what it held),
    audited. Shares acquired before ``today`` are sellable; those acquired today are not until the next
    day (T+1), unless the instrument trades T+0. Cash is not touched: these shares were paid for
    before the account came to the back office.

    Precondition: the caller holds the account lock. Refused (Conflict) while open sells hold shares.
    """
    position = position_for_update(account, instrument)
    if position.frozen_quantity:
        raise Conflict(f"{instrument.symbol} 有未成交卖单冻结 {position.frozen_quantity} 股, 不能载入期初持仓 "
                       f"(open sells hold {position.frozen_quantity} shares of {instrument.symbol}; cancel them first)")
    before = {"quantity": position.quantity, "cost_amount": str(position.cost_amount),
              "unsettled_quantity": position.unsettled_quantity if position.unsettled_day == today else 0}
    position.quantity = sum(lot.quantity for lot in lots)
    position.cost_amount = sum(((lot.avg_cost * lot.quantity).quantize(CENT) for lot in lots), ZERO)
    bought_today = sum(lot.quantity for lot in lots if lot.acquired == today)
    position.unsettled_quantity = 0 if market_rules.is_t0(instrument) else bought_today
    position.unsettled_day = today
    position.save()
    audit_record(actor=actor, action="position.opening_loaded", object_type="position", object_id=position.pk,
                 account=account.name, before=before,
                 after={"symbol": instrument.symbol, "quantity": position.quantity, "cost_amount": str(position.cost_amount),
                        "unsettled_quantity": position.unsettled_quantity,
                        "lots": [{"quantity": lot.quantity, "avg_cost": str(lot.avg_cost), "acquired": lot.acquired.isoformat()}
                                 for lot in lots]},
                 reason="期初持仓 (opening position)")
    return position
