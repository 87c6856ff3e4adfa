"""Trading reports for compliance (issue 12 item 5): the daily trading report and strategy
effectiveness over a date range. How each figure is defined: docs/compliance-reports.md.

Every figure is summed by the database (``values().annotate()``), grouped by account, strategy and
day, so a report costs what the groups number, not the orders and fills behind them. Money stays
Decimal.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from django.db.models import (
    Case,
    Count,
    DecimalField,
    Exists,
    ExpressionWrapper,
    F,
    OuterRef,
    Q,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce

from orders.models import Fill, Order, OrderStatus
from trading import market_rules
from trading.calendar import SHANGHAI, next_trading_day
from trading.market_rules import Side
from trading.models import Instrument, Quote
from trading.money import ROUND_HALF_EVEN, to_cent

ZERO = Decimal("0.00")
STATUSES = [status.value for status in OrderStatus]
_MONEY = DecimalField(max_digits=24, decimal_places=4)
_HAS_REFERENCE = Q(order__reference_price__isnull=False)
# Slippage of one fill, signed so that a cost is positive: a buy above, or a sell below, its reference.
_SLIPPAGE = ExpressionWrapper(
    Case(When(order__side=Side.BUY, then=F("price") - F("order__reference_price")),
         default=F("order__reference_price") - F("price")) * F("quantity"), output_field=_MONEY)
_REFERENCE_AMOUNT = ExpressionWrapper(F("order__reference_price") * F("quantity"), output_field=_MONEY)


def _sum(expression: Any, **options: Any) -> Coalesce:
    return Coalesce(Sum(expression, output_field=_MONEY, **options), Value(Decimal(0)), output_field=_MONEY)


def _fill_sums() -> dict[str, Any]:
    """The per-fill figures both reports sum, as annotations of a ``Fill`` query."""
    return {
        "fill_count": Count("id"), "filled": Coalesce(Sum("quantity"), 0), "turnover": _sum("amount"),
        "commission": _sum("commission"), "stamp_duty": _sum("stamp_duty"), "transfer_fee": _sum("transfer_fee"),
        "other_fees": _sum("other_fees"), "fee_total": _sum("fees"), "realized": _sum("realized_pnl"),
        "slippage": _sum(_SLIPPAGE, filter=_HAS_REFERENCE), "reference_amount": _sum(_REFERENCE_AMOUNT, filter=_HAS_REFERENCE),
    }


def _groups(query: Any) -> Iterator[dict[str, Any]]:
    """The rows of a ``values().annotate()`` query, in no order (the groups are sorted afterwards)."""
    yield from query.order_by()


def slippage_bps(slippage: Decimal, reference_amount: Decimal) -> Decimal | None:
    """Slippage in basis points of what the fills would have cost at their reference prices."""
    if not reference_amount:
        return None
    return (slippage / reference_amount * 10000).quantize(Decimal("0.01"), ROUND_HALF_EVEN)


def _cent(value: Decimal) -> Decimal:
    return to_cent(value, ROUND_HALF_EVEN)


def _exact(value: Decimal) -> Decimal:
    """A sum of prices (4 places) times whole quantities is exact at 4 places; SQLite sums computed
    values as floats, so its answer is brought back to them."""
    return value.quantize(Decimal("0.0001"), ROUND_HALF_EVEN)


# --------------------------------------------------------------------------- the daily report


@dataclass
class DailyFigures:
    """One row of the daily report: an account and strategy, or a sum of such rows."""

    account: str = ""
    strategy: str = ""
    orders: Counter[str] = field(default_factory=Counter)  # by status at the time of the report
    fills: int = 0
    filled_quantity: int = 0
    turnover: Decimal = ZERO
    commission: Decimal = ZERO
    stamp_duty: Decimal = ZERO
    transfer_fee: Decimal = ZERO
    other_fees: Decimal = ZERO  # exchange handling and regulatory fees when charged apart
    fees: Decimal = ZERO
    realized_pnl: Decimal = ZERO
    unrealized_pnl: Decimal = ZERO
    slippage: Decimal = ZERO
    reference_amount: Decimal = ZERO  # the fills with a reference price, valued at it

    @property
    def order_count(self) -> int:
        return sum(self.orders.values())

    @property
    def statuses(self) -> list[tuple[str, int]]:
        return [(status, self.orders[status]) for status in STATUSES if self.orders[status]]

    @property
    def slippage_bps(self) -> Decimal | None:
        return slippage_bps(self.slippage, self.reference_amount)

    def add(self, other: DailyFigures) -> None:
        self.orders.update(other.orders)
        for name in ("fills", "filled_quantity", "turnover", "commission", "stamp_duty", "transfer_fee", "other_fees",
                     "fees", "realized_pnl", "unrealized_pnl", "slippage", "reference_amount"):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def row(self, level: str) -> list[Any]:
        return [level, self.account, self.strategy, *(self.orders[status] for status in STATUSES), self.order_count,
                self.fills, self.filled_quantity, self.turnover, self.commission, self.stamp_duty, self.transfer_fee,
                self.other_fees, self.fees, self.realized_pnl, self.unrealized_pnl, _cent(self.slippage),
                self.slippage_bps if self.slippage_bps is not None else ""]


DAILY_HEADER = ["level", "account", "strategy", *(f"orders {status}" for status in STATUSES), "orders", "fills",
                "filled quantity", "turnover", "commission", "stamp duty", "transfer fee", "other fees", "fees",
                "realized pnl", "unrealized pnl", "slippage", "slippage bps"]


def _summed(rows: Iterable[DailyFigures], key: Any) -> list[DailyFigures]:
    groups: dict[Any, DailyFigures] = {}
    for row in rows:
        account, strategy = key(row)
        groups.setdefault((account, strategy), DailyFigures(account, strategy)).add(row)
    return [groups[k] for k in sorted(groups)]


@dataclass
class DailyReport:
    day: date
    account: str  # the one account asked for, or "" for all
    rows: list[DailyFigures]  # one per account and strategy
    marks: dict[str, Decimal]  # symbol -> the price the day's held buys are valued at

    @property
    def by_account(self) -> list[DailyFigures]:
        return _summed(self.rows, lambda row: (row.account, ""))

    @property
    def by_strategy(self) -> list[DailyFigures]:
        return _summed(self.rows, lambda row: ("", row.strategy))

    @property
    def total(self) -> DailyFigures:
        total = DailyFigures()
        for row in self.rows:
            total.add(row)
        return total

    def table(self) -> Iterator[list[Any]]:
        """The report as rows (the header first), for CSV or Excel."""
        yield list(DAILY_HEADER)
        for row in self.rows:
            yield row.row("account+strategy")
        for row in self.by_account:
            yield row.row("account")
        for row in self.by_strategy:
            yield row.row("strategy")
        yield self.total.row("total")


def day_marks(day: date, instrument_ids: Iterable[int]) -> dict[int, Decimal]:
    """The price each instrument closed ``day`` at, as the back office knows it: the last price of
    the quote of that day (the latest quote, kept per instrument), else the previous close of a
    quote of a later day when that day is the next trading day, else the day's last fill price."""
    wanted = set(instrument_ids)
    marks: dict[int, Decimal] = {}
    following = next_trading_day(day)
    for instrument_id, last, prev_close, quoted_day in Quote.objects.filter(instrument_id__in=wanted).values_list(
            "instrument_id", "last", "prev_close", "trading_day"):
        if quoted_day == day and last:
            marks[instrument_id] = last
        elif quoted_day == following and prev_close:
            marks[instrument_id] = prev_close
    missing = wanted - set(marks)
    if missing:
        last_fill = (Fill.objects.filter(trading_day=day, order__instrument_id=OuterRef("pk"))
                     .order_by("-filled_at", "-id").values("price")[:1])
        for instrument_id, price in (Instrument.objects.filter(pk__in=missing)
                                     .annotate(price=Subquery(last_fill)).values_list("pk", "price")):
            if price is not None:
                marks[instrument_id] = price
    return marks


