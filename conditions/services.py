"""Every write of conditional orders: create, modify, cancel, and the evaluation that fires them.

**Lock order** (the order path's, docs/architecture.md "Locks", extended): the account row first
(``account_lock``), then the account's conditional orders (one at a time, by id), then what order
intake locks under the same account lock (the child order, the position). Every transaction here
that changes a parent takes them in that order, so firing, cancelling, modifying, arming from an
entry's fill and expiring never wait on each other in a cycle, nor on the order path.

**Exactly once.** A parent fires inside one transaction that holds its account's lock and its own
row lock, re-reads its state and version under them, asks its kind again, submits the child through
order intake (``orders.services.order_submit``: market rules, risk control, freezes, audit, all
unchanged) and records the transition. A second evaluator of the same parent waits for the row,
then finds it no longer ACTIVE (or at a new version) and does nothing; a crash before commit leaves
neither the child nor the transition. Children's ``client_order_id`` are derived from the parent's
id and version, so even a replay of the same decision could not insert a second child.

Why one module of about 700 lines: create, modify, cancel and firing share the lock order and the
re-check under the locks written above; the kinds' own logic lives in conditions/kinds/.
"""

from __future__ import annotations

import logging
import time as monotonic_time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Max, Min, Q

from audit.services import Actor, audit_record
from conditions.kinds import kind_classes, kind_for
from conditions.kinds.base import CreateContext, Decision, Kind, QuoteView, Release
from conditions.models import ChildPriceType, ConditionalOrder, ParentEvent, ParentState
from conditions.pricing import child_price, child_quantity
from conditions.signals import conditions_evaluated
from conditions.state_machine import ParentEventKind, parent_apply_event, parent_event_data
from orders.models import TERMINAL_STATUSES, Order, OrderSource, OrderStatus
from orders.services import OrderInput, order_submit
from orders.services.inputs import instrument_lookup
from orders.services.locks import account_id_by_name
from trading import calendar, market_rules
from trading.clock import now
from trading.errors import Conflict, FieldProblem, InputRule, InvalidOrder, NotFound, TradingError
from trading.events import EventKind, publish
from trading.i18n import bilingual
from trading.market_rules import OrderType, Side
from trading.models import Account, Instrument, Position, SessionMode
from trading.money import MAX_PRICE, MAX_QUANTITY
from trading.selectors import account_trading_day, quote_latest
from trading.services import account_lock

log = logging.getLogger(__name__)

MAX_OFFSET_TICKS = 100
A = ParentState


@dataclass
class ParentInput:
    """A conditional order as a strategy or an operator sends it, before validation."""

    account: str
    symbol: str
    kind: str
    side: str
    quantity: Any
    params: Any
    price_type: str = ChildPriceType.LIMIT
    limit_price: Any = None
    offset_ticks: Any = 0
    protection_price: Any = None
    client_order_id: str | None = None
    strategy: str = ""
    expires_at: datetime | None = None
    entry_order_id: int | None = None


@dataclass
class CreateResult:
    parent: ConditionalOrder
    created: bool


@dataclass
class _Checked:
    account: Account
    instrument: Instrument
    kind: Kind[Any]
    params: Any
    memory: dict[str, Any]
    side: str
    quantity: int
    price_type: str
    limit_price: Decimal | None
    offset_ticks: int
    protection_price: Decimal | None
    entry_order: Order | None


# Input ------------------------------------------------------------------------------------------


def _decimal(value: Any, name: str, problems: list[FieldProblem]) -> Decimal | None:
    if value is None or value == "":
        return None
    if isinstance(value, (float, bool)):
        problems.append(FieldProblem(name, InputRule.DECIMAL, bilingual("must be a decimal string such as \"10.50\", not a JSON number; got {value!r}", field_name=name, value=value)))
        return None
    try:
        result = Decimal(str(value))
    except ArithmeticError:
        problems.append(FieldProblem(name, InputRule.DECIMAL, bilingual("must be a decimal string; got {value!r}", field_name=name, value=value)))
        return None
    if not result.is_finite() or result <= 0:
        problems.append(FieldProblem(name, InputRule.POSITIVE, bilingual("{name} must be positive; got {value}", name=name, value=value)))
        return None
    if result >= MAX_PRICE:
        problems.append(FieldProblem(name, InputRule.MAX_PRICE, bilingual("{name} must be below {max_price}; got {value}", name=name, max_price=MAX_PRICE, value=value)))
        return None
    return result


def _context(account: Account, instrument: Instrument, side: str, quantity: int, entry: Order | None, at: datetime) -> CreateContext:
    quote = quote_latest(instrument.pk)
    view = quote_view(quote) if quote is not None else None
    day = account_trading_day(account, at)
    prev_close = quote.prev_close if quote else None
    position = Position.objects.filter(account=account, instrument=instrument).first()
    held = position.quantity if position else 0
    return CreateContext(
        account=account, instrument=instrument, side=side, quantity=quantity, quote=view, day=day, at=at,
        tick=market_rules.tick_size(market_rules.board_of(instrument)),
        limits=market_rules.limit_prices(instrument, prev_close, day) if prev_close else None,
        position_quantity=held, sellable_quantity=max(held - (position.frozen_quantity if position else 0), 0),
        entry_order=entry,
    )


