"""Reconciliation with discrepancies: the broker's orders, trades, positions and cash compared with
ours, every difference kept as a :class:`orders.models.Discrepancy` row with both sides.

One run of an account (``account_reconcile``):

1. reads the broker's full lists (orders, trades, positions, balance), outside any transaction;
2. brings our working, UNKNOWN and stuck SUBMITTING orders in line with those lists exactly as the
   poll does (``orders_bring_in_line``): status events, fills through the normal fill path
   (deduplicated by the broker's trade id), a lost order re-sent only when the broker lacks it and
   only once (its row lock and staleness decide who sends);
3. compares what is left, and records it under the account lock: a difference seen again moves
   ``last_seen_at`` of its OPEN row, a new one opens a row, an OPEN row whose object now agrees
   is closed by reconciliation with a note. A row whose object was not compared this run (the
   broker no longer lists it, or it changed here after the broker was read) stays as it is: only
   a person closes it, with a reason (``discrepancy_resolve``).

Positions and cash are shown, never overwritten: nothing here writes a position or the ledger
except through the fill path of step 2.

An object that changed here after the broker was read (an order, a position, a ledger entry
with a later timestamp: a fill recorded meanwhile, a lost order just re-sent) is not compared in
that run, since the broker's lists predate it; the next run compares it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from audit.services import Actor, audit_record
from brokers.interface import BrokerBalance, BrokerChanges, BrokerOrder, BrokerOrderStatus, BrokerPosition, BrokerTrade
from brokers.registry import broker_for
from orders.models import (
    WORKING_STATUSES,
    Discrepancy,
    DiscrepancyKind,
    DiscrepancyStatus,
    Fill,
    Order,
    OrderStatus,
)
from orders.services.reconcile import POLLED_STATUSES, orders_bring_in_line
from orders.services.sync import broker_order_of
from trading.clock import now
from trading.errors import BrokerError, Conflict, InputRule, InvalidOrder, NotFound
from trading.events import EventKind, publish
from trading.i18n import bilingual
from trading.models import Account, CashLedgerEntry, Position
from trading.selectors import account_trading_day
from trading.services import account_lock

log = logging.getLogger(__name__)

RECONCILIATION = Actor.system("reconciliation")
K = DiscrepancyKind
S = OrderStatus
B = BrokerOrderStatus

# Our status as the broker would say it: a status here agrees with any of these there.
_AGREEING: dict[str, frozenset[BrokerOrderStatus]] = {
    S.SUBMITTED: frozenset({B.OPEN}),
    S.PARTIALLY_FILLED: frozenset({B.PARTIALLY_FILLED}),
    S.CANCEL_REQUESTED: frozenset({B.OPEN, B.PARTIALLY_FILLED}),  # the cancel is on its way
    S.FILLED: frozenset({B.FILLED}),
    # A day order that ended unfilled: brokers say cancelled (已撤) or expired for the same thing.
    S.CANCELLED: frozenset({B.CANCELLED, B.EXPIRED}),
    S.EXPIRED: frozenset({B.CANCELLED, B.EXPIRED}),
    S.REJECTED: frozenset({B.REJECTED}),
}
_IN_FLIGHT = (S.UNKNOWN, S.SUBMITTING)  # being resolved by step 2 (or by its worker): not compared
_CHUNK = 400  # ids per IN (...), within SQLite's limit of bound parameters


@dataclass(frozen=True)
class Difference:
    """One difference found by a comparison: what it is about and each side, as a person reads them."""

    kind: str
    object_ref: str
    ours: str
    theirs: str
    order_id: int | None = None


@dataclass
class Comparison:
    """What one run compared: the differences, and the objects found to agree (with the agreed value)."""

    differences: list[Difference]
    agreed: dict[tuple[str, str], str]

    def check(self, kind: str, ref: str, ours: str, theirs: str, *, same: bool | None = None,
              order_id: int | None = None) -> None:
        if (ours == theirs) if same is None else same:
            self.agreed[(kind, ref)] = ours if ours == theirs else f"{ours} / {theirs}"
        else:
            self.differences.append(Difference(kind, ref, ours, theirs, order_id))


@dataclass(frozen=True)
class ReconcileResult:
    """One account's run: orders brought in line, and the discrepancy rows it opened, saw again
    and closed; ``open_total`` counts the account's OPEN rows afterwards."""

    account: str
    orders_changed: int
    opened: int
    seen_again: int
    closed: int
    open_total: int


