"""Reads of conditional orders."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db.models import QuerySet

from conditions.models import ConditionalOrder, ParentEvent
from orders.selectors import listing_filter
from trading.errors import NotFound
from trading.i18n import bilingual
from trading.selectors import price_text

MAX_ID = 2**63 - 1


def conditional_visible(*, parent_id: int, accounts: Iterable[str]) -> ConditionalOrder:
    """The parent ``parent_id`` if it belongs to one of ``accounts``; 404 otherwise."""
    parent = None
    if 0 < parent_id <= MAX_ID:
        parent = (ConditionalOrder.objects.select_related("account", "instrument")
                  .filter(pk=parent_id, account__name__in=list(accounts)).first())
    if parent is None:
        raise NotFound(bilingual("conditional order {parent_id} not found", parent_id=parent_id))
    return parent


def conditional_list(*, accounts: Iterable[str], account: str | None = None, state: str | None = None,
                     symbol: str | None = None, kind: str | None = None, strategy: str | None = None,
                     limit: int = 100, offset: int = 0) -> QuerySet[ConditionalOrder]:
    """Parents visible to the caller, newest first."""
    qs = listing_filter(ConditionalOrder.objects.all(), accounts=accounts, account=account, states=state,
                        state_field="state", symbol=symbol, strategy=strategy)
    if kind:
        qs = qs.filter(kind=kind)
    return qs.order_by("-id")[offset : offset + limit]


def conditional_children(parent: ConditionalOrder) -> list[int]:
    """The ids of the orders ``parent`` released, in order."""
    return list(ParentEvent.objects.filter(parent=parent, child__isnull=False).order_by("id").values_list("child_id", flat=True))


def conditional_as_json(parent: ConditionalOrder, *, history: bool = False) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": parent.pk,
        "client_order_id": parent.client_order_id,
        "account": parent.account.name,
        "symbol": parent.instrument.symbol,
        "kind": parent.kind,
        "side": parent.side,
        "quantity": parent.quantity,
        "released_quantity": parent.released_quantity,
        "price_type": parent.price_type,
        "limit_price": price_text(parent.limit_price),
        "offset_ticks": parent.offset_ticks,
        "protection_price": price_text(parent.protection_price),
        "params": parent.params,
        "memory": parent.memory,
        "state": parent.state,
        "state_reason": parent.state_reason,
        "entry_order_id": parent.entry_order_id,
        "strategy": parent.strategy,
        "expires_at": parent.expires_at,
        "triggered_at": parent.triggered_at,
        "created_at": parent.created_at,
        "updated_at": parent.updated_at,
        "children": conditional_children(parent),
    }
    if history:
        from conditions.algo_report import algo_report

        data["algo_report"] = algo_report(parent)
        data["history"] = [
            {"at": e.at, "event": e.event, "state_before": e.state_before, "state_after": e.state_after,
             "last_price": price_text(e.last_price), "child": e.child_id, "reason": e.reason}
            for e in parent.history.order_by("id")
        ]
    return data
