"""OrderManager: every write on orders, one transaction per use case.

Intake (``order_submit``): lock the account, validate the input and the market
rules, run risk control, and write the order, its freeze and its audit events
in one transaction. The order row is its own outbox (NEW = to submit): after
commit the submission is enqueued, and a sweep re-enqueues what was missed.
Workers then call ``order_send_to_broker``, ``order_cancel_at_broker`` and
``account_poll``; fills reach positions and cash through ``order_sync``.

Lock order (README, "Locks"): the account row first; then, under it, that account's order and
position rows. A worker that changes only an order's status locks that order row alone and takes
no other lock in that transaction. Instrument rows are never locked.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, models, transaction
from django.db.models import Q

from audit.models import AuditEvent
from audit.services import Actor, audit_event, audit_record
from brokers.interface import BrokerOrder, BrokerOrderStatus, BrokerTrade, OrderRequest
from brokers.registry import broker_for
from orders.models import (
    TERMINAL_STATUSES,
    WORKING_STATUSES,
    Fill,
    Order,
    OrderSource,
    OrderStatus,
)
from orders.state_machine import OrderEvent, StatusChange, order_apply_event
from risk.controller import Decision, RiskOutcome, RiskReads, Verdict, reads_for, risk_check_order
from risk.services import risk_cancel_recorded, risk_order_recorded, risk_post_trade
from trading import calendar, market_rules
from trading.clock import now
from trading.errors import (
    BrokerError,
    BrokerTimeout,
    Conflict,
    FieldProblem,
    Forbidden,
    InvalidOrder,
    NotFound,
    TradingError,
)
from trading.market_rules import MarketRuleViolation, OrderType, Side
from trading.models import Account, CashEntryKind, Instrument, Position, Quote, SessionMode, TradingState
from trading.selectors import account_trading_day, instrument_active, quote_latest
from trading.services import (
    LedgerPost,
    account_lock,
    account_lock_reading,
    cash_post,
    ledger_flush,
    multi_statement_reads,
    position_apply_fill,
    position_for_update,
    position_freeze,
    position_unfreeze,
)

log = logging.getLogger(__name__)
ZERO = Decimal("0")
MAX_PRICE = Decimal("1000000")  # far above any A-share price; keeps values inside the columns
MAX_QUANTITY = 10**9  # far above any per-order maximum; keeps values (and their products) inside the columns


# --------------------------------------------------------------------------- input


@dataclass
class OrderInput:
    """An order as a strategy or an operator sends it, before validation."""

    account: str
    symbol: str
    side: str
    order_type: str
    quantity: Any
    price: Any = None
    client_order_id: str | None = None
    strategy: str = ""
    protection_price: Any = None


@dataclass
class CheckedOrder:
    """An order whose fields and market rules were checked; ready to be admitted."""

    account: Account
    instrument: Instrument
    side: str
    order_type: str
    quantity: int
    price: Decimal | None
    protection_price: Decimal | None
    client_order_id: str
    strategy: str
    trading_day: date
    quote: Quote | None = None


def _decimal(value: Any, field_name: str, problems: list[FieldProblem]) -> Decimal | None:
    if value is None or value == "":
        return None
    if isinstance(value, float):
        # A binary float cannot carry a price exactly: API.md sends prices as decimal strings.
        problems.append(FieldProblem(field_name, "decimal", f"{field_name} 须为十进制字符串如 \"10.50\" (must be a decimal string such as \"10.50\", not a JSON number; got {value!r})"))
        return None
    try:
        result = Decimal(str(value))
    except (InvalidOperation, ValueError):
        problems.append(FieldProblem(field_name, "decimal", f"{field_name} 须为十进制数字字符串 (must be a decimal string; got {value!r})"))
        return None
    if not result.is_finite():
        problems.append(FieldProblem(field_name, "decimal", f"{field_name} 须为有限数值 (must be finite; got {value!r})"))
        return None
    return result




def instrument_lookup(symbol: str) -> Instrument:
    """The active instrument for any accepted spelling of ``symbol``; 422 if unknown."""
    try:
        code, exchange = market_rules.normalize_symbol(symbol)
    except MarketRuleViolation as exc:
        raise InvalidOrder.single("symbol", exc.rule, exc.message) from None
    instrument = instrument_active(exchange, code)
    if instrument is None:
        raise InvalidOrder.single(
            "symbol", "unknown_symbol", f"证券代码不存在 (unknown symbol {market_rules.format_symbol(code, exchange)})"
        )
    return instrument


def _check_fields(data: OrderInput, problems: list[FieldProblem]) -> tuple[str, str, int, Decimal | None, Decimal | None]:
    side = str(data.side or "").upper()
    if side not in Side.values:
        problems.append(FieldProblem("side", "choice", f"side 须为 BUY 或 SELL (side must be BUY or SELL; got {data.side!r})"))
    order_type = str(data.order_type or "").upper()
    if order_type not in OrderType.values:
        problems.append(
            FieldProblem("order_type", "choice", f"order_type 须为 LIMIT 或 MARKET (order_type must be LIMIT or MARKET; got {data.order_type!r})")
        )
    quantity = 0
    if isinstance(data.quantity, bool) or not isinstance(data.quantity, int):
        problems.append(FieldProblem("quantity", "integer", f"数量须为整数股 (quantity must be a whole number of shares; got {data.quantity!r})"))
    elif data.quantity <= 0:
        problems.append(FieldProblem("quantity", "positive", f"数量须大于0 (quantity must be positive; got {data.quantity})"))
    elif data.quantity > MAX_QUANTITY:
        problems.append(FieldProblem("quantity", "max_quantity", f"数量超出范围 (quantity must be at most {MAX_QUANTITY}; got {data.quantity})"))
    else:
        quantity = data.quantity
    price = _decimal(data.price, "price", problems)
    protection_price = _decimal(data.protection_price, "protection_price", problems)
    for name, value in (("price", price), ("protection_price", protection_price)):
        if value is not None and value <= 0:
            problems.append(FieldProblem(name, "positive", f"{name} 须大于0 ({name} must be positive; got {value})"))
        elif value is not None and value >= MAX_PRICE:
            problems.append(FieldProblem(name, "max_price", f"{name} 超出范围 ({name} must be below {MAX_PRICE}; got {value})"))
    if order_type == OrderType.LIMIT and data.price in (None, ""):
        problems.append(FieldProblem("price", "required", "限价委托须填写价格 (price is required for a LIMIT order)"))
    if data.client_order_id is not None and not (0 < len(str(data.client_order_id)) <= 64):
        problems.append(FieldProblem("client_order_id", "length", "client_order_id 长度须为1-64 (client_order_id must be 1-64 characters)"))
    if len(data.strategy or "") > 64:
        problems.append(FieldProblem("strategy", "length", "strategy 最长64字符 (strategy must be at most 64 characters)"))
    return side, order_type, quantity, price, protection_price


def order_check(data: OrderInput, *, account: Account, at: datetime | None = None) -> CheckedOrder:
    """Check an order's fields and the market rules that need no lock; raises InvalidOrder
    naming every invalid field. Checks that depend on the account's holdings run at admission."""
    problems: list[FieldProblem] = []
    side, order_type, quantity, price, protection_price = _check_fields(data, problems)
    instrument: Instrument | None = None
    try:
        instrument = instrument_lookup(data.symbol)
    except InvalidOrder as exc:
        problems.extend(exc.problems)
    if problems or instrument is None:
        raise InvalidOrder(problems)
    at = at or now()
    trading_day = account_trading_day(account, at)
    if account.session_mode == SessionMode.REAL:
        phase = calendar.session_phase(at)
        if not calendar.accepts_new_orders(phase):
            raise InvalidOrder.single("symbol", "session_closed", f"非交易时段, 账户拒绝盘外委托 (outside trading session: {phase.label})")
        if order_type == OrderType.MARKET and not calendar.accepts_market_orders(phase):
            raise InvalidOrder.single("order_type", "market_order_not_allowed", "市价委托仅限连续竞价时段 (market orders only in continuous trading)")
    quote = quote_latest(instrument.pk)
    prev_close = quote.prev_close if quote else None
    try:
        market_rules.check_price(instrument, side, order_type, price, prev_close, trading_day)
    except MarketRuleViolation as exc:
        problems.append(FieldProblem(exc.field, exc.rule, exc.message))
    if order_type == OrderType.MARKET and protection_price is not None:
        try:
            market_rules.check_protection_price(instrument, protection_price, prev_close, trading_day)
        except MarketRuleViolation as exc:
            problems.append(FieldProblem(exc.field, exc.rule, exc.message))
    if problems:
        raise InvalidOrder(problems)
    return CheckedOrder(
        account=account,
        instrument=instrument,
        side=side,
        order_type=order_type,
        quantity=quantity,
        price=price,
        protection_price=protection_price,
        client_order_id=str(data.client_order_id) if data.client_order_id else "",
        strategy=data.strategy or "",
        trading_day=trading_day,
        quote=quote,
    )