def account_reconcile(*, account_id: int, actor: Actor = RECONCILIATION) -> ReconcileResult:
    """Worker: reconcile one account with its broker (module docstring). Safe to run at any time
    and concurrently with itself, the poll and the submit workers: fills are deduplicated by the
    broker's trade id under the order's lock, a lost order is sent at most once, and discrepancy
    rows are written under the account lock with one OPEN row per object (a DB constraint).

    Raises NotFound for an unknown account, BrokerError (BrokerTimeout, BrokerUnavailable) when
    the broker cannot be read; then nothing is recorded. Call it outside any transaction."""
    account = Account.objects.filter(pk=account_id).first()
    if account is None:
        raise NotFound(bilingual("unknown account {name!r}", name=account_id))
    broker = broker_for(account)
    # Compared with auto_now timestamps (orders, positions, ledger): Django's clock, not trading.clock.
    read_at = timezone.now()
    broker_orders = broker.query_orders()
    trades = _unique_trades(broker.query_trades())
    positions = broker.get_positions()
    balance = broker.get_balance()
    working = list(Order.objects.filter(account=account, status__in=POLLED_STATUSES).select_related("instrument").order_by("pk"))
    changed = orders_bring_in_line(account, broker, BrokerChanges(broker_orders, trades, cursor=None, complete=True), working)
    comparison = compare(account, read_at=read_at, broker_orders=broker_orders, trades=trades, positions=positions,
                         balance=balance, carries_ref=broker.capabilities.client_ref)
    opened, seen_again, closed, open_total = discrepancies_record(account_id=account.pk, comparison=comparison, actor=actor)
    if opened:
        log.warning("reconciliation of %s: %d new discrepancies (%d open)", account.name, opened, open_total)
    return ReconcileResult(account.name, changed, opened, seen_again, closed, open_total)


def accounts_reconcile_all(*, actor: Actor = RECONCILIATION) -> list[ReconcileResult]:
    """Reconcile every active account; one whose broker cannot be read is logged and skipped."""
    results = []
    for account_id, name in Account.objects.filter(status=Account.Status.ACTIVE).order_by("pk").values_list("pk", "name"):
        try:
            results.append(account_reconcile(account_id=account_id, actor=actor))
        except BrokerError as exc:
            log.warning("reconciliation of %s skipped: broker not readable (%s)", name, exc.message)
        except Exception:  # one account's fault must not stop the others; the next run tries again
            log.exception("reconciliation of %s failed", name)
    return results


# --------------------------------------------------------------------------- comparing


def compare(account: Account, *, read_at: datetime, broker_orders: list[BrokerOrder], trades: list[BrokerTrade],
            positions: list[BrokerPosition], balance: BrokerBalance, carries_ref: bool = True) -> Comparison:
    """Compare the broker's lists, read at ``read_at``, with our rows now. Writes nothing.
    ``carries_ref``: the broker reports our order id on its orders (``capabilities.client_ref``);
    otherwise an order of ours without a broker id is recognised by what it says (``broker_order_of``)."""
    result = Comparison([], {})
    ours_by_broker_id = _compare_orders(account, result, read_at, broker_orders, carries_ref)
    _compare_trades(account, result, read_at, trades, ours_by_broker_id)
    _compare_positions(account, result, read_at, positions)
    _compare_cash(account, result, read_at, balance)
    return result


