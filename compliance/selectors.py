"""Reads of the audit log for compliance: search with filters, one order's timeline, one account's day.

Built for a log of millions of rows: every search is ordered by id (newest first) and paged by key
(``before`` = the last id of the previous page), so no page costs an OFFSET or a COUNT(*); each
filter is served by an index of audit/migrations/0004 (account, actor and action each lead one
with id; time is ``occurred_at``; an order or a symbol goes through ``(object_type, object_id)``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import BigIntegerField, Case, CharField, Exists, OuterRef, QuerySet, When
from django.db.models.functions import Cast
from django.utils.translation import gettext

from audit.models import AuditEvent
from orders.models import Fill, Order
from trading.calendar import SHANGHAI
from trading.errors import InvalidOrder
from trading.market_rules import MarketRuleViolation, normalize_symbol
from trading.models import CashLedgerEntry, Instrument
from trading.money import ROUND_HALF_EVEN, to_cent

PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
# The columns of a search's rows, in the order the pages and exports show them.
EXPORT_FIELDS = ("id", "occurred_at", "actor_type", "actor", "action", "object_type", "object_id", "account",
                 "before", "after", "reason")


@dataclass(frozen=True)
class AuditQuery:
    """What a compliance search asks for; every field optional. Times are aware; ``until`` is exclusive."""

    since: datetime | None = None
    until: datetime | None = None
    account: str = ""
    actor: str = ""
    action: str = ""  # exact, or a prefix ending in "." ("order." = every order event)
    symbol: str = ""  # "600000.SH": the events of that instrument's orders
    order_id: int | None = None
    before_id: int | None = None  # keyset: only events older (lower id) than this

    def as_params(self) -> dict[str, str]:
        """The query as URL parameters (the form's names), without the page key."""
        params = {"since": _local_text(self.since), "until": _local_text(self.until), "account": self.account,
                  "actor": self.actor, "action": self.action, "symbol": self.symbol,
                  "order": str(self.order_id) if self.order_id else ""}
        return {name: value for name, value in params.items() if value}


def _local_text(value: datetime | None) -> str:
    return value.astimezone(SHANGHAI).strftime("%Y-%m-%dT%H:%M") if value else ""


def parse_moment(text: str, *, name: str, end_of_day: bool = False) -> datetime | None:
    """``YYYY-MM-DD`` or ``YYYY-MM-DD[T ]HH:MM[:SS]`` in Shanghai time (or with an offset) as an aware
    datetime; a bare date means its start, or the next day's start with ``end_of_day``."""
    text = (text or "").strip()
    if not text:
        return None
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return datetime.combine(day + timedelta(days=1 if end_of_day else 0), time(), SHANGHAI)
        moment = datetime.fromisoformat(text.replace(" ", "T"))
    except ValueError:
        raise InvalidOrder.single(name, "datetime", gettext("%(field)s: expected YYYY-MM-DD HH:MM; got %(text)r")
                                  % {"field": name, "text": text}, location="query") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=SHANGHAI)


def audit_query_parse(params: Mapping[str, Any]) -> AuditQuery:
    """An :class:`AuditQuery` from request parameters (``since until account actor action symbol
    order before``). Raises InvalidOrder naming the bad parameter."""
    def text(name: str) -> str:
        return str(params.get(name) or "").strip()[:128]

    def number(name: str) -> int | None:
        value = text(name)
        if not value:
            return None
        if not value.isdigit() or int(value) > 2**63 - 1:
            raise InvalidOrder.single(name, "positive_integer", gettext("%(field)s: expected a whole number; got %(text)r") % {"field": name, "text": value},
                                      location="query")
        return int(value)

    symbol = text("symbol")
    if symbol:
        try:
            code, exchange = normalize_symbol(symbol)
        except MarketRuleViolation as exc:
            raise InvalidOrder.single("symbol", exc.rule, exc.message, location="query") from None
        symbol = f"{code}.{exchange}"
    return AuditQuery(since=parse_moment(text("since"), name="since"),
                      until=parse_moment(text("until"), name="until", end_of_day=True),
                      account=text("account"), actor=text("actor"), action=text("action"), symbol=symbol,
                      order_id=number("order"), before_id=number("before"))