# --------------------------------------------------------------------------- intake


@dataclass
class SubmitResult:
    order: Order
    created: bool


_EXISTING_SQL = f"SELECT o.id FROM {Order._meta.db_table} o WHERE o.account_id = a.id AND o.client_order_id = %s"  # noqa: S608 - identifiers from model metadata; values are bound


def _existing(account: Account, client_order_id: str) -> Order | None:
    if not client_order_id:
        return None
    # A bare lookup on the unique (account, client_order_id) index, in SQL: it
    # runs for every order under the account lock and almost always finds nothing.
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id FROM {Order._meta.db_table} WHERE account_id = %s AND client_order_id = %s",  # noqa: S608 - identifiers from model metadata; values are bound
                       [account.pk, client_order_id])
        found = cursor.fetchone()
    if found is None:
        return None
    return Order.objects.select_related("account", "instrument").get(pk=found[0])


def _buy_freeze_amount(order: Order, quote: Quote | None) -> Decimal:
    price = order.price
    if order.order_type == OrderType.MARKET:
        price = order.protection_price
        if price is None and quote and quote.prev_close:
            limits = market_rules.limit_prices(order.instrument, quote.prev_close, order.trading_day)
            price = limits[1] if limits else None
        if price is None:
            raise InvalidOrder.single(
                "protection_price",
                "required",
                "无涨跌停价可参考, 市价买入须填写保护价 (a market buy needs a protection_price when no limit-up price is known)",
            )
    assert price is not None
    return market_rules.estimate_buy_freeze(order.account.fees, order.instrument, price, order.quantity, order.trading_day)


def _st_bought_today(order: Order, releasing: Order | None = None) -> int:
    from django.db.models import Sum

    total = (
        Order.objects.filter(account=order.account, instrument=order.instrument, side=Side.BUY, trading_day=order.trading_day)
        .exclude(status__in=[OrderStatus.REJECTED, OrderStatus.CANCELLED, OrderStatus.EXPIRED])
        .exclude(pk__in=[pk for pk in (order.pk, releasing.pk if releasing else None) if pk is not None])
        .aggregate(q=Sum("quantity"))["q"]
    )
    return int(total or 0)


@dataclass
class Admission:
    """What admitting a NEW order decided: the risk event (None = passes) and what to freeze."""

    event: OrderEvent | None
    reason: str
    verdicts: list[dict[str, Any]]
    freeze_amount: Decimal = ZERO
    freeze_quantity: int = 0
    position: Position | None = None


def _admission(order: Order, *, quote: Quote | None,
               prefetched: tuple[RiskReads, list[list[tuple[Any, ...]]]] | None = None,
               releasing: Order | None = None) -> Admission:
    """Holdings checks and risk control for a NEW order; writes nothing.

    ``releasing``: an order whose freeze goes back before this one takes its own (the
    original of a modify): what it holds counts as available.

    Precondition: the caller holds the account lock. Raises InvalidOrder for a
    rule the exchange would refuse (sellable quantity, cash, lots of a sell).
    """
    account = order.account
    position: Position | None = None
    freeze_amount, freeze_quantity = ZERO, 0
    held = 0
    released_amount = releasing.frozen_amount if releasing is not None else ZERO
    released_quantity = releasing.frozen_quantity if releasing is not None else 0
    if order.side == Side.SELL:
        position = position_for_update(account, order.instrument)
        held = position.quantity
    try:
        market_rules.check_quantity(order.instrument, order.side, order.order_type, order.quantity, held, order.trading_day)
    except MarketRuleViolation as exc:
        raise InvalidOrder.single(exc.field, exc.rule, exc.message) from None
    if position is not None:
        sellable = position.sellable_quantity(order.trading_day) + released_quantity
        if order.quantity > sellable:
            raise InvalidOrder.single(
                "quantity",
                "sellable_quantity",
                f"可卖数量不足 (only {sellable} shares of {order.instrument.symbol} are sellable today "
                f"(T+1 and open sells excluded); got {order.quantity})",
            )
        freeze_quantity = order.quantity
    else:
        if order.instrument.is_st:
            limit = market_rules.st_max_daily_buy(order.trading_day)
            bought = _st_bought_today(order, releasing)
            if bought + order.quantity > limit:
                raise InvalidOrder.single(
                    "quantity",
                    "st_daily_buy_limit",
                    f"ST股票单日买入不得超过{limit}股 (ST stocks: at most {limit} shares a day per account; {bought} already ordered today)",
                )
        freeze_amount = _buy_freeze_amount(order, quote)
        available = account.available + released_amount
        if freeze_amount > available:
            raise InvalidOrder.single(
                "quantity",
                "available_cash",
                f"可用资金不足 (order needs {freeze_amount} CNY incl. estimated fees; available {available})",
            )
    outcome = risk_check_order(order, prefetched=prefetched)
    event = {Decision.PASS: None, Decision.REVIEW: OrderEvent.RISK_HELD, Decision.REJECT: OrderEvent.RISK_REJECTED}[outcome.decision]
    return Admission(event, outcome.reason, [v.as_json() for v in outcome.verdicts], freeze_amount, freeze_quantity, position)


def _freeze(order: Order, admission: Admission, *, actor: Actor, posts: list[LedgerPost]) -> None:
    """Hold the cash of a buy or the shares of a sell for an admitted (saved) order;
    sets the order's frozen fields, which the caller saves."""
    if admission.freeze_amount:
        cash_post(order.account, kind=CashEntryKind.FREEZE, amount=admission.freeze_amount, actor=actor, order=order,
                  memo="委托冻结", defer=posts)
    if admission.freeze_quantity and admission.position is not None:
        position_freeze(admission.position, admission.freeze_quantity, today=order.trading_day)
    order.frozen_amount = admission.freeze_amount
    order.frozen_quantity = admission.freeze_quantity


def _admit_saved(order: Order, *, actor: Actor, quote: Quote | None, posts: list[LedgerPost]) -> None:
    """Admit an order that is already saved (a replacement whose original has ended)."""
    admission = _admission(order, quote=quote)
    order.risk_verdicts = admission.verdicts
    order.admitted_at = now()
    if admission.event != OrderEvent.RISK_REJECTED:
        _freeze(order, admission, actor=actor, posts=posts)
    fields = ["risk_verdicts", "frozen_amount", "frozen_quantity", "admitted_at"]
    if admission.event is not None:
        order_apply_event(order, admission.event, actor=actor, reason=admission.reason, update_fields=fields)
    else:
        order.save(update_fields=fields)
        _dispatch_on_commit(order, SUBMIT)
    risk_order_recorded(order)


