"""What the rules of one check share: the order's numbers, today's totals, holdings and quotes.

Everything is loaded lazily and at most once per check, so 25 rules cost two
round trips: today's counter rows (read by the controller together with its
configuration check: the account's totals, the symbol's, and the open buys of
every symbol bought today) and one UNION ALL for the holdings with their
quotes and, for an account in a control group, the group's holdings and open
buys of the instrument. The order's quote comes from the process quote cache.
The cost grows with the number of holdings and symbols, never with the number
of open orders.

Precondition of a real check: the caller holds the account row lock, so the
totals read here cannot change until the order is written. On an approval
re-check (``recheck``) the order itself is already saved and counted: its own
contribution is taken out of every total.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import cached_property
from typing import TYPE_CHECKING, Any

from django.db.models import Q

from orders.models import Order, OrderStatus
from risk.sql import CounterRow, SnapshotFor, SnapshotRow, counters_read, snapshot_read
from trading import market_rules
from trading.market_rules import OrderType, Side
from trading.models import Account, Quote
from trading.money import ROUND_HALF_EVEN, ZERO, to_cent

if TYPE_CHECKING:
    from risk.controller import RiskConfig

# Orders that hold cash or shares and may still trade (or are about to be sent).
OPEN_STATUSES = (
    OrderStatus.NEW,
    OrderStatus.PENDING_APPROVAL,
    OrderStatus.SUBMITTING,
    OrderStatus.SUBMITTED,
    OrderStatus.PARTIALLY_FILLED,
    OrderStatus.CANCEL_REQUESTED,
    OrderStatus.UNKNOWN,
)


@dataclass(frozen=True)
class CounterView:
    """Today's totals of the account (key "") or of one symbol, as the rules see them."""

    orders: int = 0
    amount: Decimal = ZERO
    cancels: int = 0
    rejected: int = 0
    last_order_at: datetime | None = None
    second_count: int = 0


@dataclass(frozen=True)
class Holding:
    instrument_id: int
    quantity: int
    frozen_quantity: int
    value: Decimal
    industry: str


@dataclass(frozen=True)
class OpenBuys:
    """Open buy orders of the account in one instrument: shares still to buy and cash they hold."""

    quantity: int
    amount: Decimal
    industry: str


def quote_for(instrument_id: int) -> Quote | None:
    from trading.selectors import quote_latest

    return quote_latest(instrument_id)


def mark_price(quote: Quote | None) -> Decimal | None:
    """The price a holding is valued at: last, else previous close."""
    if quote is None:
        return None
    return quote.last or quote.prev_close or None


def notional_price(order: Order, quote: Quote | None) -> Decimal | None:
    """The price an order's amount is counted at.

    LIMIT: its price. MARKET: the protection price when given, else the limit
    up for a buy (what the order path freezes) and the previous close for a
    sell. Both depend only on the order and the day's previous close, so the
    amount counted at entry can be given back exactly later.
    """
    if order.order_type != OrderType.MARKET:
        return order.price
    if order.protection_price:
        return order.protection_price
    prev_close = quote.prev_close if quote else None
    if not prev_close:
        return quote.last if quote and quote.last else None
    if order.side == Side.BUY:
        limits = market_rules.limit_prices(order.instrument, prev_close, order.trading_day)
        if limits is not None:
            return limits[1]
    return prev_close


def order_notional(order: Order, quote: Quote | None) -> Decimal:
    """Quantity x notional price, to the cent (0 when no price is known)."""
    price = notional_price(order, quote)
    if price is None:
        return ZERO
    return to_cent(price * order.quantity, ROUND_HALF_EVEN)


