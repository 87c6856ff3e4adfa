"""Operators' decisions on orders that risk control held for review (PENDING_APPROVAL).

- ``order_approve``: the operator accepts the REVIEW (and WARN) verdicts; risk
  control runs again (rules about the moment of entry excepted, the order's own
  contribution left out of the totals) and only a REJECT verdict still blocks:
  then the order ends REJECTED, else it becomes NEW and is sent.
- ``order_reject``: the operator refuses it (reason required).
- ``order_override``: the operator sends it although a REJECT verdict stands
  (reason required; audited with the verdicts overridden). A trading state
  (REDUCING/HALTED) cannot be overridden: switch the state first.

The services check no permission; their caller does. In admin that is the order
desk (``orders/admin.py``) with ``orders.approve_order``, ``orders.reject_order``
and ``orders.override_order`` (override has its own permission). The risk app's
``risk.review_order`` and ``risk.override_order`` are dead: no page checks them
and no role holds them (``staff.roles.DEAD``).
- ``orders_expire_reviews``: held orders nobody decided on within
  ``settings.RISK_REVIEW_TIMEOUT_SECONDS`` (default 1800) expire.

Each takes the account lock, then the order's, and checks the status under
them, so two operators acting on one order at once get one success and one
``Conflict`` (409), never two transitions. Freezes are released and the
amount counted by risk control is given back when the order does not go on.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction

from audit.services import Actor, audit_record
from orders.models import Order, OrderStatus
from orders.services import (
    SUBMIT,
    after_order_ended,
    dispatch_on_commit,
    lock_order,
    release_freezes,
    reread_after_inline_worker,
)
from orders.state_machine import OrderEvent, order_apply_event
from risk.controller import TRADING_STATE_RULE, risk_check_order
from risk.models import RiskLevel
from risk.services import risk_events_for_verdicts, risk_order_released
from risk.verdicts import RiskAction, Verdict
from trading.clock import now
from trading.errors import Conflict, InputRule, InvalidOrder
from trading.i18n import bilingual
from trading.models import Account
from trading.services import LedgerPost, ledger_flush

DEFAULT_REVIEW_TIMEOUT_SECONDS = 1800


def review_timeout_seconds() -> int:
    return int(getattr(settings, "RISK_REVIEW_TIMEOUT_SECONDS", DEFAULT_REVIEW_TIMEOUT_SECONDS))


def _require_reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise InvalidOrder.single("reason", InputRule.REQUIRED, bilingual("a reason is required"))
    return reason


def _held(order_id: int, doing: str, doing_en: str) -> tuple[Account, Order]:
    """Lock account then order; the order must still be PENDING_APPROVAL."""
    account, order = lock_order(order_id)
    if order.status != OrderStatus.PENDING_APPROVAL:
        raise Conflict(bilingual("order {pk} is {status}, not PENDING_APPROVAL: it cannot be {doing_en}; "
                                 "another operator may have acted on it",
                                 pk=order.pk, status=order.status, doing=doing, doing_en=doing_en))
    return account, order


def _end_held(account: Account, order: Order, event: OrderEvent, *, actor: Actor, reason: str, memo: str,
              update_fields: tuple[str, ...] = ()) -> None:
    """End a held order (REJECTED or EXPIRED): release its freezes and give back its counted amount."""
    posts: list[LedgerPost] = []
    release_freezes(order, actor=actor, posts=posts, memo=memo)
    order_apply_event(order, event, actor=actor, reason=reason, update_fields=["frozen_amount", "frozen_quantity", *update_fields])
    ledger_flush(account, posts)
    risk_order_released(order)
    after_order_ended(order, actor=actor)


def _after_commit(order: Order) -> Order:
    reread_after_inline_worker(order)
    return order


def _verdicts_json(verdicts: list[Verdict]) -> list[dict]:
    return [v.as_json() for v in verdicts]


def order_approve(*, order_id: int, actor: Actor, reason: str = "") -> Order:
    """Approve a held order: re-check it; only REJECT verdicts still block (-> REJECTED), otherwise
    APPROVED -> NEW and it is sent to the broker after commit. Conflict if it is no longer held."""
    reason = (reason or "").strip()
    with transaction.atomic():
        account, order = _held(order_id, "审批", "approved")
        outcome = risk_check_order(order, recheck=True)
        order.risk_verdicts = _verdicts_json(outcome.verdicts)
        blocking = [v for v in outcome.failed if v.action == RiskAction.REJECT]
        if blocking:
            text = "; ".join(f"{v.rule}: {v.message}" for v in blocking)
            _end_held(account, order, OrderEvent.RISK_REJECTED, actor=actor, memo="审批复核拒绝解冻",
                      reason=bilingual("re-check on approval failed") + f": {text}", update_fields=("risk_verdicts",))
            risk_events_for_verdicts(order, blocking)
            audit_record(actor=actor, action="order.approval_rechecked_rejected", object_type="order", object_id=order.pk,
                         account=account.name, after={"verdicts": _verdicts_json(blocking)}, reason=reason)
        else:
            accepted = [v for v in outcome.failed]
            order_apply_event(order, OrderEvent.APPROVED, actor=actor,
                              reason=bilingual("approved", name=actor.name, reason=f": {reason}" if reason else ""),
                              update_fields=["risk_verdicts"])
            audit_record(actor=actor, action="order.approved", object_type="order", object_id=order.pk, account=account.name,
                         after={"accepted_verdicts": _verdicts_json(accepted)}, reason=reason)
            dispatch_on_commit(order, SUBMIT)
    return _after_commit(order)


def order_reject(*, order_id: int, actor: Actor, reason: str) -> Order:
    """Refuse a held order (reason required): freezes released, OPERATOR_REJECTED -> REJECTED."""
    reason = _require_reason(reason)
    with transaction.atomic():
        account, order = _held(order_id, "拒绝", "rejected")
        _end_held(account, order, OrderEvent.OPERATOR_REJECTED, actor=actor, memo="人工拒绝解冻",
                  reason=bilingual("rejected by an operator", name=actor.name, reason=reason))
    return _after_commit(order)


def order_override(*, order_id: int, actor: Actor, reason: str) -> Order:
    """Send a held order although a REJECT verdict stands (reason required), audited with the verdicts
    overridden and a RiskEvent. The caller checks the ``orders.override_order`` permission. A trading
    state (REDUCING/HALTED) cannot be overridden: Conflict."""
    reason = _require_reason(reason)
    with transaction.atomic():
        account, order = _held(order_id, "越权放行", "overridden")
        outcome = risk_check_order(order, recheck=True)
        state = next((v for v in outcome.failed if v.rule == TRADING_STATE_RULE), None)
        if state is not None:
            raise Conflict(bilingual("a trading state cannot be overridden; switch it back first", message=state.message))
        overridden = outcome.failed
        order.risk_verdicts = _verdicts_json(outcome.verdicts)
        order_apply_event(order, OrderEvent.APPROVED, actor=actor, reason=bilingual("risk overridden", name=actor.name, reason=reason),
                          update_fields=["risk_verdicts"])
        audit_record(actor=actor, action="order.risk_overridden", object_type="order", object_id=order.pk, account=account.name,
                     before={"status": OrderStatus.PENDING_APPROVAL, "verdicts": _verdicts_json(overridden)},
                     after={"status": order.status}, reason=reason)
        from risk.models import RiskEvent

        RiskEvent.objects.create(
            account_id=account.pk, order=order, rule="override", level=RiskLevel.WARNING, action="OVERRIDE",
            trading_day=order.trading_day,
            message=bilingual("operator {name} overrode {value}", name=actor.name, reason=reason, value=', '.join(v.rule for v in overridden) or 'no failing rule'),
            values={"overridden": _verdicts_json(overridden), "actor": actor.name},
        )
        dispatch_on_commit(order, SUBMIT)
    return _after_commit(order)


def orders_expire_reviews(*, at: datetime | None = None) -> int:
    """Expire orders held for review longer than RISK_REVIEW_TIMEOUT_SECONDS (from when they were
    entered): freezes released, EXPIRED. Returns how many expired."""
    at = at or now()
    timeout = review_timeout_seconds()
    cutoff = at - timedelta(seconds=timeout)
    expired = 0
    candidates = list(Order.objects.filter(status=OrderStatus.PENDING_APPROVAL, created_at__lt=cutoff).values_list("pk", flat=True))
    actor = Actor.system("review-expiry")
    for order_id in candidates:
        with transaction.atomic():
            account, order = lock_order(order_id)
            if order.status != OrderStatus.PENDING_APPROVAL or order.created_at >= cutoff:
                continue  # decided meanwhile
            _end_held(account, order, OrderEvent.EXPIRED, actor=actor, memo="审核超时解冻",
                      reason=bilingual("not reviewed within {timeout}s", timeout=timeout))
        expired += 1
    return expired


__all__ = ["order_approve", "order_reject", "order_override", "orders_expire_reviews", "review_timeout_seconds"]
