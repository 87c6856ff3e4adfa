"""POST /risk/check: what intake would answer for an order (422s and verdicts), creating nothing."""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Router
from ninja.responses import Status
from pydantic import BaseModel

from orders.schemas import OrderIn, VerdictOut
from orders.services import OrderInput, order_dry_run
from trading.auth import api_client
from trading.schemas import BODY_ERRORS, error_responses

router = Router(tags=["risk"])


class RiskCheckOut(BaseModel):
    decision: str
    passed: bool
    verdicts: list[VerdictOut]


@router.post("/risk/check", response={200: RiskCheckOut, **error_responses(*BODY_ERRORS, 403, 404)})
def risk_check(request: HttpRequest, payload: OrderIn):
    client = api_client(request)
    client.require_account(payload.account)
    outcome = order_dry_run(OrderInput(**payload.model_dump()))
    return Status(200, {
        "decision": str(outcome.decision),
        "passed": outcome.decision == "PASS",
        "verdicts": [v.as_json() for v in outcome.verdicts],
    })