def audit_search(query: AuditQuery) -> QuerySet[AuditEvent]:
    """The events matching ``query``, newest first (not sliced: take a page with :func:`audit_page`)."""
    events = AuditEvent.objects.all()
    if query.since:
        events = events.filter(occurred_at__gte=query.since)
    if query.until:
        events = events.filter(occurred_at__lt=query.until)
    if query.account:
        events = events.filter(account=query.account)
    if query.actor:
        events = events.filter(actor=query.actor)
    if query.action:
        events = (events.filter(action__startswith=query.action) if query.action.endswith(".")
                  else events.filter(action=query.action))
    if query.order_id:
        events = events.filter(object_type="order", object_id=str(query.order_id))
    if query.symbol:
        events = _of_symbol(events, query.symbol)
    if query.before_id:
        events = events.filter(id__lt=query.before_id)
    return events.order_by("-id")


# Below this many orders in a symbol its events are found through each order (the object index);
# above it, by walking the log newest first and keeping the events of its orders (a page needs only
# the first hundred, and a common symbol's events are everywhere). Either way well under a second
# on a log of a million events (bench/audit_scale.py).
SYMBOL_WALK_FROM = 1000


def _of_symbol(events: QuerySet[AuditEvent], symbol: str) -> QuerySet[AuditEvent]:
    code, _, exchange = symbol.partition(".")
    orders = Order.objects.filter(instrument__in=Instrument.objects.filter(code=code, exchange=exchange)).order_by()
    events = events.filter(object_type="order")
    if orders[:SYMBOL_WALK_FROM].count() < SYMBOL_WALK_FROM:
        return events.filter(object_id__in=orders.annotate(text_id=Cast("id", CharField())).values("text_id"))
    # object_id is text: the order's id from it (only for digits, so no row fails the cast), probed
    # in the orders' primary key for each event as the walk meets it.
    order_key = Case(When(object_id__regex=r"^[0-9]{1,18}$", then=Cast("object_id", BigIntegerField())), default=None)
    return events.annotate(order_key=order_key).filter(Exists(orders.filter(pk=OuterRef("order_key"))))


@dataclass
class AuditPage:
    events: list[AuditEvent]
    next_before: int | None  # the key of the next (older) page, None on the last page


def audit_page(query: AuditQuery, *, size: int = PAGE_SIZE) -> AuditPage:
    """One page of a search: at most ``size`` events and the key of the next page (one extra row read
    tells whether there is one; nothing is counted)."""
    size = max(1, min(size, MAX_PAGE_SIZE))
    events = list(audit_search(query)[: size + 1])
    more = len(events) > size
    events = events[:size]
    return AuditPage(events, events[-1].pk if more and events else None)


def audit_export_rows(query: AuditQuery, *, chunk_size: int = 2000) -> Iterator[tuple[Any, ...]]:
    """Every event of a search (the page key ignored), newest first, as tuples of EXPORT_FIELDS, read
    from a server-side cursor ``chunk_size`` rows at a time: memory does not grow with the result."""
    everything = AuditQuery(**{**query.__dict__, "before_id": None})
    return audit_search(everything).values_list(*EXPORT_FIELDS).iterator(chunk_size=chunk_size)


# --------------------------------------------------------------------------- an order's timeline


@dataclass
class TimelineEntry:
    at: datetime
    kind: str  # "event" (audit), "verdict" (risk control), "fill", "cash" (ledger)
    what: str
    actor: str = ""
    detail: dict[str, Any] = field(default_factory=dict)
    reason: str = ""
    ref: str = ""  # the source row: "audit #12", "fill #3", "ledger #40"


_KIND_RANK = {"event": 0, "verdict": 1, "fill": 2, "cash": 3}