def daily_trading(*, day: date, account: str = "") -> DailyReport:
    """The trading of ``day`` (a trading day), per account and strategy: the orders of that day by
    status, the fills of that day, their fees, realised and unrealised P&L and slippage."""
    orders = Order.objects.filter(trading_day=day)
    fills = Fill.objects.filter(trading_day=day)
    if account:
        orders = orders.filter(account__name=account)
        fills = fills.filter(order__account__name=account)
    rows: dict[tuple[str, str], DailyFigures] = {}

    def row_of(account_name: str, strategy: str) -> DailyFigures:
        return rows.setdefault((account_name, strategy), DailyFigures(account_name, strategy))

    for name, strategy, status, count in (orders.values_list("account__name", "strategy", "status")
                                          .annotate(n=Count("id")).order_by()):
        row_of(name, strategy).orders[status] += count
    for sums in _groups(fills.values("order__account__name", "order__strategy").annotate(**_fill_sums())):
        row = row_of(sums["order__account__name"], sums["order__strategy"])
        row.fills, row.filled_quantity = sums["fill_count"], sums["filled"]
        row.turnover, row.commission, row.stamp_duty = _cent(sums["turnover"]), _cent(sums["commission"]), _cent(sums["stamp_duty"])
        row.transfer_fee, row.other_fees, row.fees = _cent(sums["transfer_fee"]), _cent(sums["other_fees"]), _cent(sums["fee_total"])
        row.realized_pnl, row.slippage, row.reference_amount = _cent(sums["realized"]), _exact(sums["slippage"]), _exact(sums["reference_amount"])
    buys = Q(order__side=Side.BUY)
    held = list(_groups(fills.values("order__account__name", "order__strategy", "order__instrument_id").annotate(
        bought=Coalesce(Sum("quantity", filter=buys), 0), sold=Coalesce(Sum("quantity", filter=~buys), 0),
        cost=_sum(F("amount") + F("fees"), filter=buys)).filter(bought__gt=0)))
    instrument_ids = {sums["order__instrument_id"] for sums in held}
    instruments = Instrument.objects.in_bulk(instrument_ids)
    marks = day_marks(day, instrument_ids)
    for sums in held:
        instrument = instruments[sums["order__instrument_id"]]
        mark = marks.get(instrument.pk)
        if mark is None:
            continue
        # Shares bought today cannot be sold today (T+1): today's sells came out of older holdings.
        # For a T+0 instrument, today's sells are taken from today's buys first.
        kept = sums["bought"] - (min(sums["sold"], sums["bought"]) if market_rules.is_t0(instrument) else 0)
        cost = _exact(sums["cost"]) * kept / sums["bought"]
        row_of(sums["order__account__name"], sums["order__strategy"]).unrealized_pnl += _cent(mark * kept - cost)
    return DailyReport(day, account, [rows[key] for key in sorted(rows)],
                       {instruments[i].symbol: mark for i, mark in sorted(marks.items())})