def _compare_orders(account: Account, result: Comparison, read_at: datetime, broker_orders: list[BrokerOrder],
                    carries_ref: bool) -> dict[str, Order | None]:
    """Orders both ways; returns our order (or None) for each broker order id."""
    ids = sorted({o.broker_order_id for o in broker_orders})
    refs = sorted({int(o.client_ref) for o in broker_orders if o.client_ref.isdigit()})
    named: dict[int, Order] = {}
    for start in range(0, max(len(ids), len(refs)), _CHUNK):
        chunk = Q(broker_order_id__in=ids[start:start + _CHUNK]) | Q(pk__in=refs[start:start + _CHUNK])
        named.update((o.pk, o) for o in Order.objects.filter(chunk, account=account).select_related("instrument"))
    by_id = {o.broker_order_id: o for o in named.values() if o.broker_order_id}
    matched: dict[str, Order | None] = {}
    for theirs in broker_orders:
        ours = by_id.get(theirs.broker_order_id)
        if ours is None and theirs.client_ref.isdigit():
            candidate = named.get(int(theirs.client_ref))
            # Our order under another broker id is not this one: the broker holds a second copy.
            if candidate is not None and candidate.broker_order_id in ("", theirs.broker_order_id):
                ours = candidate
        matched[theirs.broker_order_id] = ours
    if not carries_ref:
        _match_by_content(account, broker_orders, matched)
    for theirs in broker_orders:
        ours = matched[theirs.broker_order_id]
        ref = f"broker_order:{theirs.broker_order_id}"
        if ours is None:
            result.check(K.ORDER_ONLY_AT_BROKER, ref, "", _broker_order_text(theirs))
            continue
        result.check(K.ORDER_ONLY_AT_BROKER, ref, f"#{ours.pk}", f"#{ours.pk}")
        if ours.updated_at >= read_at or ours.status in _IN_FLIGHT:
            continue  # changed since the broker was read, or still in flight: compared next run
        agreeing = _AGREEING.get(ours.status, frozenset())
        result.check(K.ORDER_STATUS, f"order:{ours.pk}", ours.status, theirs.status,
                     same=theirs.status in agreeing, order_id=ours.pk)
        result.check(K.FILLED_QUANTITY, f"order:{ours.pk}", str(ours.filled_quantity), str(theirs.filled_quantity),
                     order_id=ours.pk)
    found_pks = {o.pk for o in matched.values() if o is not None}
    today = account_trading_day(account, now())
    expected = (Order.objects.filter(account=account, updated_at__lt=read_at)
                .filter(Q(status__in=WORKING_STATUSES) | (Q(trading_day=today) & ~Q(broker_order_id="")))
                .exclude(status__in=_IN_FLIGHT).select_related("instrument").order_by("pk"))
    for ours in expected:
        ref = f"order:{ours.pk}"
        if ours.pk in found_pks:
            result.check(K.ORDER_ONLY_HERE, ref, "", "", order_id=ours.pk)
        else:
            result.check(K.ORDER_ONLY_HERE, ref, _order_text(ours), "", order_id=ours.pk)
    return matched


def _match_by_content(account: Account, broker_orders: list[BrokerOrder], matched: dict[str, Order | None]) -> None:
    """For a broker that cannot carry our reference: today's orders of ours without a broker id
    (refused when sent, so the refusal gave none) recognised among the unmatched broker orders by
    what they say, with the poll's own matcher."""
    unmatched = [o for o in broker_orders if matched[o.broker_order_id] is None]
    if not unmatched:
        return
    today = account_trading_day(account, now())
    for ours in Order.objects.filter(account=account, trading_day=today, broker_order_id="").exclude(
            status__in=(S.NEW, S.PENDING_APPROVAL)).select_related("instrument").order_by("pk"):
        found = broker_order_of(ours, unmatched, carries_ref=False)
        if found is not None:
            matched[found.broker_order_id] = ours
            unmatched.remove(found)