class RiskContext:
    """Lazily loaded facts shared by every rule of one check."""

    def __init__(self, order: Order, *, at: datetime, config: RiskConfig | None = None, recheck: bool = False,
                 dry_run: bool = False, counter_rows: list[CounterRow] | None = None,
                 snapshot_rows: list[SnapshotRow] | None = None) -> None:
        self.order = order
        self.account: Account = order.account
        self.instrument = order.instrument
        self.day = order.trading_day
        self.at = at
        self.config = config
        self.recheck = recheck
        self.dry_run = dry_run
        self.is_buy = order.side == Side.BUY
        # Today's counter rows, when the controller already read them with its configuration check.
        self._counter_rows = counter_rows
        self._snapshot_rows = snapshot_rows
        # A saved order that was counted at entry (held for review): leave it out of the totals.
        self.counted_self = bool(order.pk) and order.status == OrderStatus.PENDING_APPROVAL

    # ------------------------------------------------------------------ the order

    @cached_property
    def quote(self) -> Quote | None:
        return quote_for(self.instrument.pk)

    @cached_property
    def mark(self) -> Decimal | None:
        """Current price of the instrument: last, else previous close, else the order's own price."""
        return mark_price(self.quote) or notional_price(self.order, self.quote)

    @cached_property
    def amount(self) -> Decimal:
        """The order's amount (quantity x notional price)."""
        return order_notional(self.order, self.quote)

    @cached_property
    def buy_freeze(self) -> Decimal:
        """Cash the order path freezes for this buy (amount + estimated fees); 0 for a sell."""
        if not self.is_buy:
            return ZERO
        price = notional_price(self.order, self.quote)
        if price is None:
            return ZERO
        return market_rules.estimate_buy_freeze(self.account.fees, self.instrument, price, self.order.quantity, self.day)

    # ------------------------------------------------------------------ today's totals

    @cached_property
    def _counters(self) -> tuple[CounterView, CounterView]:
        symbol = self.instrument.symbol
        rows = self._rows
        second = int(self.at.timestamp())
        views = {"": CounterView(), symbol: CounterView()}
        for key, orders, amount, cancels, rejected, last_order_at, row_second, second_count, *_ in rows:
            if key in views:
                views[key] = CounterView(orders, amount, cancels, rejected, last_order_at,
                                         second_count if row_second == second else 0)
        if self.counted_self:
            own = self.amount
            views = {k: CounterView(max(v.orders - 1, 0), max(v.amount - own, ZERO), v.cancels, v.rejected, v.last_order_at, v.second_count)
                     for k, v in views.items()}
        return views[""], views[symbol]

    @cached_property
    def _rows(self) -> list[CounterRow]:
        if self._counter_rows is not None:
            return self._counter_rows
        return counters_read(self.account.pk, self.day, self.instrument.symbol)

    @property
    def account_counter(self) -> CounterView:
        return self._counters[0]

    @property
    def symbol_counter(self) -> CounterView:
        return self._counters[1]

    # ------------------------------------------------------------------ holdings, open buys, control group

    @cached_property
    def own_frozen(self) -> Decimal:
        """Cash this (saved, re-checked) order itself holds; 0 for a new order."""
        return self.order.frozen_amount if self.order.pk else ZERO

    @cached_property
    def open_buy_amount(self) -> Decimal:
        """Cash held by the account's other open buys (the account's frozen cash is exactly that)."""
        return max(self.account.frozen - self.own_frozen, ZERO)

    @cached_property
    def available_before(self) -> Decimal:
        return self.account.available + self.own_frozen

    @cached_property
    def _snapshot(self) -> _Snapshot:
        return load_snapshot(self)

    @property
    def holdings(self) -> dict[int, Holding]:
        """Positions with shares, valued at last (else previous close, else cost)."""
        return self._snapshot.holdings

    @cached_property
    def open_buys(self) -> dict[int, OpenBuys]:
        """The account's other open buy orders of the day by instrument (from the symbols' counter rows)."""
        result: dict[int, OpenBuys] = {}
        for row in self._rows:
            key, instrument_id, quantity, amount, industry = row[0], row[8], row[9], row[10], row[11]
            if key and instrument_id and quantity > 0:
                result[instrument_id] = OpenBuys(quantity, amount, industry or "")
        if self.counted_self and self.is_buy and self.instrument.pk in result:
            own = result[self.instrument.pk]
            remaining = self.order.quantity - self.order.filled_quantity
            result[self.instrument.pk] = OpenBuys(max(own.quantity - remaining, 0), max(own.amount - self.own_frozen, ZERO),
                                                  own.industry)
        return result

    @cached_property
    def market_value(self) -> Decimal:
        return sum((h.value for h in self.holdings.values()), ZERO)

    @cached_property
    def total_assets(self) -> Decimal:
        """Cash (frozen included) plus the market value of holdings."""
        return self.account.cash + self.market_value

    def holding(self, instrument_id: int | None = None) -> Holding | None:
        return self.holdings.get(instrument_id or self.instrument.pk)

    @cached_property
    def symbol_shares_after(self) -> int:
        """Shares of the instrument held + still to buy by open orders + this buy."""
        held = self.holding()
        pending = self.open_buys.get(self.instrument.pk)
        return (held.quantity if held else 0) + (pending.quantity if pending else 0) + (self.order.quantity if self.is_buy else 0)

    @cached_property
    def symbol_value_after(self) -> Decimal:
        """Value of the instrument held (at market) + cash of its open buys + this buy's amount."""
        held = self.holding()
        pending = self.open_buys.get(self.instrument.pk)
        return (held.value if held else ZERO) + (pending.amount if pending else ZERO) + (self.amount if self.is_buy else ZERO)

    @cached_property
    def gross_exposure_after(self) -> Decimal:
        """Market value of holdings + cash held by open buys + this buy's amount."""
        return self.market_value + self.open_buy_amount + (self.amount if self.is_buy else ZERO)

    def industry_value_after(self, industry: str) -> Decimal:
        held = sum((h.value for h in self.holdings.values() if h.industry == industry), ZERO)
        pending = sum((b.amount for b in self.open_buys.values() if b.industry == industry), ZERO)
        return held + pending + (self.amount if self.is_buy else ZERO)

    @property
    def group_other_shares(self) -> int:
        """Shares of the instrument held or being bought by the other accounts of the control group."""
        snapshot = self._snapshot
        return sum(snapshot.group_held.values()) + sum(snapshot.group_buying.values())

    def crossing_orders(self, *, include_group: bool) -> list[dict[str, Any]]:
        """Resting opposite-side orders of this account (and its control group) that this order could trade with.

        A buy at P crosses a sell at or below P; a sell at P a buy at or above P;
        a market order, or a resting market order, crosses anything. Cheap gates
        first (no query unless one passes): an account has open sells in an
        instrument only if shares of it are frozen, open buys only if it has some.
        """
        opposite = Side.SELL if self.is_buy else Side.BUY
        snapshot = self._snapshot
        accounts: list[int] = []
        if self.is_buy:
            held = self.holding()
            if held and held.frozen_quantity > 0:
                accounts.append(self.account.pk)
            if include_group:
                accounts += [pk for pk, frozen in snapshot.group_frozen.items() if frozen > 0]
        else:
            if self.instrument.pk in self.open_buys:
                accounts.append(self.account.pk)
            if include_group:
                accounts += [pk for pk, buying in snapshot.group_buying.items() if buying > 0]
        if not accounts:
            return []
        query = Order.objects.filter(account_id__in=accounts, instrument_id=self.instrument.pk, side=opposite,
                                     status__in=OPEN_STATUSES).exclude(pk=self.order.pk)
        if self.order.order_type != OrderType.MARKET and self.order.price is not None:
            price_cross = Q(price__lte=self.order.price) if self.is_buy else Q(price__gte=self.order.price)
            query = query.filter(Q(order_type=OrderType.MARKET) | price_cross)
        return [dict(row) for row in query.values("pk", "account__name", "price", "order_type", "side")[:5]]


