"""Writes to the core domain: accounts, the cash ledger and positions.

The order path's raw SQL (the account lock and the batched write) lives in ``trading.db``; its
public names are re-exported here, where the order path imports them.

Money moves only through :func:`cash_post`, which appends a ledger row, keeps
the account's cached ``cash``/``frozen`` equal to the ledger sums and writes an
audit event, all in the caller's transaction. Callers that change an account's
money hold the account row lock (``account_lock``), always before any order
lock, so concurrent writers queue instead of deadlocking.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from django.db import connection, models, transaction

from audit.models import AuditEvent
from audit.services import SYSTEM, Actor, audit_event, audit_record
from trading import market_rules
from trading.db import (  # noqa: F401 - LockedAccount .. selects_run re-exported: callers import them from here
    LockedAccount,
    account_lock_reading,
    fast_path,
    insert_sql,
    multi_statement_reads,
    selects_run,
    writes_run,
)
from trading.errors import Conflict, InputRule, InvalidOrder
from trading.events import EventKind, publish
from trading.i18n import bilingual
from trading.market_rules import Side, format_symbol
from trading.models import Account, CashEntryKind, CashLedgerEntry, Instrument, Position
from trading.money import ZERO, to_cent


def account_lock(account_id: int) -> Account:
    """Lock and return the account row (SELECT ... FOR UPDATE). Take it before any order lock."""
    return account_lock_reading(account_id).account


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
    amount = to_cent(Decimal(amount), ROUND_HALF_EVEN)
    if kind in (CashEntryKind.FREEZE, CashEntryKind.UNFREEZE):
        account.frozen += amount
    else:
        account.cash += amount
    if account.frozen < ZERO:
        raise Conflict(bilingual("frozen cash of {account} would go negative", account=account.name))
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
    balance_published(account)
    return entry


def balance_published(account: Account) -> None:
    """Announce ``account``'s cash and frozen cash as they stand now, after commit (no query)."""
    publish(EventKind.BALANCE, account.name, {"cash": str(account.cash), "frozen": str(account.frozen),
                                              "available": str(account.cash - account.frozen)})


def ledger_flush(account: Account, posts: list[LedgerPost], audits: list[AuditEvent] | None = None,
                 statements: list[tuple[str, list[Any]]] | None = None, new_rows: list[models.Model] | None = None) -> None:
    """Insert deferred ledger rows, their audit events and any other prepared ``audits``,
    save the account totals if money moved, and run any other prepared write ``statements``
    (each a data-modifying SQL statement with its parameters, touching other tables).
    ``new_rows`` (PostgreSQL): new rows whose primary key was drawn beforehand (see
    ``account_lock_reading(allocate_for=...)``), inserted first with their keys.

    On PostgreSQL this is one statement (``trading.db.writes_run``), since it runs for every
    order while the account lock is held; on SQLite the ORM writes one table at a time.
    """
    entries = [p.entry for p in posts]
    events = [*(audits or []), *(p.audit for p in posts)]
    if posts:
        balance_published(account)
    if fast_path():
        writes_run(account, new_rows=new_rows or (), statements=statements or (), entries=entries, events=events,
                   totals=bool(posts))
        return
    for row in new_rows or ():
        row.save(force_insert=True)
    CashLedgerEntry.objects.bulk_create(entries)
    AuditEvent.objects.bulk_create(events)
    if posts:
        account.save(update_fields=["cash", "frozen"])
    with connection.cursor() as cursor:
        for sql, values in statements or ():
            cursor.execute(sql, values)


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
            InputRule.SELLABLE_QUANTITY,
            bilingual("only {sellable} shares of {symbol} are sellable today (T+1 and open sells excluded); got {quantity}",
                      sellable=sellable, symbol=format_symbol(position.instrument.code, position.instrument.exchange),
                      quantity=quantity),
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
    realized = position_fill_arithmetic(position, side=side, quantity=quantity, amount=amount, fees=fees,
                                        trading_day=trading_day, t0=t0)
    position.save()
    return realized


