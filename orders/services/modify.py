"""Cancel and modify (cancel-and-replace), and what happens when an order ends.

A modify is one transaction under the account lock: the replacement is checked as intake would
check it, created without admission, and the original's cancel requested; the replacement is
admitted (risk, freeze) and sent only when the original ends (``after_order_ended``).
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction

from audit.services import Actor
from orders.models import (
    TERMINAL_STATUSES,
    Order,
    OrderStatus,
)
from orders.services.freezes import admission_for, admit_saved, release_freezes
from orders.services.inputs import OrderInput, build_order, created_event, order_check
from orders.services.locks import lock_order
from orders.services.outbox import CANCEL, dispatch_on_commit, reread_after_inline_worker
from orders.state_machine import CREATED, OrderEvent, order_apply_event, order_published
from risk.services import risk_cancel_recorded
from trading.clock import now
from trading.errors import (
    Conflict,
    InputRule,
    InvalidOrder,
)
from trading.i18n import bilingual
from trading.models import Account, Quote
from trading.selectors import quote_latest
from trading.services import (
    LedgerPost,
    ledger_flush,
)

log = logging.getLogger(__name__)


MODIFIABLE_STATUSES = frozenset({OrderStatus.NEW, OrderStatus.PENDING_APPROVAL, OrderStatus.SUBMITTED, OrderStatus.PARTIALLY_FILLED})


def _waiting_replacement(order: Order) -> bool:
    """A replacement not yet admitted: it waits for its original's cancel and holds nothing."""
    return order.status == OrderStatus.NEW and order.admitted_at is None


def order_cancel(*, order_id: int, actor: Actor, reason: str = "") -> Order:
    """Cancel an order. Before it reached the broker it ends at once; a working order moves
    to CANCEL_REQUESTED and the broker is asked. Terminal orders answer 409."""
    with transaction.atomic():
        account, order = lock_order(order_id)
        _cancel_locked(account, order, actor=actor, reason=reason)
    reread_after_inline_worker(order)  # the in-process worker already asked the broker
    return order


def _cancel_locked(account: Account, order: Order, *, actor: Actor, reason: str = "") -> None:
    """The cancel of ``order``; the caller holds the account lock, then the order's."""
    if order.is_terminal:
        raise Conflict(bilingual("order {pk} is already {status}", status=order.status, pk=order.pk))
    if order.status == OrderStatus.CANCEL_REQUESTED:
        return
    if order.status in (OrderStatus.SUBMITTING, OrderStatus.UNKNOWN):
        raise Conflict(bilingual("order {pk} is {status}; retry the cancel shortly", pk=order.pk, status=order.status))
    posts: list[LedgerPost] = []
    order.cancel_requested_at = now()
    if order.status in (OrderStatus.NEW, OrderStatus.PENDING_APPROVAL):
        release_freezes(order, actor=actor, posts=posts, memo="撤单解冻")
        order_apply_event(order, OrderEvent.CANCELLED, actor=actor, reason=reason or "撤单",
                          update_fields=["frozen_amount", "frozen_quantity", "cancel_requested_at"])
        ledger_flush(account, posts)
        after_order_ended(order, actor=actor)
    else:
        order_apply_event(order, OrderEvent.CANCEL_REQUESTED, actor=actor, reason=reason or "撤单申请",
                          update_fields=["cancel_requested_at"])
        dispatch_on_commit(order, CANCEL)
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
    (risk verdicts, freeze) and sent only then (``after_order_ended``); until then it is NEW
    without ``admitted_at`` and nothing sends it.
    """
    if price is None and quantity is None:
        raise InvalidOrder.single("price", InputRule.REQUIRED, bilingual("give price and/or quantity"))
    with transaction.atomic():
        account, original = lock_order(order_id)
        if original.status not in MODIFIABLE_STATUSES or _waiting_replacement(original):
            why = bilingual("waiting for its original's cancel") if _waiting_replacement(original) else original.status
            raise Conflict(bilingual("order {pk} is {why} and cannot be modified", why=why, pk=original.pk))
        if Order.objects.filter(replaces=original).exclude(status__in=TERMINAL_STATUSES).exists():
            raise Conflict(bilingual("order {pk} already has a live replacement", pk=original.pk))
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
                "quantity", InputRule.ABOVE_FILLED, bilingual("new quantity must exceed the filled {filled_quantity}", filled_quantity=original.filled_quantity)
            )
        generation = Order.objects.filter(account=account, client_order_id__startswith=f"{original.client_order_id}~").count() + 1
        checked.client_order_id = f"{original.client_order_id}~{generation}"[:64]
        replacement = build_order(checked, actor=actor, source=original.source, replaces=original)
        _modify_admissible(replacement, original, quote=checked.quote, changed="quantity" if quantity is not None else "price")
        replacement.status_reason = bilingual("waiting for the original order's cancel")
        replacement.save()
        created_event(replacement, actor, reason=f"改单替换 #{original.pk}").save()
        order_published(replacement, "", CREATED)
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
        admission = admission_for(replacement, quote=quote, releasing=original)
    finally:
        replacement.quantity = full_quantity
    if admission.event == OrderEvent.RISK_REJECTED:
        failed = next((v for v in admission.verdicts if not v.get("passed") and v.get("action") == "REJECT"), {})
        rule = str(failed.get("rule") or "risk")
        raise InvalidOrder.single(changed, rule, bilingual("risk control refuses the modified order") + f": {admission.reason}")


def _replacement_waiting_for(order: Order) -> Order | None:
    """The replacement (a modify) waiting for ``order`` to end, locked. Caller holds the account lock."""
    replacement = (
        Order.objects.select_for_update(of=("self",)).select_related("instrument")
        .filter(replaces=order, status=OrderStatus.NEW, admitted_at__isnull=True).first()
    )
    if replacement is not None:
        replacement.account = order.account
    return replacement


def after_order_ended(order: Order, *, actor: Actor) -> None:
    """After an order ends: admit a replacement that was waiting for it. Caller holds the account lock."""
    replacement = _replacement_waiting_for(order)
    if replacement is None:  # an order ends once, so this runs once per original
        return
    remaining = replacement.quantity - order.filled_quantity
    if remaining <= 0:
        order_apply_event(replacement, OrderEvent.CANCELLED, actor=actor, reason=bilingual("the original filled completely"))
        return
    if remaining != replacement.quantity:
        replacement.quantity = remaining
        replacement.save(update_fields=["quantity"])
    posts: list[LedgerPost] = []
    try:
        with transaction.atomic():
            admit_saved(replacement, actor=actor, quote=quote_latest(replacement.instrument_id), posts=posts)
            ledger_flush(order.account, posts)
    except InvalidOrder as exc:
        replacement.admitted_at = now()
        order_apply_event(replacement, OrderEvent.RISK_REJECTED, actor=actor, reason=exc.message, update_fields=["admitted_at"])
    else:
        if replacement.status == OrderStatus.NEW:
            replacement.status_reason = ""
            replacement.save(update_fields=["status_reason"])


def replacement_abandon(order: Order, *, actor: Actor, reason: str) -> None:
    """The original of a waiting replacement stays at the broker (its cancel was refused):
    the replacement ends as CANCELLED, having held nothing. Caller holds the account lock."""
    replacement = _replacement_waiting_for(order)
    if replacement is not None:
        order_apply_event(replacement, OrderEvent.CANCELLED, actor=actor, reason=reason)
