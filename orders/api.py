"""The orders endpoints of API.md: thin, one service or selector per endpoint."""

from __future__ import annotations

import pydantic
from django.http import HttpRequest
from ninja import Router
from ninja.params.functions import Query
from ninja.responses import Status

from orders import selectors, services
from orders.schemas import BatchIn, BatchOut, FillOut, OrderIn, OrderModifyIn, OrderOut
from trading.auth import api_client, rate_limit_charge
from trading.errors import ErrorCode, Forbidden, input_problems
from trading.i18n import bilingual
from trading.schemas import BODY_ERRORS, error_responses

router = Router(tags=["orders"])

ERRORS = error_responses(*BODY_ERRORS, 403, 404, 409)
MAX_OFFSET = 10**9  # inside any OFFSET the databases take


def _input(payload: OrderIn) -> services.OrderInput:
    return services.OrderInput(**payload.model_dump())


@router.post("/orders", response={200: OrderOut, 201: OrderOut, **ERRORS})
def order_create(request: HttpRequest, payload: OrderIn):
    client = api_client(request)
    client.require_account(payload.account, trade=True)
    result = services.order_submit(_input(payload), actor=client.actor)
    return Status((201 if result.created else 200), selectors.order_as_json(result.order))


@router.post("/orders/batch", response={200: BatchOut, **ERRORS})
def order_create_batch(request: HttpRequest, payload: BatchIn):
    client = api_client(request)
    if not client.can_trade:
        raise Forbidden(bilingual("this key is read-only"))
    services.batch_size_check(len(payload.orders))
    rate_limit_charge(request, len(payload.orders))  # a batch of N orders costs N requests
    items: list[services.OrderInput | None] = []
    problems: list[tuple[int, list[dict]]] = []
    for index, raw in enumerate(payload.orders):
        try:
            items.append(_input(OrderIn(**raw)))
        except pydantic.ValidationError as exc:  # reported per item, below
            problems.append((index, input_problems(exc.errors(), where=["body", "orders", index])))
            items.append(None)

    def may_trade(account: str) -> bool:
        client.require_account(account, trade=True)  # 404 or 403 for an item as for a single order
        return True

    valid = [(i, item) for i, item in enumerate(items) if item is not None]
    results = services.order_submit_batch([item for _, item in valid], actor=client.actor, allowed=may_trade)
    answers: list[dict] = [{}] * len(items)
    for (index, _), result in zip(valid, results, strict=True):
        answers[index] = {
            "index": index,
            "status_code": result.status_code,
            "order": selectors.order_as_json(result.order) if result.order else None,
            "detail": result.error,
            "code": result.code,
        }
    for index, detail in problems:
        answers[index] = {"index": index, "status_code": 422, "order": None, "detail": detail, "code": ErrorCode.INVALID_INPUT}
    return Status(200, {"results": answers})


@router.get("/orders", response={200: list[OrderOut], **ERRORS})
def order_list(request: HttpRequest, account: str | None = None, status: str | None = None, symbol: str | None = None,
               strategy: str | None = None, limit: int = 100, offset: int = Query(0, le=MAX_OFFSET)):
    client = api_client(request)
    if account:
        client.require_account(account)
    limit = max(1, min(limit, 1000))
    orders = selectors.order_list(accounts=client.accounts, account=account, status=status, symbol=symbol,
                                  strategy=strategy, limit=limit, offset=max(offset, 0))
    return Status(200, [selectors.order_as_json(o) for o in orders])


@router.get("/orders/{order_id}", response={200: OrderOut, **ERRORS})
def order_get(request: HttpRequest, order_id: int):
    return Status(200, selectors.order_as_json(selectors.order_visible(order_id=order_id, accounts=api_client(request).accounts)))


@router.post("/orders/{order_id}/cancel", response={202: OrderOut, **ERRORS})
def order_cancel(request: HttpRequest, order_id: int):
    client = api_client(request)
    order = selectors.order_visible(order_id=order_id, accounts=client.accounts)
    client.require_account(order.account.name, trade=True)
    order = services.order_cancel(order_id=order.pk, actor=client.actor, reason="API撤单")
    return Status(202, selectors.order_as_json(selectors.order_visible(order_id=order.pk, accounts=client.accounts)))


@router.patch("/orders/{order_id}", response={200: OrderOut, **ERRORS})
def order_modify(request: HttpRequest, order_id: int, payload: OrderModifyIn):
    client = api_client(request)
    order = selectors.order_visible(order_id=order_id, accounts=client.accounts)
    client.require_account(order.account.name, trade=True)
    replacement = services.order_modify(order_id=order.pk, actor=client.actor, price=payload.price, quantity=payload.quantity)
    return Status(200, selectors.order_as_json(selectors.order_visible(order_id=replacement.pk, accounts=client.accounts)))


@router.get("/orders/{order_id}/fills", response={200: list[FillOut], **ERRORS})
def order_fills(request: HttpRequest, order_id: int):
    order = selectors.order_visible(order_id=order_id, accounts=api_client(request).accounts)
    return Status(200, [selectors.fill_as_json(f, order) for f in order.fills.order_by("id")])