# --------------------------------------------------------------------------- strategy effectiveness


@dataclass
class StrategyDay:
    """One strategy's figures on one trading day (or, with ``day`` None, over the whole range)."""

    strategy: str
    day: date | None
    orders: int = 0
    ordered_quantity: int = 0  # of the orders not refused before the market (REJECTED excluded)
    filled_quantity: int = 0
    turnover: Decimal = ZERO
    fees: Decimal = ZERO
    realized_pnl: Decimal = ZERO
    round_trips: int = 0  # sell orders that filled (each closes a round trip)
    wins: int = 0  # of which realised more than zero
    slippage: Decimal = ZERO
    reference_amount: Decimal = ZERO
    cumulative_pnl: Decimal = ZERO  # realised P&L from the range's first day to this one
    drawdown: Decimal = ZERO  # on a day: below the best cumulative P&L so far; over the range: the most it ever was

    @property
    def fill_rate(self) -> Decimal | None:
        if not self.ordered_quantity:
            return None
        return (Decimal(self.filled_quantity) / self.ordered_quantity).quantize(Decimal("0.0001"), ROUND_HALF_EVEN)

    @property
    def win_rate(self) -> Decimal | None:
        if not self.round_trips:
            return None
        return (Decimal(self.wins) / self.round_trips).quantize(Decimal("0.0001"), ROUND_HALF_EVEN)

    @property
    def slippage_bps(self) -> Decimal | None:
        return slippage_bps(self.slippage, self.reference_amount)

    def add(self, other: StrategyDay) -> None:
        for name in ("orders", "ordered_quantity", "filled_quantity", "turnover", "fees", "realized_pnl", "round_trips",
                     "wins", "slippage", "reference_amount"):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def row(self) -> list[Any]:
        return [self.strategy, self.day.isoformat() if self.day else "total", self.orders, self.ordered_quantity,
                self.filled_quantity, _blank(self.fill_rate), self.turnover, self.fees, self.realized_pnl,
                self.cumulative_pnl, self.round_trips, self.wins, _blank(self.win_rate), _cent(self.slippage),
                _blank(self.slippage_bps), self.drawdown]


def _blank(value: Decimal | None) -> Any:
    return "" if value is None else value


STRATEGY_HEADER = ["strategy", "day", "orders", "ordered quantity", "filled quantity", "fill rate", "turnover", "fees",
                   "realized pnl", "cumulative pnl", "round trips", "wins", "win rate", "slippage", "slippage bps",
                   "drawdown"]


