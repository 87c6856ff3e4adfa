"""Abnormal-trading figures of accounts' trading days: one computation behind the live monitors
(monitoring/monitors.py, issue 11) and the compliance report (compliance/report_compliance.py,
issue 12). Definitions: docs/compliance-reports.md, "Compliance report".

Everything is counted in the database, grouped by (account, trading day), so a day of 200,000
orders costs a few grouped scans, not 200,000 rows in Python:

* orders: orders admitted by risk control (``admitted_at`` set), less those that ended REJECTED
  without ever being sent (refused by risk control, or by an operator in review): what risk
  control's counters count as orders (risk.services.risk_order_recorded).
* cancels: orders whose cancel the account asked for (``cancel_requested_at``, stamped by
  ``order_cancel``, where risk control counts the cancel: risk.services.risk_cancel_recorded).
* per second: orders (at ``admitted_at``) plus cancels (at ``cancel_requested_at``) in each
  wall-clock second, the fixed window of the ``max_orders_per_second`` rule; the peak second.
* instant cancels: a cancel asked within one second of the order's admission.
* self-trade attempts / restricted-list hits: orders with a failing verdict of the ``self_trade``
  / ``restricted_list`` rule (their RiskEvent rows, one per failing verdict of Order.risk_verdicts),
  by the rule's action (REJECT refused, REVIEW held, WARN let through).
* closing window: orders admitted in the closing call auction (14:57-15:00, trading/calendar.py).
* stakes: holdings (Position) of an account, or summed over a control group, at or above a share
  of the issuer's total shares (Instrument.total_shares, as max_issuer_share_ratio reads it).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.db import connection
from django.db.models import Count, DecimalField, DurationField, ExpressionWrapper, F, Q, QuerySet, Sum
from django.db.models.functions import TruncSecond
from django.utils import timezone

from orders.models import Order, OrderStatus
from risk.models import RiskEvent
from risk.rules.base import ratio_of
from trading import market_rules
from trading.calendar import SHANGHAI, Phase, phase_window
from trading.market_rules import format_symbol
from trading.models import Account, Position

SELF_TRADE = "self_trade"
RESTRICTED = "restricted_list"
INSTANT_CANCEL = timedelta(seconds=1)

# The orders that count: admitted, and not ended REJECTED before any submission.
COUNTED = Q(admitted_at__isnull=False) & ~Q(status=OrderStatus.REJECTED, submitted_at__isnull=True)


@dataclass
class AccountDay:
    """One account's abnormal-trading figures on one trading day."""

    account: str
    day: date
    registered_hf: bool = False  # registered with the exchange as high-frequency
    orders: int = 0
    cancels: int = 0
    instant_cancels: int = 0
    filled_orders: int = 0  # orders with any fill
    closing_orders: int = 0
    peak_second_count: int = 0  # orders plus cancels in the busiest second
    peak_second_at: datetime | None = None  # that second's start
    self_trade: Counter[str] = field(default_factory=Counter)  # distinct orders by the rule's action
    restricted: Counter[str] = field(default_factory=Counter)

    @property
    def order_actions(self) -> int:
        """Orders plus cancels: what the exchanges' high-frequency line counts."""
        return self.orders + self.cancels

    @property
    def line_per_second(self) -> int:
        return market_rules.hf_orders_per_second(self.day)

    @property
    def line_per_day(self) -> int:
        return market_rules.hf_orders_per_day(self.day)

    @property
    def second_share(self) -> Decimal:
        return ratio_of(Decimal(self.peak_second_count), Decimal(self.line_per_second))

    @property
    def day_share(self) -> Decimal:
        return ratio_of(Decimal(self.order_actions), Decimal(self.line_per_day))

    @property
    def cancel_ratio(self) -> Decimal:
        """Cancels over orders, as the ``max_cancel_ratio`` rule computes it."""
        return ratio_of(Decimal(self.cancels), Decimal(self.orders))

    @property
    def fill_rate(self) -> Decimal:
        return ratio_of(Decimal(self.filled_orders), Decimal(self.orders))

    @property
    def self_trade_attempts(self) -> int:
        return sum(self.self_trade.values())

    @property
    def restricted_hits(self) -> int:
        return sum(self.restricted.values())


@dataclass(frozen=True)
class Stake:
    """Shares of one issuer held by an account, or by the accounts of a control group together."""

    holder: str  # the account's name, or the control group's
    is_group: bool
    symbol: str
    quantity: int
    total_shares: int

    @property
    def ratio(self) -> Decimal:
        return ratio_of(Decimal(self.quantity), Decimal(self.total_shares))


