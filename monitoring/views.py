"""The operators' live pages: the dashboard and its snapshot (staff sessions, by role)."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.response import TemplateResponse

from monitoring.labels import VIEW_PERMISSION, live_labels
from monitoring.live import seq_current
from monitoring.selectors import live_snapshot
from trading.clock import now
from trading.models import Account


def _accounts(request: HttpRequest) -> list[Account]:
    if not request.user.has_perm(VIEW_PERMISSION):
        raise PermissionDenied
    name = request.GET.get("account", "")
    accounts = Account.objects.order_by("name")
    if name:
        accounts = accounts.filter(name=name)
    return list(accounts)


def snapshot(request: HttpRequest) -> JsonResponse:
    """GET: the live snapshot of one account (``?account=``) or of all, with the system's health;
    ``?only=seq``: the live-update numbers alone (the order desk, whose rows are the page's own)."""
    accounts = _accounts(request)
    if request.GET.get("only") == "seq":
        return JsonResponse({"at": now().isoformat(), "seq": seq_current([*(a.name for a in accounts), ""]), "accounts": []})
    return JsonResponse(live_snapshot(accounts, system=True))


def dashboard(request: HttpRequest) -> HttpResponse:
    """The live dashboard: every account, or one (``?account=``)."""
    from django.contrib import admin

    accounts = _accounts(request)
    context = {**admin.site.each_context(request), "title": "", "accounts": accounts,
               "all_accounts": list(Account.objects.order_by("name").values_list("name", flat=True)),
               "account": request.GET.get("account", ""), "labels": live_labels()}
    return TemplateResponse(request, "monitoring/dashboard.html", context)