SUBMIT, CANCEL = "submit", "cancel"
WORKER = Actor.system("worker")  # who moves an order to SUBMITTING


def _dispatch_on_commit(order: Order, kind: str) -> None:
    """Have the broker call for ``order`` made once the transaction commits.

    The committed status (NEW = to submit, CANCEL_REQUESTED = to cancel) is the
    durable record that the call is owed. With ``ORDERS_DISPATCH = "relay"``
    (the default with Redis) the outbox relay process picks the row up and
    enqueues it, keeping the queue off the request path; with ``"inline"`` the
    call is enqueued (or, with in-process tasks, made) right after commit. The
    sweep re-sends whatever stays owed either way.
    """
    if settings.ORDERS_DISPATCH == "relay":
        if order.dispatched_at is not None:  # dispatched before (to submit): owed again
            Order.objects.filter(pk=order.pk).update(dispatched_at=None)
            order.dispatched_at = None
        return
    order_id = order.pk
    transaction.on_commit(lambda: _enqueue(order_id, kind))


def _enqueue(order_id: int, kind: str) -> None:
    from orders import tasks

    task = tasks.submit_order if kind == SUBMIT else tasks.cancel_order
    try:
        task.delay(order_id)
    except Exception:  # the queue is down: the sweep re-enqueues from the order rows
        log.exception("could not enqueue %s of order %s; the outbox sweep will retry", kind, order_id)


def _order_snapshot(order: Order) -> dict[str, Any]:
    return {
        "client_order_id": order.client_order_id,
        "symbol": order.instrument.symbol,
        "side": order.side,
        "order_type": order.order_type,
        "price": str(order.price) if order.price is not None else None,
        "quantity": order.quantity,
        "strategy": order.strategy,
        "replaces": order.replaces_id,
    }


def _build_order(checked: CheckedOrder, *, actor: Actor, source: str, replaces: Order | None = None) -> Order:
    return Order(
        account=checked.account,
        instrument=checked.instrument,
        client_order_id=checked.client_order_id or f"auto-{uuid.uuid4().hex[:20]}",
        strategy=checked.strategy,
        side=checked.side,
        order_type=checked.order_type,
        price=checked.price,
        protection_price=checked.protection_price,
        quantity=checked.quantity,
        trading_day=checked.trading_day,
        source=source,
        submitted_by=actor.name,
        replaces=replaces,
    )


def _created_event(order: Order, actor: Actor, reason: str = "") -> AuditEvent:
    return audit_event(actor=actor, action="order.created", object_type="order", object_id=order.pk,
                       account=order.account.name, after=_order_snapshot(order), reason=reason)


_ACCOUNT_IDS: dict[str, int] = {}


def account_id_by_name(name: str) -> int:
    """The id of account ``name`` (names never change, so the answer is cached); 404 if unknown."""
    account_id = _ACCOUNT_IDS.get(name)
    if account_id is None:
        account_id = Account.objects.filter(name=name).values_list("pk", flat=True).first()
        if account_id is None:
            raise NotFound(f"账户不存在 (unknown account {name!r})")
        _ACCOUNT_IDS[name] = account_id
    return account_id


# The account rows this process last locked, by id: what intake prepares an order with before it
# takes the lock. Only settings an order's preparation depends on are trusted from it, and they are
# compared with the locked row (``_Prepared.fits``); money and states always come from the lock.
_ACCOUNT_SEEN: dict[int, Account] = {}


@dataclass
class _Prepared:
    """An order checked and built before the account lock, with the reads its risk check needs."""

    order: Order
    quote: Quote | None
    session_mode: str
    reads: RiskReads

    def fits(self, account: Account) -> bool:
        """Whether the locked account still has the settings the order was prepared with."""
        return account.session_mode == self.session_mode


def _prepare(data: OrderInput, account_id: int, *, actor: Actor, source: str) -> _Prepared | None:
    """Do before the lock what does not need it: field and market-rule checks, building the order,
    the SQL of its risk reads. None when that is not possible (no account seen yet, a database
    without multi-statement round trips) or the input is invalid (then the locked path decides,
    after the idempotency lookup: a retried order is answered, not refused)."""
    seen = _ACCOUNT_SEEN.get(account_id)
    if seen is None or not multi_statement_reads():
        return None
    try:
        checked = order_check(data, account=seen)
    except InvalidOrder:
        return None
    order = _build_order(checked, actor=actor, source=source)
    return _Prepared(order, checked.quote, seen.session_mode, reads_for(order))


def order_submit(data: OrderInput, *, actor: Actor, source: str = OrderSource.API) -> SubmitResult:
    """Accept one order: the one use case behind POST /orders, admin entry and batches.

    One transaction: lock the account, return the existing order for a repeated
    (account, client_order_id), check fields and market rules, run holdings
    checks and risk control, then insert the order, its freeze, its audit events
    (the order row, NEW, is the outbox). Raises InvalidOrder (422) for bad input or a broken
    market rule, with nothing written; an order refused by risk control is
    created as REJECTED with its verdicts.

    The account lock is the one point every order of an account passes in turn,
    so the time it is held bounds an account's rate. On PostgreSQL it is held for
    three round trips: the lock (with the idempotency lookup, the order's id and
    risk control's reads), one statement with every write, and the commit. What
    needs no lock (field and market-rule checks, building the order) is done
    before it is taken.
    """
    account_id = account_id_by_name(data.account)
    client_order_id = str(data.client_order_id) if data.client_order_id else ""
    prepared = _prepare(data, account_id, actor=actor, source=source)
    placed: list[Order] = []  # the order as the broker call left it, when this request made it
    try:
        with transaction.atomic():
            # The idempotency lookup rides on the lock's round trip. It may read from
            # just before the lock was granted; a twin committed in between is then
            # caught by the unique key on insert (the IntegrityError below).
            locked = account_lock_reading(account_id, also=(_EXISTING_SQL, [client_order_id]), allocate_for=Order,
                                          then=prepared.reads.statements if prepared else None)
            account = _ACCOUNT_SEEN[account_id] = locked.account
            if account.status != Account.Status.ACTIVE:
                raise Forbidden(f"账户已停用 (account {account.name} is disabled)")
            if locked.also is not None:  # the order of this client_order_id
                return SubmitResult(Order.objects.select_related("account", "instrument").get(pk=locked.also), False)
            prefetched = None
            if prepared is not None and prepared.fits(account):
                order, quote = prepared.order, prepared.quote
                order.account = account
                if locked.then_rows is not None:
                    prefetched = (prepared.reads, locked.then_rows)
            else:
                checked = order_check(data, account=account)
                order, quote = _build_order(checked, actor=actor, source=source), checked.quote
            admission = _admission(order, quote=quote, prefetched=prefetched)
            order.risk_verdicts = admission.verdicts
            order.admitted_at = now()
            audits: list[AuditEvent] = []
            freezes = admission.event != OrderEvent.RISK_REJECTED
            if freezes:
                order.frozen_amount, order.frozen_quantity = admission.freeze_amount, admission.freeze_quantity
            changes: list[StatusChange] = []  # written with the order below
            if admission.event is not None:
                order_apply_event(order, admission.event, actor=actor, reason=admission.reason, defer=changes)
            claimed = admission.event is None and _request_is_worker()
            if claimed:  # this request makes the broker call itself: SUBMITTING commits with the order
                order.submitted_at = order.admitted_at
                order_apply_event(order, OrderEvent.SUBMIT_STARTED, actor=WORKER, defer=changes)
            new_rows: list[models.Model] = []
            if locked.allocated_id is not None:
                order.pk = locked.allocated_id
                new_rows.append(order)  # inserted with the writes below, in one statement
            else:  # no key drawn with the lock (SQLite): the INSERT goes first
                order.save(force_insert=True)
            writes: list[tuple[str, list[Any]]] = []
            risk_order_recorded(order, defer=writes)  # risk counters (run below) + a RiskEvent per failing verdict
            audits.append(_created_event(order, actor))
            audits.extend(change.audit(order) for change in changes)
            posts: list[LedgerPost] = []
            if freezes:
                _freeze(order, admission, actor=actor, posts=posts)
            if claimed:
                transaction.on_commit(lambda: placed.append(_place_claimed(order)))
            elif admission.event is None:
                _dispatch_on_commit(order, SUBMIT)
            ledger_flush(account, posts, audits, writes, new_rows=new_rows)  # one round trip for every write
    except IntegrityError:
        # A concurrent request with the same client_order_id won the race.
        existing = _existing(Account(pk=account_id), client_order_id)
        if existing is None:
            raise
        return SubmitResult(existing, False)
    if placed:
        order = placed[0]
    else:
        reread_after_inline_worker(order)
    return SubmitResult(order, True)