def order_timeline(order_id: int) -> tuple[Order | None, list[TimelineEntry]]:
    """Everything recorded about one order, oldest first: its audit events (created, each status
    change, approvals and overrides, fills), its risk verdicts (recorded with the order when it was
    admitted, shown after its creation), its fills and its cash ledger rows (freezes, payments,
    fees, releases). Rows of one transaction keep the order they were written in."""
    order = Order.objects.select_related("account", "instrument").filter(pk=order_id).first()
    if order is None:
        return None, []
    entries: list[TimelineEntry] = []
    events = AuditEvent.objects.filter(object_type="order", object_id=str(order_id)).order_by("id")
    admitted_at = None
    for event in events:
        after = event.after or {}
        what = event.action
        if event.action == "order.status_changed":
            what = f"{(event.before or {}).get('status', '')} → {after.get('status', '')}"
        entries.append(TimelineEntry(event.occurred_at, "event", what, f"{event.actor_type}:{event.actor}",
                                     {"action": event.action, **after}, event.reason, f"audit #{event.pk}"))
        if event.action == "order.created" and admitted_at is None:
            admitted_at = event.occurred_at
    for verdict in order.risk_verdicts or []:
        entries.append(TimelineEntry(admitted_at or order.created_at, "verdict",
                                     f"{verdict.get('rule', '')}: {'pass' if verdict.get('passed') else verdict.get('action', 'fail')}",
                                     "system:risk", {k: v for k, v in verdict.items() if k != "message"},
                                     str(verdict.get("message", "")), "risk_verdicts"))
    for fill in Fill.objects.filter(order_id=order_id).order_by("id"):
        entries.append(TimelineEntry(fill.created_at, "fill", f"{fill.quantity} @ {fill.price}", "broker",
                                     {"broker_trade_id": fill.broker_trade_id, "quantity": fill.quantity,
                                      "price": str(fill.price), "amount": str(fill.amount), "fees": str(fill.fees),
                                      "filled_at": fill.filled_at.isoformat()}, "", f"fill #{fill.pk}"))
    for entry in CashLedgerEntry.objects.filter(order_id=order_id).order_by("id"):
        entries.append(TimelineEntry(entry.created_at, "cash", f"{entry.kind} {entry.amount}", "",
                                     {"kind": entry.kind, "amount": str(entry.amount), "cash_after": str(entry.cash_after),
                                      "frozen_after": str(entry.frozen_after)}, entry.memo, f"ledger #{entry.pk}"))
    # Stable: within one kind the rows keep their id order; a verdict follows the creation it belongs to.
    entries.sort(key=lambda e: (e.at, _KIND_RANK[e.kind]))
    return order, entries


# --------------------------------------------------------------------------- an account's day


@dataclass
class AccountDay:
    account: str
    day: date
    events: list[AuditEvent]
    truncated: bool  # more events than shown: export the day for all of them
    orders_created: int
    fills: int
    bought: Decimal
    sold: Decimal
    fees: Decimal
    cash_close: Decimal | None  # cash after the day's last ledger row (None: no row yet)
    frozen_close: Decimal | None


def day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(), SHANGHAI)
    return start, start + timedelta(days=1)


def account_day(account: str, day: date, *, limit: int = 2000) -> AccountDay:
    """One account's Shanghai calendar day: its audit events in order (the first ``limit``), its
    orders and fills of that trading day, and its cash after the day's last ledger row."""
    from django.db.models import Count, Q, Sum

    start, end = day_bounds(day)
    events = list(AuditEvent.objects.filter(account=account, occurred_at__gte=start, occurred_at__lt=end)
                  .order_by("id")[: limit + 1])
    fills = Fill.objects.filter(order__account__name=account, trading_day=day).aggregate(
        n=Count("id"), bought=Sum("amount", filter=Q(order__side="BUY")), sold=Sum("amount", filter=Q(order__side="SELL")),
        fees=Sum("fees"))
    last = (CashLedgerEntry.objects.filter(account__name=account, created_at__lt=end).order_by("-id")
            .values_list("cash_after", "frozen_after").first())
    def cents(value: Decimal | None) -> Decimal:
        return to_cent(Decimal(value or 0), ROUND_HALF_EVEN)  # SQLite's sums come without their places

    return AccountDay(account, day, events[:limit], len(events) > limit,
                      Order.objects.filter(account__name=account, trading_day=day).count(),
                      fills["n"] or 0, cents(fills["bought"]), cents(fills["sold"]), cents(fills["fees"]),
                      last[0] if last else None, last[1] if last else None)