def _check(data: ParentInput, account: Account, *, at: datetime) -> _Checked:
    """Fields, market rules and the kind's own checks of ``data``; InvalidOrder (422) naming every
    invalid field and its rule. Reads, never locks."""
    kind = kind_for(str(data.kind or ""))
    if data.expires_at is not None and (data.expires_at.tzinfo is None or data.expires_at.utcoffset() is None):
        data.expires_at = data.expires_at.replace(tzinfo=calendar.SHANGHAI)  # a time without a zone is Asia/Shanghai's
    instrument = instrument_lookup(str(data.symbol or ""))
    problems: list[FieldProblem] = []
    side = str(data.side or "").upper()
    if side not in kind.sides:
        problems.append(FieldProblem("side", InputRule.CHOICE, bilingual("side must be one of {sides} for kind {kind}; got {side!r}",
                                                                         sides=", ".join(kind.sides) or '""', kind=kind.code, side=data.side)))
    entry: Order | None = None
    if data.entry_order_id is not None:
        if not getattr(kind, "attaches_to_entry", False):
            problems.append(FieldProblem("entry_order_id", InputRule.CHOICE, bilingual("kind {kind} cannot be attached to an entry order", kind=kind.code)))
        else:
            entry = Order.objects.filter(pk=data.entry_order_id, account=account).select_related("instrument").first()
            if entry is None:
                raise NotFound(bilingual("order {order_id} not found", order_id=data.entry_order_id))
            if entry.instrument_id != instrument.pk or entry.side != Side.BUY:
                problems.append(FieldProblem("entry_order_id", InputRule.CHOICE, bilingual("the entry order must be a buy of {symbol}", symbol=instrument.symbol)))
            elif entry.status in TERMINAL_STATUSES and entry.filled_quantity == 0:
                problems.append(FieldProblem("entry_order_id", InputRule.CHOICE, bilingual("the entry order ended with nothing filled")))
    quantity = 0
    if entry is None and not getattr(kind, "quantity_free", False):
        if isinstance(data.quantity, bool) or not isinstance(data.quantity, int):
            problems.append(FieldProblem("quantity", InputRule.INTEGER, bilingual("quantity must be a whole number of shares; got {quantity!r}", quantity=data.quantity)))
        elif not 0 < data.quantity <= MAX_QUANTITY:
            problems.append(FieldProblem("quantity", InputRule.POSITIVE, bilingual("quantity must be between 1 and {max_quantity}; got {quantity}", max_quantity=MAX_QUANTITY, quantity=data.quantity)))
        else:
            quantity = data.quantity
    price_type = str(data.price_type or "").upper()
    if price_type not in ChildPriceType.values:
        problems.append(FieldProblem("price_type", InputRule.CHOICE, bilingual("price_type must be one of {choices}; got {value!r}",
                                                                               choices=", ".join(ChildPriceType.values), value=data.price_type)))
    limit_price = _decimal(data.limit_price, "limit_price", problems)
    protection_price = _decimal(data.protection_price, "protection_price", problems)
    offset_ticks = 0
    if isinstance(data.offset_ticks, bool) or not isinstance(data.offset_ticks, int) or not -MAX_OFFSET_TICKS <= data.offset_ticks <= MAX_OFFSET_TICKS:
        problems.append(FieldProblem("offset_ticks", InputRule.INTEGER, bilingual("offset_ticks must be a whole number from -{max} to {max}; got {value!r}",
                                                                                  max=MAX_OFFSET_TICKS, value=data.offset_ticks)))
    else:
        offset_ticks = data.offset_ticks
    if kind.price_types is not None and price_type in ChildPriceType.values and price_type not in kind.price_types:
        problems.append(FieldProblem("price_type", InputRule.CHOICE, bilingual("price_type must be one of {choices} for kind {kind}; got {value!r}",
                                                                               choices=", ".join(kind.price_types), kind=kind.code, value=data.price_type)))
    if price_type == ChildPriceType.LIMIT and limit_price is None and not getattr(kind, "prices_itself", False):
        problems.append(FieldProblem("limit_price", InputRule.REQUIRED, bilingual("limit_price is required for price_type LIMIT")))
    if data.expires_at is not None and data.expires_at <= at:
        problems.append(FieldProblem("expires_at", InputRule.IN_PAST, bilingual("expires_at {value} is in the past", value=data.expires_at.isoformat())))
    if data.client_order_id is not None and not 0 < len(str(data.client_order_id)) <= 64:
        problems.append(FieldProblem("client_order_id", InputRule.LENGTH, bilingual("client_order_id must be 1-64 characters")))
    if len(data.strategy or "") > 64:
        problems.append(FieldProblem("strategy", InputRule.LENGTH, bilingual("strategy must be at most 64 characters")))
    if problems:
        raise InvalidOrder(problems)
    params = kind.parse(data.params)
    ctx = _context(account, instrument, side, quantity, entry, at)
    for name, value in (("limit_price", limit_price), ("protection_price", protection_price)):
        if value is None:
            continue
        if not market_rules.is_on_tick(value, ctx.tick):
            problems.append(FieldProblem(name, InputRule.TICK_SIZE, bilingual("{name} must be a multiple of {tick}; got {value}", name=name, tick=ctx.tick, value=value)))
        elif ctx.limits is not None and not ctx.limits[0] <= value <= ctx.limits[1]:
            problems.append(FieldProblem(name, InputRule.PRICE_LIMIT, bilingual("{name} {value} is outside the day's price band {down}-{up}",
                                                                                name=name, value=value, down=ctx.limits[0], up=ctx.limits[1])))
    if quantity and side:
        try:
            market_rules.check_quantity(instrument, side, OrderType.MARKET if price_type == ChildPriceType.MARKET else OrderType.LIMIT,
                                        quantity, ctx.position_quantity, ctx.day)
        except market_rules.MarketRuleViolation as exc:
            problems.append(FieldProblem(exc.field, exc.rule, exc.message))
        if side == Side.SELL and quantity > ctx.sellable_quantity:
            problems.append(FieldProblem("quantity", InputRule.SELLABLE_QUANTITY, bilingual(
                "a sell of {quantity} is larger than the position's {sellable} sellable shares of {symbol}",
                quantity=quantity, sellable=ctx.sellable_quantity, symbol=instrument.symbol)))
    if problems:
        raise InvalidOrder(problems)
    memory = kind.validate(params, ctx)
    return _Checked(account, instrument, kind, params, memory, side, quantity, price_type, limit_price, offset_ticks,
                    protection_price, entry)