def _tasks_run_inline() -> bool:
    from trading.celery import app

    return bool(app.conf.task_always_eager)


def _request_is_worker() -> bool:
    """Whether the request itself makes the broker call (in-process tasks, no relay).

    Then intake claims the order for the broker (NEW -> SUBMITTING) in its own
    transaction and calls the broker after commit, as the worker would, without
    a transaction of its own for the claim. A process that dies in between
    leaves a SUBMITTING order, which the sweep reconciles and re-sends like a
    worker's.
    """
    return settings.ORDERS_DISPATCH != "relay" and _tasks_run_inline()


def _place_claimed(order: Order) -> Order:
    """After commit: the broker call for an order claimed at intake."""
    try:
        return _place(broker_for(order.account), order)
    except Exception:  # the order stays SUBMITTING: the sweep reconciles and re-sends it
        log.exception("broker call for order %s failed; the outbox sweep will reconcile it", order.pk)
        order.refresh_from_db()
        return order


def reread_after_inline_worker(order: Order) -> None:
    """With in-process tasks the worker has already moved ``order`` on: read its row again.

    Its account and instrument are kept (the same rows), so answering with the
    order reads nothing more.
    """
    if not _tasks_run_inline():
        return
    account, instrument = order.account, order.instrument
    order.refresh_from_db()
    order.account, order.instrument = account, instrument


@dataclass
class BatchItemResult:
    index: int
    status_code: int
    order: Order | None = None
    error: Any = None
    code: str | None = None


def batch_size_check(count: int) -> None:
    """422 for a batch over ORDERS_MAX_BATCH items (checked before any item is looked at)."""
    if count > settings.ORDERS_MAX_BATCH:
        limit = settings.ORDERS_MAX_BATCH
        raise InvalidOrder.single("orders", "max_items", f"批量委托最多{limit}笔 (at most {limit} orders per batch; got {count})")


def order_submit_batch(items: list[OrderInput], *, actor: Actor, allowed: Callable[[str], bool]) -> list[BatchItemResult]:
    """Submit several orders, each in its own transaction: one bad item does not sink the others,
    and every item is answered (an item that fails unexpectedly answers 500, logged; the items
    committed before and after it stand). ``allowed`` may raise NotFound/Forbidden itself, so that
    an item is refused exactly as a single order would be."""
    batch_size_check(len(items))
    results: list[BatchItemResult] = []
    for index, item in enumerate(items):
        try:
            if not allowed(item.account):
                raise Forbidden(f"API密钥无权使用账户 {item.account} (this key may not use account {item.account})")
            result = order_submit(item, actor=actor)
            results.append(BatchItemResult(index, 201 if result.created else 200, order=result.order))
        except TradingError as exc:
            results.append(BatchItemResult(index, exc.status_code, error=exc.detail(), code=exc.code))
        except Exception:
            log.exception("batch item %s failed unexpectedly", index)
            results.append(BatchItemResult(index, 500, error="服务器内部错误 (internal error)", code="internal_error"))
    return results


def order_dry_run(data: OrderInput) -> RiskOutcome:
    """What intake would decide for ``data`` now, creating nothing (POST /risk/check).

    The same checks as ``order_submit``, through the same code: fields and market rules
    (``order_check``), holdings and cash and risk control (``_admission``). Raises what intake
    raises (InvalidOrder 422, NotFound, Forbidden); else answers risk control's outcome. Runs in
    a transaction that is always rolled back (``_admission`` may create an empty position row).
    It takes the account lock like intake (the lock order: a position row is only locked under
    its account's lock), but reserves nothing: the answer is a forecast.
    """
    account_id = account_id_by_name(data.account)
    with transaction.atomic():
        account = account_lock(account_id)
        if account.status != Account.Status.ACTIVE:
            raise Forbidden(f"账户已停用 (account {account.name} is disabled)")
        checked = order_check(data, account=account)
        order = _build_order(checked, actor=Actor.system("risk-dry-run"), source=OrderSource.API)
        admission = _admission(order, quote=checked.quote)
        transaction.set_rollback(True)
    return RiskOutcome([Verdict(**verdict) for verdict in admission.verdicts])


def account_by_name(name: str) -> Account:
    account = Account.objects.filter(name=name).first()
    if account is None:
        raise NotFound(f"账户不存在 (unknown account {name!r})")
    return account


# --------------------------------------------------------------------------- freezes


def _release_freezes(order: Order, *, actor: Actor, posts: list[LedgerPost], position: Position | None = None, memo: str = "委托结束解冻") -> None:
    """Give back what ``order`` still holds (cash of a buy, shares of a sell). Caller holds the account lock."""
    if order.frozen_amount > 0:
        cash_post(order.account, kind=CashEntryKind.UNFREEZE, amount=-order.frozen_amount, actor=actor, order=order, memo=memo, defer=posts)
        order.frozen_amount = ZERO
    if order.frozen_quantity > 0:
        position = position or position_for_update(order.account, order.instrument)
        position_unfreeze(position, order.frozen_quantity)
        order.frozen_quantity = 0


def _lock_order(order_id: int) -> tuple[Account, Order]:
    """Lock the order's account, then the order (the fixed lock order, README "Locks").

    Only those two rows: ``of=("self",)`` keeps the joined instrument row unlocked.
    """
    account_id = Order.objects.filter(pk=order_id).values_list("account_id", flat=True).first()
    if account_id is None:
        raise NotFound(f"委托不存在 (order {order_id} not found)")
    account = account_lock(account_id)
    order = Order.objects.select_for_update(of=("self",)).select_related("instrument").get(pk=order_id)
    order.account = account
    return account, order


def _lock_order_alone(order_id: int) -> Order | None:
    """Lock one order row and nothing else (a worker that changes only the order's status).

    A transaction that takes it never takes an account lock afterwards, so it cannot
    close a cycle with the paths that lock the account first.
    """
    return Order.objects.select_for_update(of=("self",)).select_related("account", "instrument").filter(pk=order_id).first()


def _relock_alone(order: Order) -> Order:
    """``_lock_order_alone`` for an order read earlier in this process: its row again, locked,
    with the account and instrument rows already in hand (not read again)."""
    locked = Order.objects.select_for_update().get(pk=order.pk)
    locked.account, locked.instrument = order.account, order.instrument
    return locked


# --------------------------------------------------------------------------- cancel and modify

MODIFIABLE_STATUSES = frozenset({OrderStatus.NEW, OrderStatus.PENDING_APPROVAL, OrderStatus.SUBMITTED, OrderStatus.PARTIALLY_FILLED})


def _waiting_replacement(order: Order) -> bool:
    """A replacement not yet admitted: it waits for its original's cancel and holds nothing."""
    return order.status == OrderStatus.NEW and order.admitted_at is None


