"""Writes and use cases of risk control.

- configuration: ``risk_rule_save`` / ``risk_rule_set`` / ``risk_rule_delete``,
  ``restricted_symbol_save`` / ``restricted_symbol_delete`` (validated, audited);
- trading states: ``trading_state_set`` (per account or global, audited);
- hooks of the order path, each called inside the order path's transaction
  while it holds the account lock: ``risk_order_recorded`` (after a new order
  is saved: counters and RiskEvents), ``risk_cancel_recorded`` (a cancel counts
  for the programme-trading rates), ``risk_post_trade`` (after fills and broker
  rejections: the protections), ``risk_order_released`` (an order that ends
  REJECTED or EXPIRED in review gives its amount back).

What the counters count (``RiskCounter``): ``orders`` = orders admitted by
risk control (PASS, WARN or held for REVIEW), never given back; ``amount`` =
their amounts, given back when the order later ends REJECTED (by an operator,
by the re-check on approval, by the broker) or EXPIRED in review, but not when
it is cancelled (a cancel does not refund a limit, or cancel-and-resend would
game it); ``cancels`` = every cancel accepted by ``order_cancel``; the
one-second window counts orders plus cancels. Orders refused by risk control
count only in ``rejected``: they never reach the exchange.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

from django.db import connection, transaction
from django.db.models import DecimalField, F, Sum, Value
from django.db.models.functions import Greatest

from audit.services import SYSTEM, Actor, audit_record
from orders.models import Order, OrderStatus
from risk.context import OPEN_STATUSES, order_notional, quote_for
from risk.controller import STATE_SEVERITY, config_load
from risk.models import RestrictedSymbol, RiskControl, RiskCounter, RiskEvent, RiskLevel, RiskRule
from risk.rules import rule_class
from risk.rules.base import FILL, POST_TRADE, REJECTION, Rule, RuleConfigError
from risk.verdicts import RiskAction, Verdict
from trading.clock import now
from trading.db import fast_path, insert_sql
from trading.errors import Conflict, InputRule, InvalidOrder
from trading.i18n import bilingual, pbilingual
from trading.market_rules import Side
from trading.models import Account, TradingState
from trading.money import ZERO
from trading.selectors import account_trading_day
from trading.services import account_lock

log = logging.getLogger(__name__)
# Post-trade hooks reuse the configuration this process read within this many seconds.
POST_TRADE_CONFIG_MAX_AGE = 1.0
LEVEL_OF_ACTION: dict[str, str] = {RiskAction.WARN: RiskLevel.WARNING, RiskAction.REVIEW: RiskLevel.WARNING, RiskAction.REJECT: RiskLevel.ERROR}


# --------------------------------------------------------------------------- configuration


def _rule_snapshot(rule: RiskRule) -> dict[str, Any]:
    return {"code": rule.code, "account": rule.account.name if rule.account_id and rule.account else None,
            "enabled": rule.enabled, "action": rule.action, "params": rule.params, "note": rule.note}


def _bump_version(actor: Actor) -> None:
    """Tell every process that the configuration changed (the controller's fingerprint includes it)."""
    RiskControl.objects.get_or_create(pk=RiskControl.SINGLETON_ID)
    RiskControl.objects.filter(pk=RiskControl.SINGLETON_ID).update(version=F("version") + 1)


@transaction.atomic
def risk_rule_save(*, rule: RiskRule, actor: Actor = SYSTEM) -> RiskRule:
    """Validate and save a RiskRule row (new or edited), audited; parameters are stored normalized.

    Raises RuleConfigError (422) naming the bad parameter, Conflict if the
    (code, account) pair is taken by another row.
    """
    rule.params = rule_class(rule.code).normalize_params(rule.params)
    if rule.action not in RiskAction.values:
        raise RuleConfigError(bilingual("action must be one of {value2}", value='/'.join(RiskAction.values), value2=', '.join(RiskAction.values)),
                              field="action")
    if RiskRule.objects.filter(code=rule.code, account=rule.account).exclude(pk=rule.pk).exists():
        scope, scope_en = (rule.account.name, rule.account.name) if rule.account_id and rule.account else ("全局", "every account")
        raise Conflict(bilingual("rule {code} already exists for {scope_en}", code=rule.code, scope=scope, scope_en=scope_en))
    before = None
    if rule.pk:
        previous = RiskRule.objects.filter(pk=rule.pk).select_related("account").first()
        before = _rule_snapshot(previous) if previous else None
    rule.save()
    audit_record(actor=actor, action="risk.rule_saved", object_type="risk_rule", object_id=rule.pk,
                 account=rule.account.name if rule.account_id and rule.account else "", before=before,
                 after=_rule_snapshot(rule), reason=rule.note)
    _bump_version(actor)
    return rule


def risk_rule_set(*, code: str, account: Account | None = None, params: dict[str, Any] | None = None,
                  action: str = RiskAction.REJECT, enabled: bool = True, note: str = "", actor: Actor = SYSTEM) -> RiskRule:
    """Create or replace the row of ``code`` for ``account`` (None = global)."""
    with transaction.atomic():
        rule = RiskRule.objects.filter(code=code, account=account).first() or RiskRule(code=code, account=account)
        rule.params, rule.action, rule.enabled, rule.note = dict(params or {}), str(action), enabled, note
        return risk_rule_save(rule=rule, actor=actor)


@transaction.atomic
def risk_rule_delete(*, rule: RiskRule, actor: Actor = SYSTEM) -> None:
    snapshot = _rule_snapshot(rule)
    rule_id = rule.pk
    rule.delete()
    audit_record(actor=actor, action="risk.rule_deleted", object_type="risk_rule", object_id=rule_id,
                 account=snapshot["account"] or "", before=snapshot)
    _bump_version(actor)


def _restriction_snapshot(entry: RestrictedSymbol) -> dict[str, Any]:
    return {"symbol": entry.instrument.symbol, "account": entry.account.name if entry.account_id and entry.account else None,
            "side": entry.side, "reason": entry.reason,
            "valid_from": entry.valid_from.isoformat() if entry.valid_from else None,
            "valid_to": entry.valid_to.isoformat() if entry.valid_to else None}


@transaction.atomic
def restricted_symbol_save(*, restriction: RestrictedSymbol, actor: Actor = SYSTEM) -> RestrictedSymbol:
    """Add or edit a restricted symbol (audited); applies to the next order in every process."""
    if not (restriction.reason or "").strip():
        raise InvalidOrder.single("reason", InputRule.REQUIRED, bilingual("a reason is required"))
    if restriction.valid_from and restriction.valid_to and restriction.valid_to < restriction.valid_from:
        raise InvalidOrder.single("valid_to", InputRule.ORDER, bilingual("valid_to is before valid_from"))
    if not restriction.created_by:
        restriction.created_by = actor.name
    restriction.save()
    audit_record(actor=actor, action="risk.restriction_saved", object_type="restricted_symbol", object_id=restriction.pk,
                 account=restriction.account.name if restriction.account_id and restriction.account else "",
                 after=_restriction_snapshot(restriction), reason=restriction.reason)
    _bump_version(actor)
    return restriction


@transaction.atomic
def restricted_symbol_delete(*, restriction: RestrictedSymbol, actor: Actor = SYSTEM) -> None:
    snapshot = _restriction_snapshot(restriction)
    entry_id = restriction.pk
    restriction.delete()
    audit_record(actor=actor, action="risk.restriction_deleted", object_type="restricted_symbol", object_id=entry_id,
                 account=snapshot["account"] or "", before=snapshot)
    _bump_version(actor)


# --------------------------------------------------------------------------- trading states


def trading_state_set(*, account: Account | None = None, state: str, reason: str, actor: Actor) -> str:
    """Switch the trading state of ``account`` (None = the global state): ACTIVE, REDUCING (only
    orders that reduce a position pass) or HALTED (nothing new passes). Audited, with a RiskEvent.

    Takes the account lock (or the singleton's row lock) itself; safe inside a
    caller's transaction that already holds it. Cancels are never blocked by a
    trading state; to cancel the open orders as well (the kill switch), call
    ``orders.kill_switch.trading_state_switch``. Returns the previous state.
    """
    if state not in TradingState.values:
        raise InvalidOrder.single("state", InputRule.CHOICE, bilingual("state must be one of {states}; got {state!r}", states_slashed='/'.join(TradingState.values), states=', '.join(TradingState.values), state=state))
    reason = (reason or "").strip()
    if not reason:
        raise InvalidOrder.single("reason", InputRule.REQUIRED, pbilingual("trading state", "a reason is required"))
    with transaction.atomic():
        if account is None:
            RiskControl.objects.get_or_create(pk=RiskControl.SINGLETON_ID)
            control = RiskControl.objects.select_for_update().get(pk=RiskControl.SINGLETON_ID)
            before = control.trading_state
            control.trading_state, control.trading_state_reason, control.updated_by = state, reason[:255], actor.name
            control.version += 1
            control.save()
            audit_record(actor=actor, action="risk.trading_state_set", object_type="risk_control", object_id=control.pk,
                         before={"state": before}, after={"state": state, "scope": "global"}, reason=reason)
            _event(None, None, TRADING_STATE_EVENT, _state_level(state), "", bilingual("global trading state {before} -> {state}", before=before, state=state, reason=reason), {"before": before, "state": state, "actor": actor.name})
        else:
            locked = account_lock(account.pk)
            before = locked.trading_state
            locked.trading_state, locked.trading_state_reason = state, reason[:255]
            locked.save(update_fields=["trading_state", "trading_state_reason"])
            # The caller's instance (it may hold the lock and go on to check orders) sees the new state too.
            account.trading_state, account.trading_state_reason = state, reason[:255]
            audit_record(actor=actor, action="account.trading_state_set", object_type="account", object_id=account.pk,
                         account=account.name, before={"state": before}, after={"state": state}, reason=reason)
            _event(account.pk, None, TRADING_STATE_EVENT, _state_level(state), "", bilingual("account {name} trading state {before} -> {state}", name=account.name, before=before, state=state, reason=reason),
                   {"before": before, "state": state, "actor": actor.name})
    return before


TRADING_STATE_EVENT = "trading_state"


def _state_level(state: str) -> str:
    levels: dict[str, str] = {TradingState.ACTIVE: RiskLevel.INFO, TradingState.REDUCING: RiskLevel.WARNING}
    return levels.get(state, RiskLevel.CRITICAL)


# --------------------------------------------------------------------------- hooks of the order path


def _event(account_id: int | None, order: Order | None, rule: str, level: str, action: str, message: str,
           values: dict[str, Any], trading_day: Any = None) -> RiskEvent:
    return RiskEvent.objects.create(account_id=account_id, order=order, rule=rule, level=level, action=action,
                                    message=message[:4000], values=values, trading_day=trading_day)


def risk_events_for_verdicts(order: Order, verdicts: list[dict[str, Any]] | list[Verdict],
                             defer: list[tuple[str, list[Any]]] | None = None) -> int:
    """One RiskEvent per failing verdict of ``order`` (saved, or with its key drawn). Returns how
    many were written; with ``defer`` (PostgreSQL) their INSERT is appended there instead."""
    rows = []
    for raw in verdicts:
        verdict = raw.as_json() if isinstance(raw, Verdict) else raw
        if verdict.get("passed", True):
            continue
        action = str(verdict.get("action", ""))
        rows.append(RiskEvent(account_id=order.account_id, order=order, rule=str(verdict.get("rule", "")),
                              level=LEVEL_OF_ACTION.get(action, RiskLevel.WARNING), action=action,
                              message=str(verdict.get("message", ""))[:4000], values=verdict.get("values") or {},
                              trading_day=order.trading_day))
    if rows and defer is not None and fast_path():
        defer.append(insert_sql(RiskEvent, rows))
    elif rows:
        RiskEvent.objects.bulk_create(rows)
    return len(rows)


def _counters_add(account_id: int, day: Any, keys: list[str], *, at: Any, orders: int = 0, amount: Decimal = ZERO,
                  rejected: int = 0, cancels: int = 0, in_window: int = 0, last_order: bool = False,
                  instrument_id: int | None = None, open_quantity: int = 0, open_amount: Decimal = ZERO,
                  defer: list[tuple[str, list[Any]]] | None = None) -> None:
    """Add to today's counter rows (account row "" and/or symbol rows), creating missing ones,
    in one upsert (raw SQL: this runs for every order). ``in_window`` counts into the one-second
    window of the account row; ``instrument_id`` and ``open_*`` go to symbol rows only. With
    ``defer`` the statement is appended there for the caller to run with its other writes.
    Caller holds the account lock, so read-modify-write cannot race."""
    from risk.sql import CounterAdd, counters_upsert_sql

    second = int(at.timestamp())
    adds = [CounterAdd(account_id=account_id, trading_day=day, key=key, instrument_id=None if key == "" else instrument_id,
                       orders=orders, amount=amount, rejected=rejected, cancels=cancels,
                       last_order_at=at if last_order else None,
                       second=second if (key == "" and in_window) else 0, second_count=in_window if key == "" else 0,
                       open_buy_quantity=0 if key == "" else open_quantity,
                       open_buy_amount=ZERO if key == "" else open_amount, updated_at=at)
            for key in keys]
    statement = counters_upsert_sql(adds)
    if defer is not None and fast_path():  # PostgreSQL: with the order path's other writes
        defer.append(statement)
        return
    with connection.cursor() as cursor:
        cursor.execute(*statement)


def risk_order_recorded(order: Order, *, defer: list[tuple[str, list[Any]]] | None = None) -> None:
    """After the order path saved a new (or newly admitted) order with its risk verdicts and final
    status: count it and write a RiskEvent for each failing verdict. With ``defer`` the counter
    update is appended there, for the caller to run in the same round trip as its other writes.

    Precondition: same transaction as the save, account lock held.
    """
    at = now()
    keys = ["", order.instrument.symbol]
    if order.status == OrderStatus.REJECTED:
        _counters_add(order.account_id, order.trading_day, keys, at=at, rejected=1, instrument_id=order.instrument_id,
                      defer=defer)
    else:
        amount = order_notional(order, quote_for(order.instrument_id))
        is_buy = order.side == Side.BUY
        _counters_add(order.account_id, order.trading_day, keys, at=at, orders=1, amount=amount, in_window=1, last_order=True,
                      instrument_id=order.instrument_id,
                      open_quantity=(order.quantity - order.filled_quantity) if is_buy else 0,
                      open_amount=order.frozen_amount if is_buy else ZERO, defer=defer)
    if order.risk_verdicts:
        risk_events_for_verdicts(order, order.risk_verdicts, defer=defer)


def risk_cancel_recorded(*, account: Account, order: Order) -> None:
    """Count one accepted cancel for the programme-trading rates and the cancel ratio.

    Precondition: the caller (``order_cancel``) holds the account lock. Never blocks the cancel.
    """
    at = now()
    _counters_add(account.pk, account_trading_day(account, at), [""], at=at, cancels=1, in_window=1)
    if order.side == Side.BUY and order.is_terminal:
        open_buys_refresh(order)


def open_buys_refresh(order: Order) -> None:
    """Recompute the open buys of ``order``'s symbol and day from the orders (exact), after one of
    them filled or ended. Caller holds the account lock."""
    totals = Order.objects.filter(
        account_id=order.account_id, instrument_id=order.instrument_id, trading_day=order.trading_day, side=Side.BUY,
        status__in=OPEN_STATUSES,
    ).aggregate(quantity=Sum(F("quantity") - F("filled_quantity")), amount=Sum("frozen_amount"))
    quantity, amount = int(totals["quantity"] or 0), totals["amount"] or ZERO
    updated = RiskCounter.objects.filter(account_id=order.account_id, trading_day=order.trading_day,
                                         key=order.instrument.symbol).update(open_buy_quantity=quantity, open_buy_amount=amount,
                                                                             instrument_id=order.instrument_id, updated_at=now())
    if not updated and quantity:
        RiskCounter.objects.create(account_id=order.account_id, trading_day=order.trading_day, key=order.instrument.symbol,
                                   instrument_id=order.instrument_id, open_buy_quantity=quantity, open_buy_amount=amount)


def risk_order_released(order: Order) -> None:
    """An order that was counted has ended REJECTED (operator, re-check, broker) or EXPIRED in review:
    give its amount back and recompute its symbol's open buys. Caller holds the account lock."""
    if order.side == Side.BUY:
        open_buys_refresh(order)
    amount = order_notional(order, quote_for(order.instrument_id))
    if amount <= 0:
        return
    RiskCounter.objects.filter(account_id=order.account_id, trading_day=order.trading_day,
                               key__in=["", order.instrument.symbol]).update(
        amount=Greatest(F("amount") - Value(amount), Value(ZERO), output_field=DecimalField(max_digits=20, decimal_places=2)),
        updated_at=now())


def risk_post_trade(*, account: Account, order: Order, new_fills: int = 0) -> None:
    """After fills were recorded for ``order``, or it ended at the broker: keep its symbol's open buys
    exact, give a rejected order's amount back and run the post-trade protections (daily loss, drawdown, consecutive broker rejections),
    which may move the account to REDUCING or HALTED with a critical RiskEvent.

    Precondition: inside the transaction that recorded the fills / rejection, account lock held.
    Never raises: a failure is logged and rolled back to a savepoint, so fills are always recorded.
    """
    rejected = order.status == OrderStatus.REJECTED and order.submitted_at is not None
    open_buy_changed = order.side == Side.BUY and (new_fills > 0 or order.is_terminal)
    if not new_fills and not rejected and not open_buy_changed:
        return
    try:
        with transaction.atomic():
            if rejected:
                risk_order_released(order)
            elif open_buy_changed:
                open_buys_refresh(order)
            _protections_run(account, order, new_fills=new_fills, rejected=rejected)
    except Exception:
        log.exception("post-trade risk hook failed for order %s", order.pk)


def _protections_run(account: Account, order: Order, *, new_fills: int, rejected: bool) -> None:
    from risk.post_trade import PostTradeState

    snapshot = config_load(max_age=POST_TRADE_CONFIG_MAX_AGE)
    rules = [r for r in snapshot.config.rules_for(account.pk, POST_TRADE)
             if (r.trigger == FILL and new_fills) or (r.trigger == REJECTION and rejected)]
    if not rules:
        return
    at = now()
    state = PostTradeState(account, account_trading_day(account, at), at=at)
    for rule in rules:
        verdict = rule.evaluate(state)
        if verdict is not None:
            _protection_fired(account, order, rule, verdict, day=state.day)


def _protection_fired(account: Account, order: Order, rule: Rule[Any], verdict: Verdict, *, day: Any) -> None:
    target = str(verdict.values.get("target_state", TradingState.HALTED))
    if rule.action == RiskAction.WARN:
        _event(account.pk, order, rule.code, RiskLevel.WARNING, RiskAction.WARN, verdict.message, verdict.values, day)
        return
    if STATE_SEVERITY.get(account.trading_state, 0) >= STATE_SEVERITY.get(target, 2):
        return  # already at least that strict: nothing new to say
    trading_state_set(account=account, state=target, reason=verdict.message[:255], actor=Actor.system("risk"))
    _event(account.pk, order, rule.code, RiskLevel.CRITICAL, rule.action, verdict.message, verdict.values, day)