def _compare_trades(account: Account, result: Comparison, read_at: datetime, trades: list[BrokerTrade],
                    ours_by_broker_id: dict[str, Order | None]) -> None:
    """Each broker trade must be one of our fills (a trade of an order still in flight here, or
    changed since the read, is left to the next run)."""
    ids = sorted(t.broker_trade_id for t in trades)
    have: set[str] = set()
    for start in range(0, len(ids), _CHUNK):
        have.update(Fill.objects.filter(order__account=account, broker_trade_id__in=ids[start:start + _CHUNK])
                    .values_list("broker_trade_id", flat=True))
    for trade in trades:
        ref = f"trade:{trade.broker_trade_id}"
        order = ours_by_broker_id.get(trade.broker_order_id)
        if trade.broker_trade_id in have:
            result.check(K.TRADE_ONLY_AT_BROKER, ref, trade.broker_trade_id, trade.broker_trade_id)
            continue
        if order is not None:
            order.refresh_from_db(fields=["status", "updated_at"])
            if order.status in _IN_FLIGHT or order.updated_at >= read_at:
                continue
        result.check(K.TRADE_ONLY_AT_BROKER, ref, "", _trade_text(trade), order_id=order.pk if order else None)


def _compare_positions(account: Account, result: Comparison, read_at: datetime, positions: list[BrokerPosition]) -> None:
    ours = {p.instrument.symbol: p for p in Position.objects.filter(account=account).select_related("instrument")}
    theirs = {p.symbol: p.quantity for p in positions}
    # Symbols of open rows too: a difference that went away on both sides (0 and unlisted) is
    # compared, and found to agree, rather than left open for lack of a comparison.
    prefix = "position:"
    flagged = {ref.removeprefix(prefix) for ref in Discrepancy.objects.filter(
        account=account, kind=K.POSITION_QUANTITY, status=DiscrepancyStatus.OPEN).values_list("object_ref", flat=True)}
    for symbol in sorted(set(theirs) | {s for s, p in ours.items() if p.quantity} | flagged):
        position = ours.get(symbol)
        if position is not None and position.updated_at >= read_at:
            continue  # a fill moved it after the broker was read
        result.check(K.POSITION_QUANTITY, f"{prefix}{symbol}", str(position.quantity if position else 0),
                     str(theirs.get(symbol, 0)))


def _compare_cash(account: Account, result: Comparison, read_at: datetime, balance: BrokerBalance) -> None:
    """Cash always; available only while no order of ours holds a freeze (each side estimates the
    fees an open buy holds in its own way, so they differ by design while one is open)."""
    if CashLedgerEntry.objects.filter(account=account, created_at__gte=read_at).exists():
        return  # money moved here after the broker was read
    account.refresh_from_db(fields=["cash", "frozen"])
    result.check(K.CASH, "cash", _money(account.cash), _money(balance.cash), same=account.cash == balance.cash)
    if account.frozen == 0:
        result.check(K.CASH, "available", _money(account.available), _money(balance.available),
                     same=account.available == balance.available)


# --------------------------------------------------------------------------- recording


def discrepancies_record(*, account_id: int, comparison: Comparison, actor: Actor) -> tuple[int, int, int, int]:
    """Record one comparison under the account lock: open new rows (audited), move ``last_seen_at``
    of rows seen again, close rows whose object now agrees (audited). Returns (opened, seen again,
    closed, open afterwards)."""
    at = now()
    opened = seen_again = closed = 0
    with transaction.atomic():
        account = account_lock(account_id)
        rows = {(r.kind, r.object_ref): r for r in
                Discrepancy.objects.select_for_update(of=("self",)).filter(account=account, status=DiscrepancyStatus.OPEN)}
        for difference in comparison.differences:
            row = rows.get((difference.kind, difference.object_ref))
            if row is not None:
                row.ours, row.theirs = difference.ours[:500], difference.theirs[:500]
                row.last_seen_at = at
                row.times_seen += 1
                row.save(update_fields=["ours", "theirs", "last_seen_at", "times_seen"])
                seen_again += 1
                continue
            row = Discrepancy.objects.create(
                account=account, kind=difference.kind, object_ref=difference.object_ref, order_id=difference.order_id,
                ours=difference.ours[:500], theirs=difference.theirs[:500], first_seen_at=at, last_seen_at=at)
            rows[(row.kind, row.object_ref)] = row
            audit_record(actor=actor, action="discrepancy.opened", object_type="discrepancy", object_id=row.pk,
                         account=account.name, after=_row_state(row))
            _announce(row, account.name)
            opened += 1
        for key, value in comparison.agreed.items():
            row = rows.pop(key, None)
            if row is None:
                continue
            before = _row_state(row)
            row.status = DiscrepancyStatus.RESOLVED
            row.resolved_by = actor.name[:128]
            row.resolved_at = at
            row.resolution = (bilingual("closed by reconciliation: both sides agree now") + f": {value}")[:500]
            row.save(update_fields=["status", "resolved_by", "resolved_at", "resolution"])
            audit_record(actor=actor, action="discrepancy.auto_closed", object_type="discrepancy", object_id=row.pk,
                         account=account.name, before=before, after=_row_state(row), reason=row.resolution)
            _announce(row, account.name)
            closed += 1
        open_total = sum(1 for r in rows.values() if r.status == DiscrepancyStatus.OPEN)
    return opened, seen_again, closed, open_total