def order_cancel(*, order_id: int, actor: Actor, reason: str = "") -> Order:
    """Cancel an order. Before it reached the broker it ends at once; a working order moves
    to CANCEL_REQUESTED and the broker is asked. Terminal orders answer 409."""
    with transaction.atomic():
        account, order = _lock_order(order_id)
        _cancel_locked(account, order, actor=actor, reason=reason)
    reread_after_inline_worker(order)  # the in-process worker already asked the broker
    return order


def _cancel_locked(account: Account, order: Order, *, actor: Actor, reason: str = "") -> None:
    """The cancel of ``order``; the caller holds the account lock, then the order's."""
    if order.is_terminal:
        raise Conflict(f"委托已是终态 {order.status}, 不能撤单 (order {order.pk} is already {order.status})")
    if order.status == OrderStatus.CANCEL_REQUESTED:
        return
    if order.status in (OrderStatus.SUBMITTING, OrderStatus.UNKNOWN):
        raise Conflict(f"委托正在报送券商, 请稍后再撤 (order {order.pk} is {order.status}; retry the cancel shortly)")
    posts: list[LedgerPost] = []
    if order.status in (OrderStatus.NEW, OrderStatus.PENDING_APPROVAL):
        _release_freezes(order, actor=actor, posts=posts, memo="撤单解冻")
        order_apply_event(order, OrderEvent.CANCELLED, actor=actor, reason=reason or "撤单",
                          update_fields=["frozen_amount", "frozen_quantity"])
        ledger_flush(account, posts)
        _on_terminal(order, actor=actor)
    else:
        order_apply_event(order, OrderEvent.CANCEL_REQUESTED, actor=actor, reason=reason or "撤单申请")
        _dispatch_on_commit(order, CANCEL)
    risk_cancel_recorded(account=account, order=order)  # orders + cancels rates; never blocks


def order_modify(*, order_id: int, actor: Actor, price: Any = None, quantity: Any = None) -> Order:
    """Modify price and/or quantity as cancel-and-replace; returns the replacement.

    One transaction under the account lock, then the original's: the replacement is
    checked as intake would check it (fields, market rules, holdings with the original's
    freeze counted as available, risk control), created, and the original's cancel is
    requested. Anything that cannot be admitted raises (422, 409) with nothing written
    and the original untouched. An order has at most one live replacement: a second
    modify finds the original already cancelling (409).

    ``quantity`` is the new total of the order: the replacement asks for it minus what
    the original has filled by the time its cancel is confirmed. It is admitted for good
    (risk verdicts, freeze) and sent only then (``_on_terminal``); until then it is NEW
    without ``admitted_at`` and nothing sends it.
    """
    if price is None and quantity is None:
        raise InvalidOrder.single("price", "required", "须指定新价格或新数量 (give price and/or quantity)")
    with transaction.atomic():
        account, original = _lock_order(order_id)
        if original.status not in MODIFIABLE_STATUSES or _waiting_replacement(original):
            why = "等待原委托撤单 (waiting for its original's cancel)" if _waiting_replacement(original) else original.status
            raise Conflict(f"委托状态为 {why}, 不能改单 (order {original.pk} is {why} and cannot be modified)")
        if Order.objects.filter(replaces=original).exclude(status__in=TERMINAL_STATUSES).exists():
            raise Conflict(f"委托 #{original.pk} 已有改单在进行中 (order {original.pk} already has a live replacement)")
        data = OrderInput(
            account=account.name,
            symbol=original.instrument.symbol,
            side=original.side,
            order_type=original.order_type,
            quantity=original.quantity if quantity is None else quantity,
            price=original.price if price is None else price,
            strategy=original.strategy,
            protection_price=original.protection_price,
        )
        checked = order_check(data, account=account)
        if checked.quantity <= original.filled_quantity:
            raise InvalidOrder.single(
                "quantity", "above_filled", f"新数量须大于已成交数量 {original.filled_quantity} (new quantity must exceed the filled {original.filled_quantity})"
            )
        generation = Order.objects.filter(account=account, client_order_id__startswith=f"{original.client_order_id}~").count() + 1
        checked.client_order_id = f"{original.client_order_id}~{generation}"[:64]
        replacement = _build_order(checked, actor=actor, source=original.source, replaces=original)
        _modify_admissible(replacement, original, quote=checked.quote, changed="quantity" if quantity is not None else "price")
        replacement.status_reason = "等待原委托撤单确认 (waiting for the original order's cancel)"
        replacement.save()
        _created_event(replacement, actor, reason=f"改单替换 #{original.pk}").save()
        _cancel_locked(account, original, actor=actor, reason=f"改单: 由 #{replacement.pk} 替换")
    reread_after_inline_worker(replacement)
    return replacement


def _modify_admissible(replacement: Order, original: Order, *, quote: Quote | None, changed: str) -> None:
    """Whether ``replacement`` would be admitted once ``original`` is gone: holdings (with what the
    original holds counted back) and risk control, as it stands now. Writes nothing; raises
    InvalidOrder (422) naming the field and the rule. A REVIEW verdict is no refusal: the
    replacement is held for an operator when it is admitted."""
    probe_quantity = replacement.quantity - original.filled_quantity
    full_quantity, replacement.quantity = replacement.quantity, probe_quantity
    try:
        admission = _admission(replacement, quote=quote, releasing=original)
    finally:
        replacement.quantity = full_quantity
    if admission.event == OrderEvent.RISK_REJECTED:
        failed = next((v for v in admission.verdicts if not v.get("passed") and v.get("action") == "REJECT"), {})
        rule = str(failed.get("rule") or "risk")
        raise InvalidOrder.single(changed, rule, f"风控拒绝改单 (risk control refuses the modified order): {admission.reason}")


def _replacement_waiting_for(order: Order) -> Order | None:
    """The replacement (a modify) waiting for ``order`` to end, locked. Caller holds the account lock."""
    replacement = (
        Order.objects.select_for_update(of=("self",)).select_related("instrument")
        .filter(replaces=order, status=OrderStatus.NEW, admitted_at__isnull=True).first()
    )
    if replacement is not None:
        replacement.account = order.account
    return replacement


def _on_terminal(order: Order, *, actor: Actor) -> None:
    """After an order ends: admit a replacement that was waiting for it. Caller holds the account lock."""
    replacement = _replacement_waiting_for(order)
    if replacement is None:  # an order ends once, so this runs once per original
        return
    remaining = replacement.quantity - order.filled_quantity
    if remaining <= 0:
        order_apply_event(replacement, OrderEvent.CANCELLED, actor=actor, reason="原委托已全部成交, 替换单取消 (the original filled completely)")
        return
    if remaining != replacement.quantity:
        replacement.quantity = remaining
        replacement.save(update_fields=["quantity"])
    posts: list[LedgerPost] = []
    try:
        with transaction.atomic():
            _admit_saved(replacement, actor=actor, quote=quote_latest(replacement.instrument_id), posts=posts)
            ledger_flush(order.account, posts)
    except InvalidOrder as exc:
        replacement.admitted_at = now()
        order_apply_event(replacement, OrderEvent.RISK_REJECTED, actor=actor, reason=exc.message, update_fields=["admitted_at"])
    else:
        if replacement.status == OrderStatus.NEW:
            replacement.status_reason = ""
            replacement.save(update_fields=["status_reason"])


def _replacement_abandon(order: Order, *, actor: Actor, reason: str) -> None:
    """The original of a waiting replacement stays at the broker (its cancel was refused):
    the replacement ends as CANCELLED, having held nothing. Caller holds the account lock."""
    replacement = _replacement_waiting_for(order)
    if replacement is not None:
        order_apply_event(replacement, OrderEvent.CANCELLED, actor=actor, reason=reason)


# --------------------------------------------------------------------------- broker side


def _stale(order: Order) -> bool:
    return order.updated_at < now() - timedelta(seconds=settings.ORDERS_SUBMITTING_STALE_SECONDS)