# Create, modify, cancel -------------------------------------------------------------------------


def conditional_create(data: ParentInput, *, actor: Actor) -> CreateResult:
    """Accept one conditional order (POST /conditional-orders, admin). A repeated
    (account, client_order_id) answers the first parent and creates nothing. Raises InvalidOrder
    (422) naming the field and the rule, NotFound for an unknown account or entry order."""
    account_id = account_id_by_name(data.account)
    client_order_id = str(data.client_order_id) if data.client_order_id else ""
    if client_order_id:
        existing = ConditionalOrder.objects.filter(account_id=account_id, client_order_id=client_order_id).first()
        if existing is not None:
            return CreateResult(existing, False)
    at = now()
    account = Account.objects.get(pk=account_id)
    checked = _check(data, account, at=at)
    try:
        with transaction.atomic():
            account = account_lock(account_id)
            if client_order_id:
                existing = ConditionalOrder.objects.filter(account=account, client_order_id=client_order_id).first()
                if existing is not None:
                    return CreateResult(existing, False)
            parent = ConditionalOrder(
                account=account, instrument=checked.instrument, client_order_id=client_order_id or "", strategy=data.strategy or "",
                kind=checked.kind.code, side=checked.side, quantity=checked.quantity, price_type=checked.price_type,
                limit_price=checked.limit_price, offset_ticks=checked.offset_ticks, protection_price=checked.protection_price,
                params=checked.params.model_dump(mode="json"), memory=checked.memory, entry_order=checked.entry_order,
                expires_at=data.expires_at, created_by=actor.name,
            )
            _set_thresholds(parent, checked.kind, checked.params)
            parent.save(force_insert=True)
            if not parent.client_order_id:
                parent.client_order_id = f"auto-c{parent.pk}"
                parent.save(update_fields=["client_order_id"])
            audit_record(actor=actor, action="conditional.created", object_type="conditional_order", object_id=parent.pk,
                         account=account.name, after=parent_snapshot(parent))
            ParentEvent.objects.create(parent=parent, at=at, event="CREATED", state_after=parent.state, detail=parent_snapshot(parent))
            checked.kind.created(parent, at)
            publish(EventKind.CONDITIONAL, account.name, parent_event_data(parent, previous="", event="CREATED"))
            _bands_forget(parent.instrument_id)
    except IntegrityError:
        existing = ConditionalOrder.objects.filter(account_id=account_id, client_order_id=client_order_id).first()
        if existing is None:
            raise
        return CreateResult(existing, False)
    if parent.entry_order_id is not None:
        conditional_follow_order(order_id=parent.entry_order_id)
        parent.refresh_from_db()
    return CreateResult(parent, True)


def conditional_cancel(*, parent_id: int, actor: Actor, reason: str = "") -> ConditionalOrder:
    """Cancel an ACTIVE parent: it releases nothing more. Children already released are ordinary
    orders (cancel them as such). 409 for a parent that fired or ended; a cancel racing a trigger
    is decided by the parent's row lock: whichever commits first wins, the other sees its result."""
    with transaction.atomic():
        _, parent = _lock(parent_id)
        parent_apply_event(parent, ParentEventKind.CANCELLED, actor=actor, reason=reason or bilingual("cancelled"),
                           update_fields=_clear_thresholds(parent))
    _bands_forget(parent.instrument_id)
    return parent


def conditional_pause(*, parent_id: int, actor: Actor, reason: str = "") -> ConditionalOrder:
    """Hold an ACTIVE execution algorithm: it releases nothing until resumed. Its working child, if
    any, is an ordinary order and keeps working (cancel it as such). 409 for a kind that cannot be
    paused or a parent not ACTIVE; a pause racing a slice is decided by the parent's row lock."""
    with transaction.atomic():
        _, parent = _lock(parent_id)
        _require_pausable(parent)
        parent_apply_event(parent, ParentEventKind.PAUSED, actor=actor, reason=reason or bilingual("paused"),
                           update_fields=_clear_thresholds(parent))
    _bands_forget(parent.instrument_id)
    return parent