def discrepancy_resolve(*, discrepancy_id: int, actor: Actor, reason: str) -> Discrepancy:
    """A person closes an OPEN discrepancy with a reason (required), audited. Nothing else changes:
    putting a position or cash right is a separate, deliberate act. 409 if it is resolved already."""
    reason = (reason or "").strip()
    if not reason:
        raise InvalidOrder.single("reason", InputRule.REQUIRED, bilingual("a reason is required"))
    with transaction.atomic():
        row = Discrepancy.objects.select_for_update(of=("self",)).select_related("account").filter(pk=discrepancy_id).first()
        if row is None:
            raise NotFound(bilingual("discrepancy {id} not found", id=discrepancy_id))
        if row.status != DiscrepancyStatus.OPEN:
            raise Conflict(bilingual("discrepancy {id} is resolved already", id=discrepancy_id))
        before = _row_state(row)
        row.status = DiscrepancyStatus.RESOLVED
        row.resolved_by = actor.name[:128]
        row.resolved_at = now()
        row.resolution = reason[:500]
        row.save(update_fields=["status", "resolved_by", "resolved_at", "resolution"])
        audit_record(actor=actor, action="discrepancy.resolved", object_type="discrepancy", object_id=row.pk,
                     account=row.account.name, before=before, after=_row_state(row), reason=row.resolution)
        _announce(row, row.account.name)
    return row


# --------------------------------------------------------------------------- texts


def _announce(row: Discrepancy, account: str) -> None:
    """A discrepancy opened or closed, announced after commit (trading.events) for alerting."""
    publish(EventKind.DISCREPANCY, account, {"id": row.pk, **_row_state(row), "resolved_by": row.resolved_by})


def _row_state(row: Discrepancy) -> dict[str, str]:
    return {"kind": row.kind, "object_ref": row.object_ref, "ours": row.ours, "theirs": row.theirs, "status": row.status}


def _money(value: Decimal) -> str:
    return f"{value:.2f}"


def _price(value: Decimal | None) -> str:
    return f" @ {value.normalize():f}" if value is not None else ""


def _broker_order_text(order: BrokerOrder) -> str:
    ref = f", ref {order.client_ref}" if order.client_ref else ""
    return (f"{order.broker_order_id} {order.side} {order.quantity} {order.symbol}{_price(order.price)} "
            f"{order.status}, filled {order.filled_quantity}{ref}")


def _order_text(order: Order) -> str:
    broker_id = f" ({order.broker_order_id})" if order.broker_order_id else ""
    return (f"#{order.pk}{broker_id} {order.side} {order.quantity} {order.instrument.symbol}{_price(order.price)} "
            f"{order.status}, filled {order.filled_quantity}")


def _trade_text(trade: BrokerTrade) -> str:
    return (f"{trade.broker_trade_id} {trade.side} {trade.quantity} {trade.symbol}{_price(trade.price)} "
            f"(order {trade.broker_order_id})")


def _unique_trades(trades: Iterable[BrokerTrade]) -> list[BrokerTrade]:
    """Each broker trade id once (a reconnect may report a trade twice), first report kept."""
    seen: dict[str, BrokerTrade] = {}
    for trade in trades:
        seen.setdefault(trade.broker_trade_id, trade)
    return list(seen.values())