def order_send_to_broker(*, order_id: int) -> Order | None:
    """Worker: send a NEW order to its broker exactly once.

    The move to SUBMITTING commits before the broker call, so a worker that
    dies mid-call leaves a trace; a SUBMITTING order is only re-sent after
    reconciliation shows the broker does not have it.
    """
    with transaction.atomic():
        order = _lock_order_alone(order_id)
        if order is None:
            return None
        if order.status == OrderStatus.NEW and order.admitted_at is None:
            # Never sent unchecked: a replacement is admitted (risk, freeze) when its original ends.
            log.error("order %s was never admitted (a replacement waiting for its original); not sent", order.pk)
            return order
        if order.status == OrderStatus.SUBMITTING:
            if not _stale(order):
                return order  # another worker is on it right now
            order.save(update_fields=["updated_at"])  # claim it: others now see it fresh
            resend = True
        elif order.status == OrderStatus.NEW:
            order.submitted_at = now()
            order_apply_event(order, OrderEvent.SUBMIT_STARTED, actor=WORKER, update_fields=["submitted_at"])
            resend = False
        else:
            return order
    broker = broker_for(order.account)
    if resend:
        found = _find_at_broker(broker, order)
        if found is not None:
            return order_sync(order_id=order.pk, broker_order=found, trades=broker.query_order(found.broker_order_id).trades)
    return _place(broker, order)


def _find_at_broker(broker: Any, order: Order) -> BrokerOrder | None:
    for candidate in broker.query_orders():
        if candidate.client_ref == str(order.pk) or (order.broker_order_id and candidate.broker_order_id == order.broker_order_id):
            return candidate
    return None


def _place(broker: Any, order: Order) -> Order:
    """Place a SUBMITTING order and record the broker's answer."""
    request = OrderRequest(
        client_ref=str(order.pk),
        symbol=order.instrument.symbol,
        side=order.side,
        order_type=order.order_type,
        quantity=order.quantity,
        price=order.price,
        protection_price=order.protection_price,
    )
    broker_actor = Actor.broker(order.account.broker_kind)
    try:
        ack = broker.place_order(request)
    except BrokerTimeout as exc:
        with transaction.atomic():
            _, locked = _lock_order(order.pk)
            if locked.status == OrderStatus.SUBMITTING:
                order_apply_event(locked, OrderEvent.BROKER_TIMED_OUT, actor=broker_actor, reason=exc.message)
        return locked
    except BrokerError as exc:
        with transaction.atomic():
            account, locked = _lock_order(order.pk)
            if locked.status == OrderStatus.SUBMITTING:
                posts: list[LedgerPost] = []
                _release_freezes(locked, actor=broker_actor, posts=posts, memo="券商拒单解冻")
                order_apply_event(locked, OrderEvent.BROKER_REJECTED, actor=broker_actor, reason=exc.message,
                                  update_fields=["frozen_amount", "frozen_quantity"])
                ledger_flush(account, posts)
                risk_post_trade(account=account, order=locked)  # consecutive broker rejections
                _on_terminal(locked, actor=broker_actor)
        return locked
    with transaction.atomic():
        locked = _relock_alone(order)
        if locked.status == OrderStatus.SUBMITTING:
            locked.broker_order_id = ack.broker_order_id
            order_apply_event(locked, OrderEvent.BROKER_ACCEPTED, actor=broker_actor, reason=ack.message,
                              extra={"broker_order_id": ack.broker_order_id}, update_fields=["broker_order_id"])
    # Pick up fills the broker made at once (the paper broker matches on arrival) by reading this
    # one order back, not the account's open orders. Polls skip an order while it is SUBMITTING,
    # so this read, after the answer is recorded, is what catches a fill made in between.
    snapshot = broker.query_order(ack.broker_order_id)
    found = snapshot.orders[0] if snapshot.orders else None
    if found is None or _nothing_new(locked, found):
        return locked
    return order_sync(order_id=locked.pk, broker_order=found, trades=snapshot.trades)


def order_cancel_at_broker(*, order_id: int) -> Order | None:
    """Worker: ask the broker to cancel a CANCEL_REQUESTED order, then read back its state."""
    order = Order.objects.select_related("account", "instrument").filter(pk=order_id).first()
    if order is None:
        return None
    if order.status != OrderStatus.CANCEL_REQUESTED:
        return order
    broker = broker_for(order.account)
    refusal: str | None = None
    try:
        broker.cancel_order(order.broker_order_id)
    except BrokerTimeout:
        return order  # the sweep asks again; the poll sees the outcome either way
    except BrokerError as exc:
        # Usually "already filled/cancelled": the poll below records the truth.
        refusal = exc.message
        audit_record(actor=Actor.broker(order.account.broker_kind), action="order.cancel_refused", object_type="order",
                     object_id=order.pk, account=order.account.name, reason=exc.message)
    # Read this one order back and record what the broker says (cancelled, filled meanwhile, ...).
    snapshot = broker.query_order(order.broker_order_id)
    found = snapshot.orders[0] if snapshot.orders else None
    if found is None:
        order.refresh_from_db()
        return order
    order = order_sync(order_id=order.pk, broker_order=found, trades=snapshot.trades)
    if refusal is not None and order.status == OrderStatus.CANCEL_REQUESTED and found.status in _RESTING:
        order = order_cancel_refused(order_id=order.pk, reason=refusal)  # it rests there: the refusal stands
    return order


def order_cancel_refused(*, order_id: int, reason: str) -> Order:
    """The broker refused to cancel an order that still rests there (e.g. during the 9:20-9:25
    call auction): it returns to its working status, and a replacement waiting for it (a modify)
    is cancelled, since the original stays live."""
    with transaction.atomic():
        account, order = _lock_order(order_id)
        if order.status != OrderStatus.CANCEL_REQUESTED:
            return order
        broker_actor = Actor.broker(account.broker_kind)
        order_apply_event(order, OrderEvent.CANCEL_REJECTED, actor=broker_actor, reason=f"券商拒绝撤单 (cancel refused): {reason}")
        if order.filled_quantity:
            order_apply_event(order, OrderEvent.PARTIALLY_FILLED, actor=broker_actor, reason=order.status_reason)
        _replacement_abandon(order, actor=broker_actor,
                             reason=f"原委托撤单被拒, 改单未生效 (the original's cancel was refused; modify abandoned): {reason}")
    return order


_RECONCILED = {
    BrokerOrderStatus.OPEN: OrderEvent.RECONCILED_OPEN,
    BrokerOrderStatus.PARTIALLY_FILLED: OrderEvent.RECONCILED_PARTIALLY_FILLED,
    BrokerOrderStatus.FILLED: OrderEvent.RECONCILED_FILLED,
    BrokerOrderStatus.CANCELLED: OrderEvent.RECONCILED_CANCELLED,
    BrokerOrderStatus.REJECTED: OrderEvent.RECONCILED_REJECTED,
    BrokerOrderStatus.EXPIRED: OrderEvent.RECONCILED_EXPIRED,
}


def _target_event(order: Order, broker_order: BrokerOrder, new_fills: int) -> OrderEvent | None:
    status = broker_order.status
    if order.status in (OrderStatus.UNKNOWN, OrderStatus.SUBMITTING):
        if order.status == OrderStatus.SUBMITTING:
            # The broker has it although its answer never reached us: record the
            # answer it gave (then, via order_sync, what happened since).
            return OrderEvent.BROKER_REJECTED if status == BrokerOrderStatus.REJECTED else OrderEvent.BROKER_ACCEPTED
        if order.filled_quantity >= order.quantity:
            return OrderEvent.RECONCILED_FILLED
        if status == BrokerOrderStatus.OPEN and order.filled_quantity:
            return OrderEvent.RECONCILED_PARTIALLY_FILLED
        return _RECONCILED[status]
    if order.filled_quantity >= order.quantity:
        return OrderEvent.FILLED
    if status == BrokerOrderStatus.CANCELLED:
        return OrderEvent.CANCELLED
    if status == BrokerOrderStatus.EXPIRED:
        return OrderEvent.EXPIRED
    if status == BrokerOrderStatus.REJECTED:
        return OrderEvent.BROKER_REJECTED
    if new_fills:
        return OrderEvent.PARTIALLY_FILLED
    return None


