"""Facts the post-trade protections read after a fill or a broker rejection.

Daily P&L is realized + unrealized since the start of the day, i.e. the
change in the account's assets net of deposits and withdrawals:

    start-of-day assets = cash at the start of the day + shares held at the
                          start of the day x previous close
    assets now          = cash + shares x last price
    P&L today           = assets now - start-of-day assets - net deposits today
    drawdown            = highest assets seen today (start of day, then at each
                          evaluation; net of deposits) - assets now

Start-of-day figures are derived from today's ledger rows and fills (so they
are right whenever they are first computed) and kept in the account's
RiskCounter row with the day's peak of assets. Caller holds the account lock.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from decimal import Decimal
from functools import cached_property
from typing import TYPE_CHECKING

from django.db.models import Case, DecimalField, Sum, When

from orders.models import Fill, Order, OrderStatus
from risk.context import mark_price
from trading.calendar import SHANGHAI
from trading.market_rules import Side
from trading.models import CASH_KINDS, Account, CashEntryKind, CashLedgerEntry, Position
from trading.money import ROUND_HALF_EVEN, ZERO, to_cent

if TYPE_CHECKING:
    from risk.models import RiskCounter


class PostTradeState:
    """Lazily computed figures of one account on one trading day."""

    def __init__(self, account: Account, day: date, *, at: datetime) -> None:
        self.account = account
        self.day = day
        self.at = at

    @cached_property
    def day_start(self) -> datetime:
        return datetime.combine(self.day, time(0), tzinfo=SHANGHAI)

    @cached_property
    def _positions(self) -> list[Position]:
        return list(Position.objects.filter(account_id=self.account.pk).select_related("instrument__quote").order_by())

    @cached_property
    def assets(self) -> Decimal:
        """Cash plus shares at the last price (previous close, else cost, when no last)."""
        value = ZERO
        for position in self._positions:
            if not position.quantity:
                continue
            price = mark_price(getattr(position.instrument, "quote", None))
            value += to_cent(price * position.quantity, ROUND_HALF_EVEN) if price else position.cost_amount
        return self.account.cash + value

    @cached_property
    def _ledger_today(self) -> tuple[Decimal, Decimal]:
        sums = CashLedgerEntry.objects.filter(account_id=self.account.pk, created_at__gte=self.day_start,
                                              created_at__lt=self.day_start + timedelta(days=1)).aggregate(
            cash=Sum(Case(When(kind__in=CASH_KINDS, then="amount"), default=ZERO, output_field=DecimalField())),
            flows=Sum(Case(When(kind__in=(CashEntryKind.DEPOSIT, CashEntryKind.WITHDRAW), then="amount"), default=ZERO,
                           output_field=DecimalField())),
        )
        return sums["cash"] or ZERO, sums["flows"] or ZERO

    @property
    def net_deposits(self) -> Decimal:
        """Deposits minus withdrawals today: moves assets without being P&L."""
        return self._ledger_today[1]

    def computed_start_assets(self) -> Decimal:
        """Assets at the start of the day, valued at the previous close."""
        cash_start = self.account.cash - self._ledger_today[0]
        net_bought: dict[int, int] = {}
        fills = (
            Fill.objects.filter(order__account_id=self.account.pk, trading_day=self.day)
            .values("order__instrument_id", "order__side")
            .annotate(q=Sum("quantity"))
            .order_by()
        )
        for row in fills:
            sign = 1 if row["order__side"] == Side.BUY else -1
            net_bought[row["order__instrument_id"]] = net_bought.get(row["order__instrument_id"], 0) + sign * int(row["q"])
        value = ZERO
        for position in self._positions:
            quantity = position.quantity - net_bought.get(position.instrument_id, 0)
            if quantity <= 0:
                continue
            quote = getattr(position.instrument, "quote", None)
            price = (quote.prev_close or quote.last) if quote else None
            if price:
                value += to_cent(price * quantity, ROUND_HALF_EVEN)
            elif position.quantity:
                value += to_cent(position.cost_amount * quantity / position.quantity, ROUND_HALF_EVEN)
        return cash_start + value

    @cached_property
    def counter(self) -> RiskCounter:
        from risk.models import RiskCounter

        row, _ = RiskCounter.objects.get_or_create(account_id=self.account.pk, trading_day=self.day, key="")
        return row

    @cached_property
    def start_assets(self) -> Decimal:
        row = self.counter
        if row.start_assets is None:
            row.start_assets = self.computed_start_assets()
            row.peak_assets = max(row.peak_assets or row.start_assets, row.start_assets)
            row.save(update_fields=["start_assets", "peak_assets", "updated_at"])
        return row.start_assets

    @cached_property
    def capital_base(self) -> Decimal:
        """What the day's P&L is measured against: start-of-day assets plus today's net deposits."""
        return self.start_assets + self.net_deposits

    @cached_property
    def pnl(self) -> Decimal:
        """Realized + unrealized P&L today (negative = loss)."""
        return self.assets - self.capital_base

    @cached_property
    def peak_assets(self) -> Decimal:
        """The day's highest assets seen at an evaluation (start of day included), in today's capital:
        the row keeps it net of deposits (start-of-day terms), so a deposit is neither a peak nor a loss."""
        start = self.start_assets
        row = self.counter
        current = self.assets - self.net_deposits
        peak = max(row.peak_assets if row.peak_assets is not None else start, start, current)
        if peak != row.peak_assets:
            row.peak_assets = peak
            row.save(update_fields=["peak_assets", "updated_at"])
        return peak + self.net_deposits

    @cached_property
    def drawdown(self) -> Decimal:
        return max(self.peak_assets - self.assets, ZERO)

    def consecutive_rejections(self, limit: int) -> int:
        """How many of the account's latest orders answered by the broker today were refused by it, in a row."""
        answered = (
            Order.objects.filter(account_id=self.account.pk, trading_day=self.day, submitted_at__isnull=False)
            .exclude(status__in=[OrderStatus.SUBMITTING, OrderStatus.UNKNOWN])
            .order_by("-submitted_at", "-pk")
            .values_list("status", flat=True)[:limit]
        )
        count = 0
        for status in answered:
            if status != OrderStatus.REJECTED:
                break
            count += 1
        return count
