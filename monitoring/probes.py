"""The operations endpoints: ``/metrics`` (Prometheus, protected) and ``/readyz`` (load balancers).

``/metrics`` answers staff signed in to the operators' site (second factor passed), a client
sending ``Authorization: Bearer <METRICS_TOKEN>``, or anyone when ``METRICS_PUBLIC`` is on (never
in production settings); everyone else gets 401. ``/readyz`` is open, like ``/healthz``: it names
the failing parts, never their addresses. See docs/metrics.md.
"""

from __future__ import annotations

import hmac

from django.conf import settings
from django.contrib import admin
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from monitoring.metrics import metrics_text
from monitoring.readiness import readiness
from trading.errors import ErrorCode
from trading.i18n import bilingual


def scrape_allowed(request: HttpRequest) -> bool:
    """Whether ``request`` may read the metrics (see the module docstring)."""
    token = settings.METRICS_TOKEN
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    if token and scheme.lower() == "bearer" and hmac.compare_digest(credentials.strip().encode(), token.encode()):
        return True
    if settings.METRICS_PUBLIC:
        return True
    return admin.site.has_permission(request)


@never_cache
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    if not scrape_allowed(request):
        response = JsonResponse({"detail": bilingual("metrics need a staff login or the metrics token"),
                                 "code": ErrorCode.UNAUTHORIZED}, status=401)
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    body, content_type = metrics_text()
    return HttpResponse(body, content_type=content_type)


@never_cache
@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    report = readiness()
    return JsonResponse(report, status=503 if report["failing"] else 200)