def account_days(*, since: date, until: date, account: str | None = None) -> list[AccountDay]:
    """The figures of every account with an order, a cancel or a verdict counted on the trading days
    ``since``..``until`` (inclusive), ordered by day then account; only ``account`` when given."""
    orders = Order.objects.filter(trading_day__gte=since, trading_day__lte=until)
    events = RiskEvent.objects.filter(trading_day__gte=since, trading_day__lte=until, rule__in=[SELF_TRADE, RESTRICTED])
    if account:
        orders = orders.filter(account__name=account)
        events = events.filter(account__name=account)
    figures: dict[tuple[int, date], AccountDay] = {}

    def row(account_id: int, day: date) -> AccountDay:
        found = figures.get((account_id, day))
        if found is None:
            found = figures[account_id, day] = AccountDay("", day)
        return found

    start, end = phase_window(since, Phase.CLOSING_CALL)
    with timezone.override(SHANGHAI):  # the closing call's wall-clock times, on every day of the range
        closing = Q(COUNTED, admitted_at__time__gte=start.time(), admitted_at__time__lt=end.time())
        totals = (orders.alias(lag=ExpressionWrapper(F("cancel_requested_at") - F("admitted_at"), output_field=DurationField()))
                  .values_list("account_id", "trading_day")
                  .annotate(n=Count("pk", filter=COUNTED), cancels=Count("pk", filter=Q(cancel_requested_at__isnull=False)),
                            instant=Count("pk", filter=Q(cancel_requested_at__isnull=False, lag__lte=INSTANT_CANCEL)),
                            filled=Count("pk", filter=Q(COUNTED, filled_quantity__gt=0)),
                            closing=Count("pk", filter=closing)))
        for account_id, day, n, cancels, instant, filled, in_closing in totals:
            figures[account_id, day] = AccountDay("", day, orders=n, cancels=cancels, instant_cancels=instant,
                                                  filled_orders=filled, closing_orders=in_closing)
    for (account_id, day), (count, second) in _peak_seconds(orders).items():
        target = row(account_id, day)
        target.peak_second_count, target.peak_second_at = count, second
    for account_id, day, rule, action, n in (events.values_list("account_id", "trading_day", "rule", "action")
                                             .annotate(n=Count("order_id", distinct=True))):
        if account_id is not None:
            (row(account_id, day).self_trade if rule == SELF_TRADE else row(account_id, day).restricted)[action] += n
    accounts = {pk: (name, hf) for pk, name, hf in Account.objects.filter(pk__in={pk for pk, _ in figures})
                .values_list("pk", "name", "is_high_frequency")}
    for (account_id, _), target in figures.items():
        target.account, target.registered_hf = accounts[account_id]
    return sorted(figures.values(), key=lambda f: (f.day, f.account))


# The busiest second of each (account, day): {first} and {second} select (account_id, trading_day,
# at_second), one row per order admitted / cancel asked; counted per second once, then ranked.
_PEAK_SECONDS_SQL = """
    SELECT account_id, trading_day, at_second, total FROM (
        SELECT account_id, trading_day, at_second, total,
               ROW_NUMBER() OVER (PARTITION BY account_id, trading_day ORDER BY total DESC, at_second) AS place
        FROM (SELECT account_id, trading_day, at_second, COUNT(*) AS total
              FROM ({first} UNION ALL {second}) AS events
              GROUP BY account_id, trading_day, at_second) AS per_second) AS ranked
    WHERE place = 1"""


def _peak_seconds(orders: QuerySet[Order]) -> dict[tuple[int, date], tuple[int, datetime]]:
    """The busiest second (orders plus cancels) of each (account, day) and its count, in one
    statement: each order's admission second and each cancel's request second (two ORM queries),
    counted per second and ranked per (account, day) in SQL, so only one row per account and day
    comes back however many seconds were busy. Ties: the earliest second."""
    admitted = (orders.filter(COUNTED).annotate(at_second=TruncSecond("admitted_at", tzinfo=SHANGHAI))
                .values_list("account_id", "trading_day", "at_second").order_by())
    cancelled = (orders.filter(cancel_requested_at__isnull=False)
                 .annotate(at_second=TruncSecond("cancel_requested_at", tzinfo=SHANGHAI))
                 .values_list("account_id", "trading_day", "at_second").order_by())
    first_sql, first_params = admitted.query.sql_with_params()
    second_sql, second_params = cancelled.query.sql_with_params()
    # Both select columns named account_id, trading_day and at_second, on both databases; window
    # functions are in PostgreSQL and in SQLite since 3.25.
    sql = _PEAK_SECONDS_SQL.format(first=first_sql, second=second_sql)  # noqa: S608 - the ORM's compiled queries; values bound
    with connection.cursor() as cursor:
        cursor.execute(sql, [*first_params, *second_params])
        rows = cursor.fetchall()
    return {(account_id, _as_date(day)): (int(total), _as_shanghai(second)) for account_id, day, second, total in rows}


def _as_date(value: date | str) -> date:
    return value if isinstance(value, date) else date.fromisoformat(value)


def _as_shanghai(value: datetime | str) -> datetime:
    """A truncated second as the database hands it back outside the ORM (PostgreSQL: a naive
    Shanghai time; SQLite: its text), as an aware Shanghai time."""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return moment.replace(tzinfo=SHANGHAI) if moment.tzinfo is None else moment.astimezone(SHANGHAI)


def stakes_at_least(*, share: Decimal, account: str | None = None) -> list[Stake]:
    """Holdings now at or above ``share`` of the issuer's total shares: each account outside a
    control group on its own, the accounts of a control group summed (as max_issuer_share_ratio
    counts them). Issuers with unknown total shares are left out. Largest ratio first."""
    line = ExpressionWrapper(F("instrument__total_shares") * share, output_field=DecimalField(max_digits=30, decimal_places=6))
    held = Position.objects.filter(quantity__gt=0, instrument__total_shares__gt=0)
    singles = held.filter(account__control_group="")
    grouped = held.exclude(account__control_group="")
    if account:
        singles = singles.filter(account__name=account)
        group = Account.objects.filter(name=account).values_list("control_group", flat=True).first() or ""
        grouped = grouped.filter(account__control_group=group) if group else grouped.none()
    stakes = [Stake(name, False, format_symbol(code, exchange), quantity, total)
              for name, code, exchange, quantity, total in singles.filter(quantity__gte=line).values_list(
                  "account__name", "instrument__code", "instrument__exchange", "quantity", "instrument__total_shares")]
    sums = (grouped.values_list("account__control_group", "instrument__code", "instrument__exchange", "instrument__total_shares")
            .annotate(held=Sum("quantity")).order_by())
    stakes += [Stake(group_name, True, format_symbol(code, exchange), quantity, total)
               for group_name, code, exchange, total, quantity in sums if quantity >= total * share]
    return sorted(stakes, key=lambda s: (-s.ratio, s.holder, s.symbol))