def position_fill_arithmetic(
    position: Position, *, side: str, quantity: int, amount: Decimal, fees: Decimal, trading_day: date, t0: bool
) -> Decimal:
    """What one fill does to a position's fields (nothing saved): the one definition, used by
    :func:`position_apply_fill` and by the replay of an account's history (compliance.replay)."""
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
            raise Conflict(bilingual("sell fill of {quantity} exceeds position {position}", quantity=quantity, position=position.quantity))
        cost_out = to_cent(position.cost_amount * quantity / position.quantity, ROUND_HALF_EVEN) if position.quantity else ZERO
        realized = amount - fees - cost_out
        position.quantity -= quantity
        position.frozen_quantity = max(position.frozen_quantity - quantity, 0)
        position.cost_amount -= cost_out
        position.realized_pnl += realized
        if position.quantity == 0:
            position.cost_amount = ZERO
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
                                 bilingual("line {line}: quantity must be a positive whole number; got {got}", line=line, got=repr(raw_quantity)))
            try:
                avg_cost = Decimal(row.get("avg_cost", ""))
            except ArithmeticError:
                avg_cost = Decimal("NaN")
            if not avg_cost.is_finite() or avg_cost < ZERO or avg_cost > Decimal("100000000"):
                raise _lot_field(line, "avg_cost", "non_negative_decimal",
                                 bilingual("line {line}: avg_cost must be a decimal >= 0; got {got}", line=line, got=repr(row.get("avg_cost"))))
            try:
                acquired = date.fromisoformat(row.get("acquired", ""))
            except ValueError:
                raise _lot_field(line, "acquired", "date",
                                 bilingual("line {line}: acquired must be a date YYYY-MM-DD; got {got}", line=line,
                                           got=repr(row.get("acquired")))) from None
            if acquired > today:
                raise _lot_field(line, "acquired", "not_future",
                                 bilingual("line {line}: acquired {acquired} is after today {today}", line=line, acquired=acquired, today=today))
            lots.append(OpeningLot(symbol, int(raw_quantity), avg_cost, acquired))
        except InvalidOrder as exc:
            problems.extend(exc.problems)
        except market_rules.MarketRuleViolation as exc:
            problems.append(_lot_field(line, "symbol", "symbol", bilingual("line {line}", line=line, problem=exc)).problems[0])
    if problems:
        raise InvalidOrder(problems)
    if not lots:
        raise InvalidOrder.single("file", InputRule.REQUIRED, bilingual("the file has no positions"))
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
    position.cost_amount = sum((to_cent(lot.avg_cost * lot.quantity, ROUND_HALF_EVEN) for lot in lots), ZERO)
    bought_today = sum(lot.quantity for lot in lots if lot.acquired == today)
    position.unsettled_quantity = 0 if market_rules.is_t0(instrument) else bought_today
    position.unsettled_day = today
    position.save()
    audit_record(actor=actor, action="position.opening_loaded", object_type="position", object_id=position.pk,
                 account=account.name, before=before,
                 after={"symbol": instrument.symbol, "quantity": position.quantity, "cost_amount": str(position.cost_amount),
                        "unsettled_quantity": position.unsettled_quantity, "unsettled_day": today.isoformat(),
                        "lots": [{"quantity": lot.quantity, "avg_cost": str(lot.avg_cost), "acquired": lot.acquired.isoformat()}
                                 for lot in lots]},
                 reason="期初持仓 (opening position)")
    return position


# --------------------------------------------------------------------------- suitability


def _suitability_snapshot(account: Account) -> dict[str, Any]:
    return {"owner": account.owner, "trading_permissions": dict(account.trading_permissions or {}),
            "risk_tolerance": account.risk_tolerance,
            "risk_tolerance_expires_on": account.risk_tolerance_expires_on.isoformat() if account.risk_tolerance_expires_on else None}


