"""The application's URLs plus the benchmark's floor: one bare INSERT through the same stack
(gunicorn, Django middleware, django-ninja, API-key auth, PostgreSQL)."""

from django.http import HttpRequest
from django.urls import path
from ninja import NinjaAPI
from ninja.responses import Status
from pydantic import BaseModel

from audit.models import AuditEvent
from trading.auth import ApiKeyAuth
from trading.errors import TradingError
from trading.urls import trading_error
from trading.urls import urlpatterns as app_urlpatterns

floor_api = NinjaAPI(auth=ApiKeyAuth(), urls_namespace="bench-floor", docs_url=None, openapi_url=None)
floor_api.exception_handler(TradingError)(trading_error)


class FloorIn(BaseModel):  # as orders.schemas.OrderIn
    account: str
    client_order_id: str


@floor_api.post("/insert", response={201: dict})
def floor_insert(request: HttpRequest, payload: FloorIn):
    row = AuditEvent.objects.create(action="bench.floor", object_type="bench", object_id=payload.client_order_id,
                                    account=payload.account)
    return Status(201, {"id": row.pk})


urlpatterns = [*app_urlpatterns, path("bench/", floor_api.urls)]
