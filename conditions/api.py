"""The conditional-orders endpoints (docs/api.md, "Conditional orders"): thin, one service or selector each."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest
from ninja import Router
from ninja.params.functions import Query
from ninja.responses import Status

from audit.services import Actor
from conditions import selectors, services
from conditions.schemas import ConditionalIn, ConditionalModifyIn, ConditionalOut
from trading.auth import api_client
from trading.schemas import BODY_ERRORS, error_responses

router = Router(tags=["conditional orders"])

ERRORS = error_responses(*BODY_ERRORS, 403, 404, 409)
MAX_OFFSET = 10**9


@router.post("/conditional-orders", response={200: ConditionalOut, 201: ConditionalOut, **ERRORS})
def conditional_create(request: HttpRequest, payload: ConditionalIn):
    client = api_client(request)
    client.require_account(payload.account, trade=True)
    result = services.conditional_create(services.ParentInput(**payload.model_dump()), actor=client.actor)
    return Status(201 if result.created else 200, selectors.conditional_as_json(
        selectors.conditional_visible(parent_id=result.parent.pk, accounts=client.accounts)))


@router.get("/conditional-orders", response={200: list[ConditionalOut], **ERRORS})
def conditional_list(request: HttpRequest, account: str | None = None, state: str | None = None, symbol: str | None = None,
                     kind: str | None = None, strategy: str | None = None, limit: int = 100, offset: int = Query(0, le=MAX_OFFSET)):
    client = api_client(request)
    if account:
        client.require_account(account)
    parents = selectors.conditional_list(accounts=client.accounts, account=account, state=state, symbol=symbol, kind=kind,
                                         strategy=strategy, limit=max(1, min(limit, 1000)), offset=max(offset, 0))
    return Status(200, [selectors.conditional_as_json(p) for p in parents])


@router.get("/conditional-orders/{parent_id}", response={200: ConditionalOut, **ERRORS})
def conditional_get(request: HttpRequest, parent_id: int):
    parent = selectors.conditional_visible(parent_id=parent_id, accounts=api_client(request).accounts)
    return Status(200, selectors.conditional_as_json(parent, history=True))


def _change(request: HttpRequest, parent_id: int, change: Callable[[int, Actor], object]):
    """A trading change to one visible parent by its account's trading key: ``change(parent_id,
    actor)``, then the parent as it is now."""
    client = api_client(request)
    parent = selectors.conditional_visible(parent_id=parent_id, accounts=client.accounts)
    client.require_account(parent.account.name, trade=True)
    change(parent.pk, client.actor)
    return Status(200, selectors.conditional_as_json(selectors.conditional_visible(parent_id=parent.pk, accounts=client.accounts)))


@router.post("/conditional-orders/{parent_id}/cancel", response={200: ConditionalOut, **ERRORS})
def conditional_cancel(request: HttpRequest, parent_id: int):
    return _change(request, parent_id, lambda pk, actor: services.conditional_cancel(parent_id=pk, actor=actor, reason="API撤销"))


@router.post("/conditional-orders/{parent_id}/pause", response={200: ConditionalOut, **ERRORS})
def conditional_pause(request: HttpRequest, parent_id: int):
    return _change(request, parent_id, lambda pk, actor: services.conditional_pause(parent_id=pk, actor=actor, reason="API暂停"))


@router.post("/conditional-orders/{parent_id}/resume", response={200: ConditionalOut, **ERRORS})
def conditional_resume(request: HttpRequest, parent_id: int):
    return _change(request, parent_id, lambda pk, actor: services.conditional_resume(parent_id=pk, actor=actor, reason="API恢复"))


@router.patch("/conditional-orders/{parent_id}", response={200: ConditionalOut, **ERRORS})
def conditional_modify(request: HttpRequest, parent_id: int, payload: ConditionalModifyIn):
    return _change(request, parent_id, lambda pk, actor: services.conditional_modify(
        parent_id=pk, actor=actor, quantity=payload.quantity, params=payload.params, limit_price=payload.limit_price,
        expires_at=payload.expires_at))
