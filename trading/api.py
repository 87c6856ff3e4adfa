"""Accounts endpoints of API.md."""

from __future__ import annotations

from datetime import date

from django.http import HttpRequest
from ninja import Router
from ninja.params.functions import Path
from ninja.responses import Status
from pydantic import BaseModel

from orders.schemas import FillOut
from orders.selectors import fill_list_of_day
from orders.services import account_by_name, account_reconcile
from trading import selectors
from trading.auth import ApiKeyAuth, api_client, api_key_disclosure_acknowledge, client_address
from trading.clock import now
from trading.i18n import bilingual_lazy
from trading.schemas import BODY_ERRORS, error_responses
from trading.suitability import RISK_DISCLOSURE_TEXT, RISK_DISCLOSURE_VERSION

router = Router(tags=["accounts"])
ERRORS = error_responses(403, 404)
ACCOUNT_NAME = Path(..., description=bilingual_lazy("account name"), example="demo")


class BalanceOut(BaseModel):
    account: str
    cash: str
    available: str
    frozen: str
    market_value: str
    total_assets: str


class ReconcileOut(BaseModel):
    account: str
    orders_changed: int
    discrepancies_opened: int
    discrepancies_seen_again: int
    discrepancies_closed: int
    discrepancies_open: int


class PositionOut(BaseModel):
    symbol: str
    name: str
    quantity: int
    sellable_quantity: int
    frozen_quantity: int
    avg_cost: str | None
    last_price: str | None
    market_value: str
    unrealized_pnl: str


def _account(request: HttpRequest, name: str):
    client = api_client(request)
    client.require_account(name)
    return account_by_name(name)


@router.get("/accounts/{name}/balance", response={200: BalanceOut, **ERRORS})
def account_balance(request: HttpRequest, name: str = ACCOUNT_NAME):
    return Status(200, selectors.account_balance(account=_account(request, name), at=now()))


@router.get("/accounts/{name}/positions", response={200: list[PositionOut], **ERRORS})
def account_positions(request: HttpRequest, name: str = ACCOUNT_NAME):
    return Status(200, selectors.account_positions(account=_account(request, name), at=now()))


@router.get("/accounts/{name}/trades", response={200: list[FillOut], **ERRORS})
def account_trades(request: HttpRequest, name: str = ACCOUNT_NAME, date: date | None = None):  # noqa: A002 - API.md names it so
    account = _account(request, name)
    day = date or selectors.account_trading_day(account, now())
    return Status(200, fill_list_of_day(account_name=account.name, day=day))


class DisclosureOut(BaseModel):
    version: str
    text: str
    acknowledged: bool


class DisclosureIn(BaseModel):
    version: str
    acknowledged_by: str


# The disclosure's own endpoints answer a key that has not acknowledged it yet.
DISCLOSURE_AUTH = ApiKeyAuth(require_disclosure=False)


@router.get("/disclosure", response={200: DisclosureOut, **error_responses()}, auth=DISCLOSURE_AUTH, tags=["disclosure"])
def disclosure_read(request: HttpRequest):
    """The current risk disclosure (风险揭示书) and whether this key's owner acknowledged it."""
    client = api_client(request)
    return Status(200, DisclosureOut(version=RISK_DISCLOSURE_VERSION, text=RISK_DISCLOSURE_TEXT,
                                     acknowledged=client.disclosure_acknowledged))


@router.post("/disclosure", response={200: DisclosureOut, **error_responses(*BODY_ERRORS)}, auth=DISCLOSURE_AUTH, tags=["disclosure"])
def disclosure_acknowledge(request: HttpRequest, payload: DisclosureIn):
    """The key's owner acknowledges the risk disclosure of ``version`` (audited, with the address)."""
    client = api_client(request)
    api_key_disclosure_acknowledge(key_id=client.key_id, version=payload.version, acknowledged_by=payload.acknowledged_by,
                                   address=client_address(request))
    return Status(200, DisclosureOut(version=RISK_DISCLOSURE_VERSION, text=RISK_DISCLOSURE_TEXT, acknowledged=True))


@router.post("/accounts/{name}/reconcile", response={200: ReconcileOut, **error_responses(403, 502, 503)})
def account_reconcile_now(request: HttpRequest, name: str = ACCOUNT_NAME):
    client = api_client(request)
    client.require_account(name, trade=True)  # it may re-send an order the broker never received
    result = account_reconcile(account_id=account_by_name(name).pk, actor=client.actor)
    return Status(200, ReconcileOut(account=result.account, orders_changed=result.orders_changed,
                                    discrepancies_opened=result.opened, discrepancies_seen_again=result.seen_again,
                                    discrepancies_closed=result.closed, discrepancies_open=result.open_total))