def order_sync(*, order_id: int, broker_order: BrokerOrder, trades: list[BrokerTrade]) -> Order:
    """Bring one order in line with the broker's record of it: new fills update the
    position and cash, and the status follows the broker's. Idempotent."""
    with transaction.atomic():
        account, order = _lock_order(order_id)
        if order.is_terminal:
            return order
        broker_actor = Actor.broker(account.broker_kind)
        known = set(order.fills.values_list("broker_trade_id", flat=True))
        posts: list[LedgerPost] = []
        new_fills = 0
        position: Position | None = None
        for trade in sorted(trades, key=lambda t: (t.filled_at, t.broker_trade_id)):
            if trade.broker_trade_id in known:
                continue
            if trade.quantity > order.remaining_quantity:
                log.error("broker trade %s overfills order %s; ignored", trade.broker_trade_id, order.pk)
                continue
            position = position or position_for_update(account, order.instrument)
            _apply_fill(account, order, position, trade, actor=broker_actor, posts=posts)
            new_fills += 1
        if not order.broker_order_id:
            order.broker_order_id = broker_order.broker_order_id
        event = _target_event(order, broker_order, new_fills)
        fields = ["filled_quantity", "filled_amount", "fees_paid", "commission_charged", "frozen_amount", "frozen_quantity", "broker_order_id"]
        if event is not None:
            order_apply_event(order, event, actor=broker_actor, reason=broker_order.message, update_fields=fields,
                              extra={"filled_quantity": order.filled_quantity})
            if event == OrderEvent.BROKER_ACCEPTED and order.status == OrderStatus.SUBMITTED:
                second = _target_event(order, broker_order, new_fills)
                if second is not None:
                    order_apply_event(order, second, actor=broker_actor, reason=broker_order.message, update_fields=fields)
        elif new_fills:
            order.save(update_fields=[*fields, "updated_at"])
        if order.is_terminal:
            _release_freezes(order, actor=broker_actor, posts=posts, position=position)
            order.save(update_fields=["frozen_amount", "frozen_quantity"])
        ledger_flush(account, posts)
        risk_post_trade(account=account, order=order, new_fills=new_fills)  # loss, drawdown, broker rejections
        if order.is_terminal:
            _on_terminal(order, actor=broker_actor)
    return order


def _apply_fill(account: Account, order: Order, position: Position, trade: BrokerTrade, *, actor: Actor, posts: list[LedgerPost]) -> Fill:
    """Record one broker trade: the fill row, the order's totals, position and cash. Caller holds the locks."""
    fees = trade.fees
    fill = Fill.objects.create(
        order=order,
        broker_trade_id=trade.broker_trade_id,
        quantity=trade.quantity,
        price=trade.price,
        amount=trade.amount,
        commission=trade.commission,
        stamp_duty=trade.stamp_duty,
        transfer_fee=trade.transfer_fee,
        other_fees=trade.other_fees,
        fees=fees,
        filled_at=trade.filled_at,
        trading_day=trade.trading_day,
    )
    remaining_before = order.remaining_quantity
    order.filled_quantity += trade.quantity
    order.filled_amount += trade.amount
    order.fees_paid += fees
    order.commission_charged += trade.commission
    if order.side == Side.BUY:
        release = order.frozen_amount if order.remaining_quantity == 0 else (order.frozen_amount * trade.quantity / remaining_before).quantize(Decimal("0.01"))
        if release:
            cash_post(account, kind=CashEntryKind.UNFREEZE, amount=-release, actor=actor, order=order, fill=fill, memo="成交解冻", defer=posts)
            order.frozen_amount -= release
        cash_post(account, kind=CashEntryKind.FILL, amount=-trade.amount, actor=actor, order=order, fill=fill, memo=f"买入 {order.instrument.symbol}", defer=posts)
    else:
        order.frozen_quantity = max(order.frozen_quantity - trade.quantity, 0)
        cash_post(account, kind=CashEntryKind.FILL, amount=trade.amount, actor=actor, order=order, fill=fill, memo=f"卖出 {order.instrument.symbol}", defer=posts)
    if fees:
        cash_post(account, kind=CashEntryKind.FEE, amount=-fees, actor=actor, order=order, fill=fill, memo="交易费用", defer=posts)
    position_apply_fill(position, side=order.side, quantity=trade.quantity, amount=trade.amount, fees=fees,
                        trading_day=trade.trading_day, t0=market_rules.is_t0(order.instrument))
    audit_record(actor=actor, action="order.filled", object_type="order", object_id=order.pk, account=account.name,
                 after={"fill": fill.pk, "broker_trade_id": trade.broker_trade_id, "quantity": trade.quantity,
                        "price": str(trade.price), "fees": str(fees)})
    return fill


# Where this process's last poll of each account left off at its broker (BrokerChanges.cursor).
_POLL_CURSORS: dict[int, str] = {}
_POLLED_STATUSES = (*WORKING_STATUSES, OrderStatus.UNKNOWN, OrderStatus.SUBMITTING)


def _orders_named_by(account: Account, broker_orders: list[BrokerOrder]) -> list[Order]:
    """This account's polled orders among those the broker listed: looked up by our id (the
    client_ref) and by broker order id, on their own indexes, never by scanning the open orders."""
    refs = sorted({int(o.client_ref) for o in broker_orders if o.client_ref.isdigit()})
    ids = sorted({o.broker_order_id for o in broker_orders if o.broker_order_id})
    found: dict[int, Order] = {}
    for start in range(0, max(len(refs), len(ids)), 400):  # within SQLite's limit of bound parameters
        chunk = Q(pk__in=refs[start:start + 400]) | Q(broker_order_id__in=ids[start:start + 400])
        for order in Order.objects.filter(chunk).select_related("instrument"):
            if order.account_id == account.pk and order.status in _POLLED_STATUSES:
                found[order.pk] = order
    return list(found.values())


def account_poll(*, account_id: int) -> int:
    """Worker: bring the account's orders that are working, UNKNOWN or stuck SUBMITTING in line
    with the broker. Returns how many orders changed.

    It asks the broker only for what changed since this process last polled the account
    (``query_changes`` with the cursor kept in ``_POLL_CURSORS``) and syncs only those orders, so
    a poll (e.g. the one after each placement) costs what changed, not what rests open. The
    first poll in a process, an adapter that cannot tell what changed, or an order stuck
    SUBMITTING/UNKNOWN that the changes do not mention, reads the broker's full list instead.
    The cursor moves on only after every order was synced."""
    account = Account.objects.filter(pk=account_id).first()
    if account is None:
        return 0
    polled = Order.objects.filter(account=account, status__in=_POLLED_STATUSES)
    if not polled.exists():
        return 0
    broker = broker_for(account)
    changes = broker.query_changes(_POLL_CURSORS.get(account_id))
    in_flight: list[Order] = []
    if not changes.complete:
        in_flight = list(polled.filter(status__in=[OrderStatus.UNKNOWN, OrderStatus.SUBMITTING]).select_related("instrument"))
        mentioned = {o.client_ref for o in changes.orders} | {o.broker_order_id for o in changes.orders}
        if any(_stale(o) and str(o.pk) not in mentioned and o.broker_order_id not in mentioned for o in in_flight):
            changes = broker.query_changes(None)  # whether the broker has it needs its full list
    if changes.complete:
        open_orders = list(polled.select_related("instrument"))
    else:
        by_pk = {o.pk: o for o in in_flight}
        by_pk.update((o.pk, o) for o in _orders_named_by(account, changes.orders))
        open_orders = sorted(by_pk.values(), key=lambda o: o.pk)
    by_id = {o.broker_order_id: o for o in changes.orders}
    by_ref = {o.client_ref: o for o in changes.orders if o.client_ref}
    trades_by_order: dict[str, list[BrokerTrade]] = {}
    for trade in changes.trades:
        trades_by_order.setdefault(trade.broker_order_id, []).append(trade)
    changed = 0
    for order in open_orders:
        found = by_id.get(order.broker_order_id) if order.broker_order_id else None
        found = found or by_ref.get(str(order.pk))
        if order.status == OrderStatus.SUBMITTING and not _stale(order):
            continue  # its worker is still waiting for the broker's answer
        if found is None:
            if not changes.complete:
                continue  # unchanged at the broker
            if order.status in (OrderStatus.UNKNOWN, OrderStatus.SUBMITTING) and _stale(order):
                _resend_missing(broker, order)
                changed += 1
            elif order.status in WORKING_STATUSES:
                log.warning("order %s (%s) is working here but unknown to broker %s", order.pk, order.broker_order_id, account.broker_kind)
            continue
        order_trades = trades_by_order.get(found.broker_order_id, [])
        if _nothing_new(order, found):
            continue
        order_sync(order_id=order.pk, broker_order=found, trades=order_trades)
        changed += 1
    if changes.cursor is None:
        _POLL_CURSORS.pop(account_id, None)
    else:
        _POLL_CURSORS[account_id] = changes.cursor
    return changed