# --------------------------------------------------------------------------- the two reads


def to_decimal(value: Any) -> Decimal:
    """A money value from a raw row (PostgreSQL: Decimal; SQLite: int, float or str), to the cent."""
    if value is None:
        return ZERO
    if isinstance(value, Decimal):
        return value
    return to_cent(Decimal(str(value)), ROUND_HALF_EVEN)


@dataclass
class _Snapshot:
    holdings: dict[int, Holding]
    group_held: dict[int, int]  # other group accounts: shares of the order's instrument held
    group_frozen: dict[int, int]  # ... of which frozen by open sells
    group_buying: dict[int, int]  # ... still to buy by their open buys of the day


def snapshot_for_order(order: Order) -> SnapshotFor:
    """Whose holdings a check of ``order`` reads."""
    account = order.account
    return SnapshotFor(account_id=account.pk, instrument_id=order.instrument.pk, day=order.trading_day,
                       symbol=order.instrument.symbol, group=account.control_group or "")


def load_snapshot(context: RiskContext) -> _Snapshot:
    """The account's positions with quotes and, with a control group, the other accounts' holdings
    and open buys of the order's instrument (``risk.sql.snapshot_read``, or already read with the
    configuration check)."""
    rows = context._snapshot_rows
    if rows is None:
        rows = snapshot_read(snapshot_for_order(context.order))
    holdings: dict[int, Holding] = {}
    group_held: dict[int, int] = {}
    group_frozen: dict[int, int] = {}
    group_buying: dict[int, int] = {}
    for row in rows:
        quantity = int(row.quantity or 0)
        if row.kind == "P":
            price = to_decimal(row.last) if row.last else (to_decimal(row.prev_close) if row.prev_close else None)
            value = to_cent(price * quantity, ROUND_HALF_EVEN) if price else to_decimal(row.amount)
            holdings[row.instrument_id] = Holding(row.instrument_id, quantity, int(row.frozen or 0), value, row.industry or "")
        elif row.kind == "G":
            group_held[row.account_id] = quantity
            group_frozen[row.account_id] = int(row.frozen or 0)
        elif row.kind == "H":
            group_buying[row.account_id] = quantity
    return _Snapshot(holdings, group_held, group_frozen, group_buying)
