"""The live-update snapshot for strategies (API keys): what a websocket client re-syncs from."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Router
from ninja.params.functions import Path
from ninja.responses import Status
from pydantic import BaseModel

from monitoring.selectors import live_snapshot
from orders.services import account_by_name
from trading.auth import api_client
from trading.schemas import error_responses

router = Router(tags=["live"])
ERRORS = error_responses(403, 404)
ACCOUNT_NAME = Path(..., description="账户名 (account name)", example="demo")


class LiveSnapshotOut(BaseModel):
    at: str
    seq: dict[str, int]
    accounts: list[dict[str, Any]]


@router.get("/accounts/{name}/live-snapshot", response={200: LiveSnapshotOut, **ERRORS})
def account_live_snapshot(request: HttpRequest, name: str = ACCOUNT_NAME):
    """The account's balance, positions, today's orders and risk events, with ``seq``: the number of
    the last live event (websocket /ws/live/) the snapshot includes."""
    api_client(request).require_account(name)
    return Status(200, live_snapshot([account_by_name(name)], system=False))