_RESTING = (BrokerOrderStatus.OPEN, BrokerOrderStatus.PARTIALLY_FILLED)


def _nothing_new(order: Order, broker_order: BrokerOrder) -> bool:
    """Whether the broker's record adds nothing to ours: working here, resting there, same fills."""
    return (order.status in WORKING_STATUSES and broker_order.status in _RESTING
            and broker_order.filled_quantity == order.filled_quantity)


def _resend_missing(broker: Any, order: Order) -> None:
    """The broker has no record of an order whose answer was lost: send it again."""
    with transaction.atomic():
        account, locked = _lock_order(order.pk)
        if locked.status not in (OrderStatus.UNKNOWN, OrderStatus.SUBMITTING) or not _stale(locked):
            return  # somebody else resolved or claimed it meanwhile
        if locked.trading_day < account_trading_day(account, now()):  # a day order is never sent after its day
            _expire_locked(account, locked, OrderEvent.RECONCILED_EXPIRED, actor=Actor.system("reconciliation"),
                           reason="券商无此委托且交易日已过, 不再报送 (not at the broker and its trading day is over)")
            return
        if locked.status == OrderStatus.UNKNOWN:
            order_apply_event(locked, OrderEvent.RECONCILED_MISSING, actor=Actor.system("reconciliation"),
                              reason="券商无此委托, 重新报送 (not found at the broker; sending again)")
        else:
            locked.save(update_fields=["updated_at"])  # claim it: others now see it fresh
    _place(broker, locked)


def _dispatch_owed(*, dispatched_before: datetime | None = None, updated_before: datetime | None = None,
                   limit: int = 1000) -> int:
    """Enqueue the broker calls that order rows say are owed: NEW orders (submit) and
    CANCEL_REQUESTED ones (cancel) never dispatched, or last dispatched before
    ``dispatched_before``. Rows are claimed with SKIP LOCKED, so several relays
    never enqueue one row twice. Returns how many were enqueued."""

    owed = Q(dispatched_at__isnull=True)
    if dispatched_before is not None:
        owed |= Q(dispatched_at__lt=dispatched_before)
    # A NEW row without admitted_at is a replacement waiting for its original's cancel: not owed.
    unadmitted = Q(status=OrderStatus.NEW, admitted_at__isnull=True)
    rows = Order.objects.filter(owed, status__in=[OrderStatus.NEW, OrderStatus.CANCEL_REQUESTED]).exclude(unadmitted)
    if updated_before is not None:
        rows = rows.filter(updated_at__lt=updated_before)
    with transaction.atomic():
        claimed = list(rows.select_for_update(skip_locked=True, of=("self",)).order_by("pk").values_list("pk", "status")[:limit])
        if not claimed:
            return 0
        Order.objects.filter(pk__in=[pk for pk, _ in claimed]).update(dispatched_at=now())
    for order_id, status in claimed:
        _enqueue(order_id, SUBMIT if status == OrderStatus.NEW else CANCEL)
    return len(claimed)


def outbox_relay_once() -> int:
    """One pass of the outbox relay: enqueue every broker call owed and not yet dispatched."""
    return _dispatch_owed()


def outbox_sweep() -> int:
    """Re-enqueue broker calls still owed after the grace period: not dispatched at all
    (the relay or the on-commit hook missed them) or dispatched but never carried out
    (the message was lost). Returns how many were enqueued."""
    cutoff = now() - timedelta(seconds=settings.ORDERS_OUTBOX_GRACE_SECONDS)
    return _dispatch_owed(dispatched_before=cutoff, updated_before=cutoff)


def orders_expire_day(*, at: datetime | None = None) -> int:
    """Expire orders that never reached the broker and whose trading day is over.

    Orders resting at the broker expire when the broker says so (account_poll).
    """
    at = at or now()
    expired = 0
    today = {a.pk: account_trading_day(a, at) for a in Account.objects.only("pk", "session_mode")}
    candidates = Order.objects.filter(status__in=[OrderStatus.NEW, OrderStatus.PENDING_APPROVAL]).values_list("pk", "account_id", "trading_day")
    for order_id, account_id, trading_day in candidates:
        if trading_day >= today[account_id]:
            continue
        with transaction.atomic():
            account, order = _lock_order(order_id)
            if order.status not in (OrderStatus.NEW, OrderStatus.PENDING_APPROVAL):
                continue
            _expire_locked(account, order, OrderEvent.EXPIRED, actor=Actor.system("expiry"),
                           reason="交易日结束未报 (trading day over)")
        expired += 1
    return expired


def _expire_locked(account: Account, order: Order, event: OrderEvent, *, actor: Actor, reason: str) -> None:
    """End an order that never reached the broker and whose trading day is over; give back its freezes.
    Caller holds the account and order locks."""
    posts: list[LedgerPost] = []
    _release_freezes(order, actor=actor, posts=posts, memo="过期解冻")
    order_apply_event(order, event, actor=actor, reason=reason, update_fields=["frozen_amount", "frozen_quantity"])
    ledger_flush(account, posts)
    _on_terminal(order, actor=actor)


def accounts_poll_later(account_names: Iterable[str]) -> None:
    """Enqueue a status poll of each named account (e.g. after a quote filled paper orders)."""
    from orders import tasks

    for account_id in Account.objects.filter(name__in=list(account_names)).values_list("pk", flat=True):
        tasks.poll_account.delay(account_id)


def accounts_poll_all() -> int:
    """Poll every account that has orders at or on the way to the broker.

    Asks each account whether it has such an order (one probe of the (account, status) index),
    rather than listing the open orders, so the job costs accounts, not open orders."""
    polled = Order.objects.filter(account=models.OuterRef("pk"), status__in=_POLLED_STATUSES)
    ids = Account.objects.filter(models.Exists(polled)).values_list("pk", flat=True)
    return sum(account_poll(account_id=pk) for pk in list(ids))


__all__ = [
    "OrderInput",
    "order_submit",
    "order_submit_batch",
    "order_cancel",
    "order_modify",
    "order_send_to_broker",
    "order_cancel_at_broker",
    "order_sync",
    "account_poll",
    "accounts_poll_all",
    "outbox_sweep",
    "outbox_relay_once",
    "orders_expire_day",
    "TERMINAL_STATUSES",
    "TradingState",
]
