"""POST /risk/check: the verdicts of every rule for an order, creating nothing."""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Router
from ninja.responses import Status
from pydantic import BaseModel

from orders.schemas import ErrorOut, OrderIn, VerdictOut
from risk import services
from trading.auth import ApiClient

router = Router(tags=["risk"])


class RiskCheckOut(BaseModel):
    decision: str
    passed: bool
    verdicts: list[VerdictOut]


@router.post("/risk/check", response={200: RiskCheckOut, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut, 422: ErrorOut})
def risk_check(request: HttpRequest, payload: OrderIn):
    from orders.services import OrderInput

    client: ApiClient = request.auth  # type: ignore[attr-defined]
    client.require_account(payload.account)
    outcome = services.risk_dry_run(OrderInput(**payload.model_dump()))
    return Status(200, {
        "decision": str(outcome.decision),
        "passed": outcome.decision == "PASS",
        "verdicts": [v.as_json() for v in outcome.verdicts],
    })