def conditional_resume(*, parent_id: int, actor: Actor, reason: str = "") -> ConditionalOrder:
    """Let a PAUSED algorithm go on from where it stopped (its next slice is due at once if its time
    has passed); 409 for a parent not PAUSED."""
    with transaction.atomic():
        _, parent = _lock(parent_id)
        _require_pausable(parent)
        kind = kind_for(parent.kind)
        parent_apply_event(parent, ParentEventKind.RESUMED, actor=actor, reason=reason or bilingual("resumed"),
                           update_fields=_set_thresholds(parent, kind, kind.parse(parent.params)))
    _bands_forget(parent.instrument_id)
    return parent


def _require_pausable(parent: ConditionalOrder) -> None:
    if not kind_for(parent.kind).pausable:
        raise Conflict(bilingual("a conditional order of kind {kind} cannot be paused or resumed", kind=parent.kind))


def conditional_modify(*, parent_id: int, actor: Actor, quantity: int | None = None, params: dict[str, Any] | None = None,
                       limit_price: Any = None, expires_at: datetime | None = None) -> ConditionalOrder:
    """Change an ACTIVE parent's quantity, trigger parameters, limit price or expiry, checked as at
    creation (422 naming the field and the rule); 409 once it fired or ended."""
    current = _get(parent_id)
    data = ParentInput(
        account=current.account.name, symbol=current.instrument.symbol, kind=current.kind, side=current.side,
        quantity=current.quantity if quantity is None else quantity, params=current.params if params is None else params,
        price_type=current.price_type, limit_price=current.limit_price if limit_price is None else limit_price,
        offset_ticks=current.offset_ticks, protection_price=current.protection_price, client_order_id=current.client_order_id,
        strategy=current.strategy, expires_at=current.expires_at if expires_at is None else expires_at,
        entry_order_id=current.entry_order_id,
    )
    checked = _check(data, current.account, at=now())
    with transaction.atomic():
        _, parent = _lock(parent_id)
        if parent.state != A.ACTIVE:
            parent_apply_event(parent, ParentEventKind.MODIFIED, actor=actor)  # raises IllegalTransition
        before = parent_snapshot(parent)
        if parent.entry_order_id is None:
            if checked.quantity < parent.released_quantity:
                raise InvalidOrder.single("quantity", InputRule.ABOVE_FILLED, bilingual("quantity must be at least the {released} already released", released=parent.released_quantity))
            parent.quantity = checked.quantity
        parent.params = checked.params.model_dump(mode="json")
        if params is not None:  # new parameters start the kind's running state again; otherwise it carries on
            parent.memory = checked.memory
        parent.limit_price, parent.expires_at = checked.limit_price, data.expires_at
        fields = ["quantity", "params", "memory", "limit_price", "expires_at", *_set_thresholds(parent, checked.kind, checked.params)]
        parent_apply_event(parent, ParentEventKind.MODIFIED, actor=actor, update_fields=fields,
                           detail={"before": before, "after": parent_snapshot(parent)})
    _bands_forget(parent.instrument_id)
    return parent


# Evaluation -------------------------------------------------------------------------------------


def quote_view(quote: Any) -> QuoteView:
    """A ``trading.Quote`` (or anything with its fields) as kinds read it."""
    return QuoteView(quote.instrument_id, quote.last, quote.bid, quote.ask, quote.prev_close,
                     getattr(quote, "bid_volume", 0) or 0, getattr(quote, "ask_volume", 0) or 0, getattr(quote, "updated_at", None))


@dataclass
class Outcome:
    """What one evaluation of one parent did (for callers that report, and for tests)."""

    parent_id: int
    event: str
    children: list[int]
    reason: str = ""


def conditions_evaluate_quotes(quotes: Iterable[QuoteView], *, at: datetime | None = None) -> list[Outcome]:
    """Evaluate the parents each quote can fire (the market data path calls this after commit).

    A quote whose last price lies strictly between its symbol's thresholds (cached per process for
    CONDITIONS_BAND_TTL_SECONDS) reads nothing; otherwise one indexed query finds the ACTIVE parents
    whose ``watch_low`` or ``watch_high`` it reaches, and only those are locked and asked."""
    at = at or now()
    outcomes: list[Outcome] = []
    timed = conditions_evaluated.has_listeners()
    for quote in quotes:
        started = monotonic_time.perf_counter()
        result = _evaluate_quote(quote, at, outcomes)
        if timed:
            conditions_evaluated.send_robust(sender=ConditionalOrder, seconds=monotonic_time.perf_counter() - started, result=result)
    return outcomes


def _evaluate_quote(quote: QuoteView, at: datetime, outcomes: list[Outcome]) -> str:
    """Evaluate the parents ``quote`` reaches, adding what they did to ``outcomes``; idle, evaluated or fired."""
    if quote.last is None or not _band_reached(quote.instrument_id, quote.last):
        return "idle"
    rows = (ConditionalOrder.objects.filter(instrument_id=quote.instrument_id, state=A.ACTIVE)
            .filter(Q(watch_low__gte=quote.last) | Q(watch_high__lte=quote.last))
            .order_by("account_id", "id").values_list("id", "account_id"))
    result = "idle"
    for parent_id, account_id in rows:
        result = "evaluated" if result == "idle" else result
        outcome = _evaluate_safely(parent_id, account_id, quote=quote, at=at, by_clock=False)
        if outcome is not None:
            outcomes.append(outcome)
            result = "fired"
    return result


