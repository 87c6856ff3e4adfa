"""Intake: the one use case behind POST /orders, admin entry and batches, and the risk dry run.

One transaction: lock the account, check fields and market rules, run holdings checks and risk
control, then insert the order, its freeze and its audit events (the order row is the outbox).
When the request itself makes the broker call (in-process tasks), it claims the order
(SUBMITTING) in that transaction and calls the broker after commit.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, models, transaction

from audit.models import AuditEvent
from audit.services import Actor
from brokers.connection import link_open
from brokers.registry import broker_for
from orders.models import (
    Order,
    OrderSource,
)
from orders.services.broker import WORKER, order_place
from orders.services.freezes import admission_for, freeze_admitted
from orders.services.inputs import OrderInput, build_order, created_event, order_check
from orders.services.locks import account_id_by_name
from orders.services.outbox import (
    SUBMIT,
    dispatch_on_commit,
    order_reread,
    reread_after_inline_worker,
    tasks_run_inline,
)
from orders.state_machine import OrderEvent, StatusChange, order_apply_event
from risk.controller import RiskOutcome, RiskReads, Verdict, reads_for
from risk.services import risk_order_recorded
from trading.clock import now
from trading.errors import (
    ErrorCode,
    Forbidden,
    InputRule,
    InvalidOrder,
    TradingError,
)
from trading.i18n import bilingual
from trading.models import Account, Quote
from trading.services import (
    LedgerPost,
    account_lock,
    account_lock_reading,
    ledger_flush,
    multi_statement_reads,
)

log = logging.getLogger(__name__)


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
    reads: RiskReads | None  # None where they cannot ride on the lock's round trip (SQLite)

    def fits(self, account: Account) -> bool:
        """Whether the locked account still has the settings the order was prepared with."""
        return account.session_mode == self.session_mode


def _prepare(data: OrderInput, account_id: int, *, actor: Actor, source: str) -> _Prepared | None:
    """Do before the lock what does not need it: field and market-rule checks, building the order,
    the SQL of its risk reads (where they can ride on the lock's round trip). On SQLite, where
    writers queue for one database lock, this keeps the checks out of the time it is held. None
    when no account has been seen yet or the input is invalid (then the locked path decides,
    after the idempotency lookup: a retried order is answered, not refused)."""
    seen = _ACCOUNT_SEEN.get(account_id)
    if seen is None:
        return None
    try:
        checked = order_check(data, account=seen)
    except InvalidOrder:
        return None
    order = build_order(checked, actor=actor, source=source)
    return _Prepared(order, checked.quote, seen.session_mode, reads_for(order) if multi_statement_reads() else None)


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
                                          then=prepared.reads.statements if prepared and prepared.reads else None)
            account = _ACCOUNT_SEEN[account_id] = locked.account
            if account.status != Account.Status.ACTIVE:
                raise Forbidden(bilingual("account {name} is disabled", name=account.name))
            if locked.also is not None:  # the order of this client_order_id
                return SubmitResult(Order.objects.select_related("account", "instrument").get(pk=locked.also), False)
            prefetched = None
            if prepared is not None and prepared.fits(account):
                order, quote = prepared.order, prepared.quote
                order.account = account
                if locked.then_rows is not None and prepared.reads is not None:
                    prefetched = (prepared.reads, locked.then_rows)
            else:
                checked = order_check(data, account=account)
                order, quote = build_order(checked, actor=actor, source=source), checked.quote
            admission = admission_for(order, quote=quote, prefetched=prefetched)
            order.risk_verdicts = admission.verdicts
            order.admitted_at = now()
            audits: list[AuditEvent] = []
            freezes = admission.event != OrderEvent.RISK_REJECTED
            if freezes:
                order.frozen_amount, order.frozen_quantity = admission.freeze_amount, admission.freeze_quantity
            changes: list[StatusChange] = []  # written with the order below
            if admission.event is not None:
                order_apply_event(order, admission.event, actor=actor, reason=admission.reason, defer=changes)
            claimed = admission.event is None and request_is_worker() and link_open(account.pk)
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
            audits.append(created_event(order, actor))
            audits.extend(change.audit(order) for change in changes)
            posts: list[LedgerPost] = []
            if freezes:
                freeze_admitted(order, admission, actor=actor, posts=posts)
            if claimed:
                transaction.on_commit(lambda: placed.append(_place_claimed(order)))
            elif admission.event is None:
                dispatch_on_commit(order, SUBMIT)
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


def request_is_worker() -> bool:
    """Whether the request itself makes the broker call (in-process tasks, no relay).

    Then intake claims the order for the broker (NEW -> SUBMITTING) in its own
    transaction and calls the broker after commit, as the worker would, without
    a transaction of its own for the claim. A process that dies in between
    leaves a SUBMITTING order, which the sweep reconciles and re-sends like a
    worker's.
    """
    return settings.ORDERS_DISPATCH != "relay" and tasks_run_inline()


def _place_claimed(order: Order) -> Order:
    """After commit: the broker call for an order claimed at intake."""
    try:
        return order_place(broker_for(order.account), order)
    except Exception:  # left SUBMITTING (or as far as the call got): reconciliation (account_poll) resolves it
        log.exception("broker call for order %s failed; reconciliation will resolve it", order.pk)
        order_reread(order)
        return order


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
        raise InvalidOrder.single("orders", InputRule.MAX_ITEMS, bilingual("at most {limit} orders per batch; got {count}", limit=limit, count=count))


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
                raise Forbidden(bilingual("this key may not use account {account}", account=item.account))
            result = order_submit(item, actor=actor)
            results.append(BatchItemResult(index, 201 if result.created else 200, order=result.order))
        except TradingError as exc:
            results.append(BatchItemResult(index, exc.status_code, error=exc.detail(), code=exc.code))
        except Exception:
            log.exception("batch item %s failed unexpectedly", index)
            results.append(BatchItemResult(index, 500, error=bilingual("internal error"), code=ErrorCode.INTERNAL_ERROR))
    return results


def order_dry_run(data: OrderInput) -> RiskOutcome:
    """What intake would decide for ``data`` now, creating nothing (POST /risk/check).

    The same checks as ``order_submit``, through the same code: fields and market rules
    (``order_check``), holdings and cash and risk control (``admission_for``). Raises what intake
    raises (InvalidOrder 422, NotFound, Forbidden); else answers risk control's outcome. Runs in
    a transaction that is always rolled back (``admission_for`` may create an empty position row).
    It takes the account lock like intake (the lock order: a position row is only locked under
    its account's lock), but reserves nothing: the answer is a forecast.
    """
    account_id = account_id_by_name(data.account)
    with transaction.atomic():
        account = account_lock(account_id)
        if account.status != Account.Status.ACTIVE:
            raise Forbidden(bilingual("account {name} is disabled", name=account.name))
        checked = order_check(data, account=account)
        order = build_order(checked, actor=Actor.system("risk-dry-run"), source=OrderSource.API)
        admission = admission_for(order, quote=checked.quote)
        transaction.set_rollback(True)
    return RiskOutcome([Verdict(**verdict) for verdict in admission.verdicts])