def max_drawdown(daily_pnl: Iterable[Decimal]) -> tuple[list[Decimal], list[Decimal], Decimal]:
    """Cumulative P&L, the drawdown on each day (the best cumulative P&L so far, starting from 0, less
    today's) and the largest drawdown, for a series of daily P&L."""
    cumulative, drawdowns = [], []
    total = peak = ZERO
    for pnl in daily_pnl:
        total += pnl
        peak = max(peak, total)
        cumulative.append(total)
        drawdowns.append(peak - total)
    return cumulative, drawdowns, max(drawdowns, default=ZERO)


@dataclass
class StrategyReport:
    since: date
    until: date
    days: dict[str, list[StrategyDay]]  # strategy -> its days with any order or fill, in order
    totals: dict[str, StrategyDay]  # strategy -> the range's figures

    def table(self) -> Iterator[list[Any]]:
        yield list(STRATEGY_HEADER)
        for strategy in sorted(self.days):
            for day in self.days[strategy]:
                yield day.row()
            yield self.totals[strategy].row()

    def chart(self) -> dict[str, Any]:
        """Cumulative realised P&L per strategy on the days any strategy traded (uPlot's data: the
        days as Shanghai midnights in seconds and their names, one series a strategy, carried over days it did not trade)."""
        days = sorted({day.day for rows in self.days.values() for day in rows if day.day})
        series = []
        for strategy in sorted(self.days):
            by_day = {row.day: row.cumulative_pnl for row in self.days[strategy]}
            values, last = [], ZERO
            for day in days:
                last = by_day.get(day, last)
                values.append(float(last))
            series.append({"label": strategy or "-", "values": values})
        return {"x": [datetime.combine(day, time(), SHANGHAI).timestamp() for day in days],
                "names": [day.isoformat() for day in days], "series": series}


def strategy_effectiveness(*, since: date, until: date, account: str = "") -> StrategyReport:
    """Per strategy and trading day of ``since``..``until`` (inclusive): orders, fill rate, turnover,
    fees, realised P&L, closed round trips won, slippage; the cumulative P&L and its drawdown."""
    orders = Order.objects.filter(trading_day__gte=since, trading_day__lte=until)
    fills = Fill.objects.filter(trading_day__gte=since, trading_day__lte=until)
    if account:
        orders, fills = orders.filter(account__name=account), fills.filter(order__account__name=account)
    found: dict[tuple[str, date], StrategyDay] = {}

    def day_of(strategy: str, day: date) -> StrategyDay:
        return found.setdefault((strategy, day), StrategyDay(strategy, day))

    placed = ~Q(status=OrderStatus.REJECTED)
    for sums in _groups(orders.values("strategy", "trading_day").annotate(
            n=Count("id"), ordered=Coalesce(Sum("quantity", filter=placed), 0),
            filled=Coalesce(Sum("filled_quantity", filter=placed), 0))):
        row = day_of(sums["strategy"], sums["trading_day"])
        row.orders, row.ordered_quantity, row.filled_quantity = sums["n"], sums["ordered"], sums["filled"]
    for sums in _groups(fills.values("order__strategy", "trading_day").annotate(**_fill_sums())):
        row = day_of(sums["order__strategy"], sums["trading_day"])
        row.turnover, row.fees, row.realized_pnl = _cent(sums["turnover"]), _cent(sums["fee_total"]), _cent(sums["realized"])
        row.slippage, row.reference_amount = _exact(sums["slippage"]), _exact(sums["reference_amount"])
    # A round trip closes with a sell order that filled; it won if its fills realised more than zero.
    won = Exists(Fill.objects.filter(order=OuterRef("pk")).values("order").annotate(pnl=Sum("realized_pnl"))
                 .filter(pnl__gt=0))
    for sums in _groups(orders.filter(side=Side.SELL, filled_quantity__gt=0).values("strategy", "trading_day").annotate(
            trips=Count("id"), wins=Count("id", filter=Q(won)))):
        row = day_of(sums["strategy"], sums["trading_day"])
        row.round_trips, row.wins = sums["trips"], sums["wins"]
    days: dict[str, list[StrategyDay]] = {}
    for key in sorted(found):
        days.setdefault(key[0], []).append(found[key])
    totals = {}
    for strategy, rows in days.items():
        cumulative, drawdowns, worst = max_drawdown(row.realized_pnl for row in rows)
        total = StrategyDay(strategy, None)
        for row, running, drawdown in zip(rows, cumulative, drawdowns, strict=True):
            row.cumulative_pnl, row.drawdown = running, drawdown
            total.add(row)
        total.cumulative_pnl, total.drawdown = total.realized_pnl, worst
        totals[strategy] = total
    return StrategyReport(since, until, days, totals)
