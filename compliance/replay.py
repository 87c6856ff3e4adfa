"""Replay: an account's cash, positions and open orders at a past moment, rebuilt from what was recorded.

What each source records, and what the replay takes from it:

- ``trading.CashLedgerEntry`` (``created_at``): every change of cash and of frozen cash, signed, with
  the order it belongs to. Cash and frozen cash at a moment are the sums of the rows written by then;
  a buy order's frozen cash is the sum of its own FREEZE/UNFREEZE rows.
- ``orders.Fill`` (``created_at``): every execution. Positions are the opening positions plus the
  fills, applied in order with ``trading.services.position_fill_arithmetic`` (the same arithmetic the
  order path uses), which gives quantity, cost, realised P&L and the T+1 unsettled shares.
- ``order.status_changed`` audit events (``occurred_at``, before/after): an order's status at a
  moment is the ``after`` of its last change by then (NEW before the first); its filled quantity the
  sum of its fills by then.
- ``position.opening_loaded`` audit events (brokers.services.opening_positions_load): set a position
  (quantity, cost, unsettled shares). The day those unsettled shares belong to was missing from the
  event; it is recorded now (``after.unsettled_day``); older events fall back to the event's own day.
- The shares a working sell holds are not recorded anywhere as such (``Position.frozen_quantity``
  is a running total): they are derived, as the order path keeps them, from the sell orders working
  at the moment that took a freeze (their remaining quantity).

Moments are the database's timestamps (``timezone.now()`` when the row was written). A transaction
still open at the moment asked for and committed later appears as if committed when it wrote its rows.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.db import transaction

from audit.models import AuditEvent
from orders.models import TERMINAL_STATUSES, Fill, Order, OrderStatus
from trading import market_rules
from trading.calendar import SHANGHAI
from trading.market_rules import Side
from trading.models import CASH_KINDS, FROZEN_KINDS, Account, CashLedgerEntry, Instrument, Position
from trading.money import ZERO
from trading.services import position_fill_arithmetic


@dataclass
class PositionState:
    symbol: str
    quantity: int = 0
    frozen_quantity: int = 0
    unsettled_quantity: int = 0
    unsettled_day: date | None = None
    cost_amount: Decimal = ZERO
    realized_pnl: Decimal = ZERO

    def compared(self) -> dict[str, Any]:
        """The fields the check compares (the unsettled shares only with their day)."""
        return {"quantity": self.quantity, "frozen_quantity": self.frozen_quantity,
                "unsettled": (self.unsettled_day, self.unsettled_quantity) if self.unsettled_quantity else None,
                "cost_amount": self.cost_amount, "realized_pnl": self.realized_pnl}

    @property
    def empty(self) -> bool:
        return not (self.quantity or self.frozen_quantity or self.cost_amount or self.realized_pnl)


@dataclass
class OrderState:
    id: int
    client_order_id: str
    symbol: str
    side: str
    quantity: int
    status: str
    filled_quantity: int
    frozen_amount: Decimal
    frozen_quantity: int


@dataclass
class AccountState:
    account: str
    at: datetime | None  # None: everything recorded (the present)
    cash: Decimal = ZERO
    frozen: Decimal = ZERO
    positions: dict[str, PositionState] = field(default_factory=dict)
    open_orders: dict[int, OrderState] = field(default_factory=dict)

    @property
    def available(self) -> Decimal:
        return self.cash - self.frozen


def _until(query: Any, name: str, at: datetime | None) -> Any:
    return query.filter(**{f"{name}__lte": at}) if at is not None else query


def account_replay(*, account: Account, at: datetime | None = None) -> AccountState:
    """The account as the records say it was at ``at`` (everything recorded when None)."""
    state = AccountState(account.name, at)
    ledger = _until(CashLedgerEntry.objects.filter(account=account), "created_at", at)
    frozen_by_order: dict[int, Decimal] = defaultdict(lambda: ZERO)
    for kind, amount, order_id in ledger.order_by("id").values_list("kind", "amount", "order_id").iterator(chunk_size=5000):
        if kind in CASH_KINDS:
            state.cash += amount
        elif kind in FROZEN_KINDS:
            state.frozen += amount
            if order_id is not None:
                frozen_by_order[order_id] += amount

    # Positions: opening loads and fills, in the order they were written.
    instruments = {i.pk: i for i in Instrument.objects.filter(
        pk__in=Order.objects.filter(account=account).values("instrument_id").distinct())}
    steps: list[tuple[datetime, int, int, Any]] = []
    openings = _until(AuditEvent.objects.filter(account=account.name, action="position.opening_loaded"), "occurred_at", at)
    for event_id, occurred_at, after in openings.values_list("id", "occurred_at", "after"):
        steps.append((occurred_at, 0, event_id, after))
    fills = _until(Fill.objects.filter(order__account=account), "created_at", at)
    filled_by_order: dict[int, int] = defaultdict(int)
    for fill in fills.values("id", "created_at", "order_id", "order__side", "order__instrument_id", "quantity", "amount",
                             "fees", "trading_day").iterator(chunk_size=5000):
        steps.append((fill["created_at"], 1, fill["id"], fill))
        filled_by_order[fill["order_id"]] += fill["quantity"]
    steps.sort(key=lambda step: step[:3])
    rows: dict[str, Position] = {}
    for _at, kind, _id, data in steps:
        if kind == 0:
            symbol = data["symbol"]
            row = rows.setdefault(symbol, Position())
            row.quantity, row.cost_amount = int(data["quantity"]), Decimal(data["cost_amount"])
            row.unsettled_quantity = int(data.get("unsettled_quantity") or 0)
            row.unsettled_day = (date.fromisoformat(data["unsettled_day"]) if data.get("unsettled_day")
                                 else _at.astimezone(SHANGHAI).date())
        else:
            instrument = instruments[data["order__instrument_id"]]
            row = rows.setdefault(instrument.symbol, Position())
            position_fill_arithmetic(row, side=data["order__side"], quantity=data["quantity"], amount=data["amount"],
                                     fees=data["fees"], trading_day=data["trading_day"], t0=market_rules.is_t0(instrument))
    for symbol, row in rows.items():
        state.positions[symbol] = PositionState(symbol, row.quantity, 0, row.unsettled_quantity, row.unsettled_day,
                                                row.cost_amount, row.realized_pnl)

    # Orders: each one's last status change by then.
    status_of: dict[int, str] = {}
    changes = _until(AuditEvent.objects.filter(account=account.name, object_type="order", action="order.status_changed"),
                     "occurred_at", at)
    for object_id, after in changes.order_by("id").values_list("object_id", "after").iterator(chunk_size=5000):
        status_of[int(object_id)] = after["status"]
    orders = _until(Order.objects.filter(account=account), "created_at", at).exclude(
        pk__in=[pk for pk, status in status_of.items() if status in TERMINAL_STATUSES])
    for order in orders.select_related("instrument").order_by("id").iterator(chunk_size=2000):
        status = status_of.get(order.pk, OrderStatus.NEW)
        if status in TERMINAL_STATUSES:
            continue
        filled = filled_by_order.get(order.pk, 0)
        # A sell holds its remaining shares from admission (intake admits at creation; a replacement
        # waiting for its original's cancel has no admission and holds nothing).
        holds_shares = order.side == Side.SELL and (order.admitted_at is not None or status != OrderStatus.NEW)
        frozen_quantity = order.quantity - filled if holds_shares else 0
        state.open_orders[order.pk] = OrderState(order.pk, order.client_order_id, order.instrument.symbol, order.side,
                                                 order.quantity, status, filled, frozen_by_order.get(order.pk, ZERO),
                                                 frozen_quantity)
        if frozen_quantity:
            state.positions.setdefault(order.instrument.symbol, PositionState(order.instrument.symbol)).frozen_quantity += frozen_quantity
    return state


def account_stored(*, account: Account) -> AccountState:
    """The account as its tables hold it now: Account cash/frozen, Position rows, working orders."""
    state = AccountState(account.name, None, account.cash, account.frozen)
    for position in Position.objects.filter(account=account).select_related("instrument"):
        state.positions[position.instrument.symbol] = PositionState(
            position.instrument.symbol, position.quantity, position.frozen_quantity, position.unsettled_quantity,
            position.unsettled_day, position.cost_amount, position.realized_pnl)
    for order in (Order.objects.filter(account=account).exclude(status__in=TERMINAL_STATUSES)
                  .select_related("instrument").order_by("id")):
        state.open_orders[order.pk] = OrderState(order.pk, order.client_order_id, order.instrument.symbol, order.side,
                                                 order.quantity, order.status, order.filled_quantity, order.frozen_amount,
                                                 order.frozen_quantity)
    return state


@dataclass(frozen=True)
class Difference:
    what: str  # "cash", "position 600000.SH quantity", "order #12 status", ...
    stored: Any
    replayed: Any

    def __str__(self) -> str:
        return f"{self.what}: stored {self.stored!r}, replayed {self.replayed!r}"


def account_states_compare(stored: AccountState, replayed: AccountState) -> list[Difference]:
    """Every difference between two states of one account (empty when they agree)."""
    differences = [Difference(name, getattr(stored, name), getattr(replayed, name))
                   for name in ("cash", "frozen") if getattr(stored, name) != getattr(replayed, name)]
    for symbol in sorted(set(stored.positions) | set(replayed.positions)):
        mine = stored.positions.get(symbol, PositionState(symbol)).compared()
        theirs = replayed.positions.get(symbol, PositionState(symbol)).compared()
        differences += [Difference(f"position {symbol} {name}", mine[name], theirs[name])
                        for name in mine if mine[name] != theirs[name]]
    for order_id in sorted(set(stored.open_orders) | set(replayed.open_orders)):
        a, b = stored.open_orders.get(order_id), replayed.open_orders.get(order_id)
        if a is None or b is None:
            differences.append(Difference(f"order #{order_id} working", a is not None, b is not None))
            continue
        differences += [Difference(f"order #{order_id} {name}", getattr(a, name), getattr(b, name))
                        for name in ("status", "filled_quantity", "frozen_amount", "frozen_quantity")
                        if getattr(a, name) != getattr(b, name)]
    return differences


def account_replay_check(*, account_name: str) -> tuple[AccountState, list[Difference]]:
    """Replay the account to the present and compare with what its tables hold. Holds the account's
    row lock meanwhile (every writer of its money, positions and orders takes it first), so both
    sides see the same committed history. Returns the replayed state and the differences."""
    with transaction.atomic():
        account = Account.objects.select_for_update().get(name=account_name)
        replayed = account_replay(account=account)
        return replayed, account_states_compare(account_stored(account=account), replayed)