def conditions_evaluate_clock(*, at: datetime | None = None) -> list[Outcome]:
    """Evaluate the parents whose ``due_at`` has come (time triggers, algorithms' slices) and expire
    those whose ``expires_at`` has passed. The embedded scheduler and Celery beat call it every second."""
    at = at or now()
    outcomes: list[Outcome] = []
    rows = (ConditionalOrder.objects.filter(state=A.ACTIVE, due_at__lte=at)
            .order_by("account_id", "id").values_list("id", "account_id", "instrument_id"))
    for parent_id, account_id, instrument_id in rows:
        quote = quote_latest(instrument_id)
        outcome = _evaluate_safely(parent_id, account_id, quote=quote_view(quote) if quote else None, at=at, by_clock=True)
        if outcome is not None:
            outcomes.append(outcome)
    outcomes.extend(conditions_expire(at=at))
    return outcomes


def conditions_expire(*, at: datetime | None = None) -> list[Outcome]:
    """EXPIRED for every ACTIVE parent whose ``expires_at`` has passed."""
    at = at or now()
    outcomes = []
    for parent_id in ConditionalOrder.objects.filter(state__in=[A.ACTIVE, A.PAUSED], expires_at__lte=at).values_list("id", flat=True):
        with transaction.atomic():
            _, parent = _lock(parent_id)
            if parent.state not in (A.ACTIVE, A.PAUSED):
                continue
            parent_apply_event(parent, ParentEventKind.EXPIRED, actor=Actor.system("conditions"),
                               reason=bilingual("expired at {at}", at=parent.expires_at.isoformat() if parent.expires_at else ""),
                               update_fields=_clear_thresholds(parent))
        _bands_forget(parent.instrument_id)
        outcomes.append(Outcome(parent.pk, str(ParentEventKind.EXPIRED), []))
    return outcomes


def conditions_sweep(*, at: datetime | None = None) -> list[Outcome]:
    """What the push paths may have missed (a process that died between a commit and its callback,
    a quote evaluated by a process whose threshold cache was stale): every symbol with ACTIVE
    parents is evaluated against its stored quote, entries' fills arm their brackets, fired parents
    whose children ended complete, due parents run and old ones expire. Idempotent; every few seconds."""
    at = at or now()
    _bands_forget()
    outcomes = conditions_evaluate_clock(at=at)
    instruments = ConditionalOrder.objects.filter(state=A.ACTIVE).values_list("instrument_id", flat=True).distinct()
    from trading.models import Quote

    quotes = [quote_view(q) for q in Quote.objects.filter(instrument_id__in=list(instruments))]
    outcomes.extend(conditions_evaluate_quotes(quotes, at=at))
    following = [kind.code for kind in kind_classes() if kind.follows_reference]
    for quote in quotes:  # kinds whose thresholds follow the day's reference (change from previous close)
        for parent in (ConditionalOrder.objects.filter(instrument_id=quote.instrument_id, state=A.ACTIVE, kind__in=following)
                       .select_related("instrument")):
            kind = kind_for(parent.kind)
            if quote.last is not None and kind.stale(parent, kind.parse(parent.params), quote):
                outcome = _evaluate_safely(parent.pk, parent.account_id, quote=quote, at=at, by_clock=False)
                if outcome is not None:
                    outcomes.append(outcome)
    entries = ConditionalOrder.objects.filter(state=A.ACTIVE, entry_order__isnull=False).values_list("entry_order_id", flat=True)
    fired = ParentEvent.objects.filter(parent__state=A.TRIGGERED, child__isnull=False).values_list("child_id", flat=True)
    for order_id in {*entries, *fired}:
        conditional_follow_order(order_id=order_id)
    return outcomes


CHILD_PREFIX = "cond-"  # a released child's client_order_id: cond-<parent>-<version>-<index>


def order_concerns_conditions(*, order_id: int, client_order_id: str) -> bool:
    """Whether an order's change may concern a conditional order: it is a released child (known by
    its client_order_id, no query) or the entry of an ACTIVE bracket (one probe of a partial index).
    Most orders are neither, and their changes cost this one probe."""
    if client_order_id.startswith(CHILD_PREFIX):
        return True
    return ConditionalOrder.objects.filter(entry_order_id=order_id, state=A.ACTIVE).exists()


def conditional_follow_order(*, order_id: int) -> None:
    """An order changed: if it is a bracket's entry, size the bracket by what filled (in whole
    lots); if it is the child of a fired parent and has ended, the parent completes."""
    order = Order.objects.filter(pk=order_id).first()
    if order is None:
        return
    waiting = ConditionalOrder.objects.filter(entry_order_id=order_id, state=A.ACTIVE).select_related("instrument")
    for parent in waiting:  # lock only when there is something to do (the sweep passes here every few seconds)
        sized = market_rules.round_down_to_lots(parent.instrument, order.filled_quantity, calendar.trading_day_of(now()))
        if sized > parent.quantity or (order.status in TERMINAL_STATUSES and parent.quantity == 0):
            _arm(parent.pk)
    if order.status in TERMINAL_STATUSES:
        for parent_id in (ParentEvent.objects.filter(child_id=order_id, parent__state=A.TRIGGERED)
                          .values_list("parent_id", flat=True).distinct()):
            _complete_if_children_ended(parent_id)
        # An algorithm waiting for its working child (one at a time) releases its next slice now.
        for parent_id, account_id, instrument_id in (ConditionalOrder.objects.filter(
                pk__in=ParentEvent.objects.filter(child_id=order_id).values("parent_id"), state=A.ACTIVE, due_at__lte=now())
                .values_list("id", "account_id", "instrument_id")):
            quote = quote_latest(instrument_id)
            _evaluate_safely(parent_id, account_id, quote=quote_view(quote) if quote else None, at=now(), by_clock=True)