@transaction.atomic
def account_permissions_set(*, account_id: int, permissions: Mapping[str, Any], owner: str | None = None,
                            actor: Actor, reason: str = "") -> Account:
    """Set the trading permissions the broker granted the account (``{code: date granted}``; a code
    absent or falsy is not granted; True means granted today) and, if given, its owner. Audited
    (``account.permissions_changed``, before and after). Raises InvalidOrder for an unknown code or
    a bad date. Orders already accepted are not touched: the check runs at intake."""
    from trading.calendar import trading_day_of
    from trading.clock import now as clock_now
    from trading.suitability import permissions_normalize

    try:
        normalized = permissions_normalize(permissions, default_day=trading_day_of(clock_now()))
    except ValueError as exc:
        raise InvalidOrder.single("trading_permissions", InputRule.CHOICE, str(exc)) from None
    account = account_lock(account_id)
    before = _suitability_snapshot(account)
    account.trading_permissions = normalized
    fields = ["trading_permissions"]
    if owner is not None and owner != account.owner:
        account.owner = owner.strip()
        fields.append("owner")
        _tolerance_from_assessment(account)  # another owner: their assessment applies
        fields += ["risk_tolerance", "risk_tolerance_expires_on"]
    after = _suitability_snapshot(account)
    if after == before:
        return account
    account.save(update_fields=fields)
    audit_record(actor=actor, action="account.permissions_changed", object_type="account", object_id=account.pk,
                 account=account.name, before=before, after=after, reason=reason)
    return account


def _tolerance_from_assessment(account: Account) -> None:
    """Copy the newest assessment of the account's owner onto the account (none: cleared)."""
    from trading.models import RiskAssessment

    newest = RiskAssessment.objects.filter(owner=account.owner_name).order_by("-assessed_on", "-id").first()
    account.risk_tolerance = newest.level if newest else ""
    account.risk_tolerance_expires_on = newest.expires_on if newest else None


@transaction.atomic
def risk_assessment_record(*, owner: str, level: str, assessed_on: date, expires_on: date, actor: Actor,
                           score: int | None = None, questionnaire: Mapping[str, Any] | None = None) -> Any:
    """Record an owner's risk-tolerance assessment (C1-C5, valid ``assessed_on`` .. ``expires_on``)
    and make the newest one current on every account of that owner (locked in id order). Audited:
    ``risk_assessment.recorded`` and, per account whose tolerance changed,
    ``account.risk_tolerance_changed`` with before and after."""
    from trading.models import RiskAssessment
    from trading.suitability import RiskTolerance

    owner = owner.strip()
    if not owner:
        raise InvalidOrder.single("owner", InputRule.REQUIRED, bilingual("the owner is required"))
    if level not in RiskTolerance.values:
        raise InvalidOrder.single("level", InputRule.CHOICE, bilingual("level must be C1-C5; got {level!r}", level=level))
    if expires_on < assessed_on:
        raise InvalidOrder.single("expires_on", InputRule.ORDER, bilingual("expires_on {expires_on} is before assessed_on {assessed_on}",
                                                                           expires_on=expires_on, assessed_on=assessed_on))
    assessment = RiskAssessment.objects.create(owner=owner, level=level, score=score, questionnaire=dict(questionnaire or {}),
                                               assessed_on=assessed_on, expires_on=expires_on, recorded_by=actor.name)
    audit_record(actor=actor, action="risk_assessment.recorded", object_type="risk_assessment", object_id=assessment.pk,
                 after={"owner": owner, "level": level, "score": score, "assessed_on": assessed_on.isoformat(),
                        "expires_on": expires_on.isoformat(), "questionnaire": assessment.questionnaire})
    ids = Account.objects.filter(models.Q(owner=owner) | models.Q(owner="", name=owner)).order_by("pk").values_list("pk", flat=True)
    for account_id in ids:
        account = account_lock(account_id)
        before = _suitability_snapshot(account)
        _tolerance_from_assessment(account)
        after = _suitability_snapshot(account)
        if after != before:
            account.save(update_fields=["risk_tolerance", "risk_tolerance_expires_on"])
            audit_record(actor=actor, action="account.risk_tolerance_changed", object_type="account", object_id=account.pk,
                         account=account.name, before=before, after=after, reason=f"risk assessment #{assessment.pk}")
    return assessment
