"""URLs: the admin, the strategies' REST API under /api/v1/ and health."""

from __future__ import annotations

import logging

from django.contrib import admin
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import include, path
from django.utils.module_loading import import_string
from ninja import NinjaAPI, Swagger
from ninja.errors import AuthenticationError, HttpError, ValidationError

from trading.auth import ApiKeyAuth, RateLimited
from trading.errors import ErrorCode, FieldProblem, InputRule, TradingError, input_problems
from trading.i18n import bilingual, bilingual_lazy
from trading.market_rules import MarketRuleViolation

log = logging.getLogger("trading.api")

api = NinjaAPI(
    title=bilingual_lazy("A-share trading back office API"),
    version="1.0.0",
    description=bilingual_lazy("Orders, accounts, risk checks and paper-market data for strategies. See docs/api.md."),
    auth=ApiKeyAuth(),
    urls_namespace="api-v1",
    # Served from django-ninja's static files ("ninja" in INSTALLED_APPS); no call to Swagger's online validator.
    docs=Swagger(settings={"validatorUrl": None}),
)


@api.exception_handler(TradingError)
def trading_error(request: HttpRequest, exc: TradingError) -> HttpResponse:
    return api.create_response(request, {"detail": exc.detail(), "code": exc.code}, status=exc.status_code)


@api.exception_handler(RateLimited)
def rate_limited(request: HttpRequest, exc: RateLimited) -> HttpResponse:
    response = api.create_response(request, {"detail": exc.detail(), "code": exc.code}, status=exc.status_code)
    response["Retry-After"] = str(exc.retry_after)
    return response


@api.exception_handler(ValidationError)
def validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    detail = []
    for error in exc.errors:
        loc = tuple(error.get("loc", ()))
        # ninja reports ["body", "payload", "quantity"]: the field is what follows.
        skip = 2 if loc[:2] == ("body", "payload") else 1
        detail.extend(input_problems([error], where=[str(loc[0])] if loc else [], skip=skip))
    return api.create_response(request, {"detail": detail, "code": ErrorCode.INVALID_INPUT}, status=422)


@api.exception_handler(MarketRuleViolation)
def market_rule_violation(request: HttpRequest, exc: MarketRuleViolation) -> HttpResponse:
    problem = FieldProblem(exc.field, exc.rule, exc.message)
    return api.create_response(request, {"detail": [problem.as_detail()], "code": ErrorCode.INVALID_INPUT}, status=422)


@api.exception_handler(HttpError)
def http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    if exc.status_code == 400:  # ninja raises it for one thing only: a body that is not JSON
        problem = {"loc": ["body"], "field": "body", "rule": InputRule.INVALID_JSON,
                   "msg": bilingual("the request body must be a JSON object; send Content-Type: application/json")}
        return api.create_response(request, {"detail": [problem], "code": ErrorCode.INVALID_JSON}, status=400)
    return api.create_response(request, {"detail": str(exc), "code": ErrorCode.HTTP_ERROR}, status=exc.status_code)


@api.exception_handler(RequestDataTooBig)
def body_too_large(request: HttpRequest, exc: RequestDataTooBig) -> HttpResponse:
    from django.conf import settings

    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return api.create_response(
        request, {"detail": bilingual("the request body is over the upload limit of {limit} bytes", limit=limit),
                  "code": ErrorCode.BODY_TOO_LARGE}, status=413)


@api.exception_handler(AuthenticationError)
def auth_error(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    return api.create_response(
        request, {"detail": bilingual("missing or invalid API key"), "code": ErrorCode.UNAUTHORIZED}, status=401
    )


@api.exception_handler(Exception)
def unexpected_error(request: HttpRequest, exc: Exception) -> HttpResponse:
    log.exception("unhandled error on %s %s", request.method, request.path)
    return api.create_response(request, {"detail": bilingual("internal error"), "code": ErrorCode.INTERNAL_ERROR}, status=500)


def _mount() -> None:
    from brokers.api import router as market_router
    from conditions.api import router as conditions_router
    from orders.api import router as orders_router
    from risk.api import router as risk_router
    from trading.api import router as accounts_router

    api.add_router("", orders_router)
    api.add_router("", accounts_router)
    api.add_router("", risk_router)
    api.add_router("", market_router)
    api.add_router("", conditions_router)
    # Named, not imported: nothing below monitoring imports it (pyproject.toml, import-linter).
    api.add_router("", import_string("monitoring.api.router"))


_mount()


def health(request: HttpRequest) -> JsonResponse:
    from django.db import connection

    from brokers.models import BrokerLink, LinkState

    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    # The web process is healthy whatever the brokers do: a link down is reported, not a failure.
    down = sorted(BrokerLink.objects.filter(state=LinkState.DOWN).values_list("account__name", flat=True))
    return JsonResponse({"status": "ok", "brokers_down": down})


urlpatterns = [
    path("admin/", admin.site.urls),
    path("staff/", include("staff.urls")),
    path("monitoring/", include("monitoring.urls")),
    path("api/v1/", api.urls),
    path("healthz", health),
    path("", include("monitoring.probe_urls")),  # /metrics and /readyz (docs/metrics.md)
]