def _arm(parent_id: int) -> None:
    with transaction.atomic():
        account, parent = _lock(parent_id)
        if parent.state != A.ACTIVE or parent.entry_order_id is None:
            return
        entry = Order.objects.get(pk=parent.entry_order_id)
        day = account_trading_day(account, now())
        sized = market_rules.round_down_to_lots(parent.instrument, entry.filled_quantity, day)
        if sized > parent.quantity:
            kind = kind_for(parent.kind)
            before = parent.quantity
            parent.quantity = sized
            fields = ["quantity", *_set_thresholds(parent, kind, kind.parse(parent.params))]
            parent_apply_event(parent, ParentEventKind.ARMED, actor=Actor.system("conditions"), update_fields=fields,
                               detail={"entry_order": entry.pk, "filled": entry.filled_quantity, "quantity_before": before,
                                       "quantity": sized})
        elif entry.status in TERMINAL_STATUSES and parent.quantity == 0:
            parent_apply_event(parent, ParentEventKind.CANCELLED, actor=Actor.system("conditions"),
                               reason=bilingual("the entry order {order_id} ended {status} with {filled} filled, less than a lot",
                                                order_id=entry.pk, status=entry.status, filled=entry.filled_quantity),
                               update_fields=_clear_thresholds(parent))
    _bands_forget(parent.instrument_id)


def _complete_if_children_ended(parent_id: int) -> None:
    with transaction.atomic():
        _, parent = _lock(parent_id)
        if parent.state != A.TRIGGERED:
            return
        children = list(Order.objects.filter(pk__in=ParentEvent.objects.filter(parent=parent, child__isnull=False)
                                             .values_list("child_id", flat=True)))
        if not children or any(c.status not in TERMINAL_STATUSES for c in children):
            return
        filled = sum(c.filled_quantity for c in children)
        parent_apply_event(parent, ParentEventKind.CHILD_ENDED, actor=Actor.system("conditions"),
                           detail={"children": {str(c.pk): c.status for c in children}, "filled_quantity": filled},
                           child=children[-1])


def _evaluate_safely(parent_id: int, account_id: int, *, quote: QuoteView | None, at: datetime, by_clock: bool) -> Outcome | None:
    # One parent's failure (a bug, a lost connection) must not stop the others on the same quote:
    # it stays ACTIVE and the next quote or the sweep evaluates it again.
    try:
        return _evaluate(parent_id, account_id, quote=quote, at=at, by_clock=by_clock)
    except Exception:
        log.exception("evaluating conditional order %s failed; it stays as it was", parent_id)
        return None


def _evaluate(parent_id: int, account_id: int, *, quote: QuoteView | None, at: datetime, by_clock: bool) -> Outcome | None:
    """Ask ``parent_id``'s kind, under its account's lock and then its own, and apply the decision."""
    with transaction.atomic():
        account = account_lock(account_id)
        parent = _lock_parent(parent_id)
        if parent is None or parent.state != A.ACTIVE:
            return None  # another evaluator, a cancel or an expiry got there first
        parent.account = account
        if parent.expires_at is not None and parent.expires_at <= at:
            parent_apply_event(parent, ParentEventKind.EXPIRED, actor=Actor.system("conditions"),
                               reason=bilingual("expired at {at}", at=parent.expires_at.isoformat()), update_fields=_clear_thresholds(parent))
            transaction.on_commit(lambda: _bands_forget(parent.instrument_id))
            return Outcome(parent.pk, str(ParentEventKind.EXPIRED), [])
        kind = kind_for(parent.kind)
        params = kind.parse(parent.params)
        if by_clock:
            decision = kind.on_clock(parent, params, quote, at)
        else:
            assert quote is not None
            decision = kind.on_quote(parent, params, quote, at) if quote.last is not None else None
        if decision is None:
            return None
        if decision.releases and not session_accepts(account, parent, at):
            return None  # triggers only while the child can be accepted: the next quote in session fires it
        outcome = _apply(account, parent, kind, params, decision, quote, at)
    if outcome is not None:
        _bands_forget(parent.instrument_id)
    return outcome


def session_accepts(account: Account, parent: ConditionalOrder, at: datetime) -> bool:
    """Whether a child of ``parent`` would be accepted now: the session takes new orders (market
    ones only in continuous trading). Accounts in the simulated all-day session always do."""
    if account.session_mode != SessionMode.REAL:
        return True
    phase = calendar.session_phase(at)
    if not calendar.accepts_new_orders(phase):
        return False
    return parent.price_type != ChildPriceType.MARKET or calendar.accepts_market_orders(phase)


class _Wait(Exception):
    """Nothing can be released yet (T+1: the shares bought today are not sellable until tomorrow)."""


@dataclass
class _Prepared:
    data: OrderInput
    release: Release


def _prepare(account: Account, parent: ConditionalOrder, releases: list[Release], quote: QuoteView | None,
             at: datetime) -> tuple[list[_Prepared], str]:
    """The children's orders, or a reason none can go; raises _Wait for T+1."""
    day = account_trading_day(account, at)
    position = Position.objects.filter(account=account, instrument=parent.instrument).first()
    held = position.quantity if position else 0
    sellable = position.sellable_quantity(day) if position else 0
    prepared: list[_Prepared] = []
    for index, release in enumerate(releases):
        if release.side == Side.SELL and sellable <= 0:
            if position is not None and held - position.frozen_quantity > 0:
                raise _Wait  # bought today (T+1) or held by another sell: sellable later
            return [], bilingual("nothing to sell: no sellable position of {symbol}", symbol=parent.instrument.symbol)
        quantity = child_quantity(parent, release.side, release.quantity, position_quantity=held, sellable=sellable, day=day)
        if quantity <= 0:
            return [], bilingual("{quantity} shares is less than a lot of {symbol}", quantity=release.quantity, symbol=parent.instrument.symbol)
        if release.side == Side.SELL:
            sellable -= quantity
        price = child_price(parent, release, quote, day)
        if price.order_type == OrderType.LIMIT and price.price is None:
            return [], bilingual("no price to release the order at: no quote of {symbol}", symbol=parent.instrument.symbol)
        prepared.append(_Prepared(OrderInput(
            account=account.name, symbol=parent.instrument.symbol, side=release.side, order_type=price.order_type,
            quantity=quantity, price=str(price.price) if price.price is not None else None,
            protection_price=str(price.protection_price) if price.protection_price is not None else None,
            client_order_id=f"{CHILD_PREFIX}{parent.pk}-{parent.version + 1}-{index}", strategy=parent.strategy,
        ), release))
    return prepared, ""


def _apply(account: Account, parent: ConditionalOrder, kind: Kind[Any], params: Any, decision: Decision,
           quote: QuoteView | None, at: datetime) -> Outcome | None:
    """Apply a kind's decision to the locked ``parent``: release its children through order intake,
    then record the transition (FIRED, RELEASED, TRACKED, REFUSED or DONE) and the new thresholds."""
    actor = Actor.system(f"conditional:{parent.pk}")
    last = quote.last if quote else None
    memory_before = parent.memory
    fields: list[str] = []
    if decision.memory is not None:
        parent.memory = decision.memory
        fields.append("memory")
    if not decision.releases:
        if decision.expired:
            fields += _clear_thresholds(parent)
            parent_apply_event(parent, ParentEventKind.EXPIRED, actor=actor, reason=decision.note, last_price=last, update_fields=fields)
            return Outcome(parent.pk, str(ParentEventKind.EXPIRED), [])
        if decision.finished and kind.repeating:
            fields += _clear_thresholds(parent)
            parent_apply_event(parent, ParentEventKind.DONE, actor=actor, reason=decision.note, last_price=last, update_fields=fields)
            return Outcome(parent.pk, str(ParentEventKind.DONE), [])
        if not fields:
            return None
        fields += _set_thresholds(parent, kind, params)
        parent_apply_event(parent, ParentEventKind.TRACKED, actor=actor, reason=decision.note, last_price=last, update_fields=fields,
                           detail={"memory": parent.memory})
        return Outcome(parent.pk, str(ParentEventKind.TRACKED), [])
    try:
        prepared, refusal = _prepare(account, parent, decision.releases, quote, at)
    except _Wait:
        return None
    children: list[Order] = []
    for item in prepared:
        try:
            with transaction.atomic():
                child = order_submit(item.data, actor=actor, source=OrderSource.SYSTEM).order
        except TradingError as exc:
            refusal = _refusal_text(exc)
            break
        children.append(child)
        if child.status == OrderStatus.REJECTED:
            refusal = child.status_reason or bilingual("refused by risk control")
            break
    if refusal:
        fields += _clear_thresholds(parent)
        refused = ParentEventKind.HELD if kind.pausable else ParentEventKind.REFUSED  # an algorithm pauses
        if kind.pausable:  # ...where it was: the refused slice is released again on resume
            parent.memory = memory_before
        history = parent_apply_event(parent, refused, actor=actor, reason=refusal, last_price=last,
                                     child=children[-1] if children else None, update_fields=fields,
                                     detail={"children": [c.pk for c in children]})
        for child in children[:-1]:
            ParentEvent.objects.create(parent=parent, at=history.at, event="RELEASED", state_before=parent.state,
                                       state_after=parent.state, last_price=last, child=child)
        return Outcome(parent.pk, str(refused), [c.pk for c in children], refusal)
    released = sum(c.quantity for c in children)
    parent.released_quantity += released
    fields.append("released_quantity")
    if not kind.repeating:
        parent.triggered_at = at
        fields += ["triggered_at", *_clear_thresholds(parent)]
        event = ParentEventKind.FIRED
    else:
        fields += _set_thresholds(parent, kind, params)
        event = ParentEventKind.RELEASED
    history = parent_apply_event(parent, event, actor=actor, reason=decision.note, last_price=last, child=children[0],
                                 update_fields=fields, detail={"children": [c.pk for c in children], "quantity": released})
    for child in children[1:]:
        ParentEvent.objects.create(parent=parent, at=history.at, event=str(event), state_before=parent.state,
                                   state_after=parent.state, last_price=last, child=child)
    if kind.repeating and decision.finished:
        parent_apply_event(parent, ParentEventKind.DONE, actor=actor, update_fields=_clear_thresholds(parent))
    return Outcome(parent.pk, str(event), [c.pk for c in children])


def _refusal_text(exc: TradingError) -> str:
    if isinstance(exc, InvalidOrder):
        return "; ".join(f"{p.field}: {p.rule}: {p.message}" for p in exc.problems)[:500]
    return f"{exc.code}: {exc.message}"[:500]


# Rows, locks, thresholds ------------------------------------------------------------------------


def _get(parent_id: int) -> ConditionalOrder:
    parent = ConditionalOrder.objects.select_related("account", "instrument").filter(pk=parent_id).first()
    if parent is None:
        raise NotFound(bilingual("conditional order {parent_id} not found", parent_id=parent_id))
    return parent


def _lock_parent(parent_id: int) -> ConditionalOrder | None:
    return ConditionalOrder.objects.select_for_update(of=("self",)).select_related("instrument").filter(pk=parent_id).first()


def _lock(parent_id: int) -> tuple[Account, ConditionalOrder]:
    """Lock the parent's account, then the parent (the lock order above). 404 if there is none."""
    account_id = ConditionalOrder.objects.filter(pk=parent_id).values_list("account_id", flat=True).first()
    if account_id is None:
        raise NotFound(bilingual("conditional order {parent_id} not found", parent_id=parent_id))
    account = account_lock(account_id)
    parent = _lock_parent(parent_id)
    assert parent is not None  # parents are never deleted
    parent.account = account
    return account, parent


def _set_thresholds(parent: ConditionalOrder, kind: Kind[Any], params: Any) -> list[str]:
    thresholds = kind.thresholds(parent, params)
    parent.watch_low, parent.watch_high, parent.due_at = thresholds.low, thresholds.high, thresholds.due_at
    return ["watch_low", "watch_high", "due_at"]


def _clear_thresholds(parent: ConditionalOrder) -> list[str]:
    parent.watch_low = parent.watch_high = parent.due_at = None
    return ["watch_low", "watch_high", "due_at"]


def parent_snapshot(parent: ConditionalOrder) -> dict[str, Any]:
    return {
        "client_order_id": parent.client_order_id, "symbol": parent.instrument.symbol, "kind": parent.kind,
        "side": parent.side, "quantity": parent.quantity, "params": parent.params, "price_type": parent.price_type,
        "limit_price": str(parent.limit_price) if parent.limit_price is not None else None,
        "offset_ticks": parent.offset_ticks, "expires_at": parent.expires_at.isoformat() if parent.expires_at else None,
        "entry_order": parent.entry_order_id,
    }


# Per-symbol thresholds: the highest watch_low and the lowest watch_high of a symbol's ACTIVE parents.
# A last price strictly between them can fire nothing, so most quotes read nothing at all. Kept per
# process for CONDITIONS_BAND_TTL_SECONDS and dropped at once by this process's own changes; a parent
# another process created is seen within that time (and by the sweep). Every symbol's band is read in
# one grouped query when that time is up (one quote a second pays it, not one per symbol a second);
# a symbol this process changed is read again alone at its next quote.
_BANDS: dict[int, tuple[float, Decimal | None, Decimal | None]] = {}
_BANDS_READ: dict[str, float] = {"until": 0.0}  # when every symbol's band must be read again
_BANDS_FORGOTTEN: set[int] = set()  # symbols this process changed since: read alone


def _band_reached(instrument_id: int, last: Decimal) -> bool:
    clock = monotonic_time.monotonic()
    cached = _BANDS.get(instrument_id)
    if cached is None or cached[0] <= clock:
        if _BANDS_READ["until"] <= clock:
            _bands_read_all(clock)
            cached = _BANDS.get(instrument_id)
        if cached is None and instrument_id not in _BANDS_FORGOTTEN:
            return False  # no ACTIVE parent of this symbol when all were read
        if cached is None or cached[0] <= clock:
            found = ConditionalOrder.objects.filter(instrument_id=instrument_id, state=A.ACTIVE).aggregate(
                low=Max("watch_low"), high=Min("watch_high"))
            cached = (clock + settings.CONDITIONS_BAND_TTL_SECONDS, found["low"], found["high"])
            _BANDS[instrument_id] = cached
            _BANDS_FORGOTTEN.discard(instrument_id)
    _, low, high = cached
    return (low is not None and last <= low) or (high is not None and last >= high)


def _bands_read_all(clock: float) -> None:
    until = clock + settings.CONDITIONS_BAND_TTL_SECONDS
    rows = (ConditionalOrder.objects.filter(state=A.ACTIVE).values("instrument_id")
            .annotate(low=Max("watch_low"), high=Min("watch_high")).order_by())
    _BANDS.clear()
    _BANDS.update({row["instrument_id"]: (until, row["low"], row["high"]) for row in rows})
    _BANDS_FORGOTTEN.clear()
    _BANDS_READ["until"] = until


def _bands_forget(instrument_id: int | None = None) -> None:
    if instrument_id is None:
        _BANDS.clear()
        _BANDS_READ["until"] = 0.0
    else:
        _BANDS.pop(instrument_id, None)
        _BANDS_FORGOTTEN.add(instrument_id)
