"""The operators' live pages: the dashboard and its snapshot (staff sessions, by role)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.response import TemplateResponse
from django.utils.translation import gettext

from brokers.models import LinkState
from monitoring.consumers import VIEW_PERMISSION
from monitoring.live import seq_current
from monitoring.selectors import live_snapshot
from orders.models import OrderStatus
from trading.clock import now
from trading.market_rules import Side
from trading.models import Account


def _accounts(request: HttpRequest) -> list[Account]:
    if not request.user.has_perm(VIEW_PERMISSION):
        raise PermissionDenied
    name = request.GET.get("account", "")
    accounts = Account.objects.order_by("name")
    if name:
        accounts = accounts.filter(name=name)
    return list(accounts)


def live_labels() -> dict[str, Any]:
    """The words the live pages' JavaScript shows, in the request's language (admin's catalogues)."""
    return {
        "status": {value: gettext(str(label)) for value, label in OrderStatus.choices},
        "side": {value: gettext(str(label)) for value, label in Side.choices},
        "link": {value: gettext(str(label)) for value, label in LinkState.choices},
        "workers": {"up": gettext("running"), "down": gettext("none answering"), "inline": gettext("in-process"),
                    "unknown": gettext("unknown")},
        "connection": {"live": gettext("live"), "connecting": gettext("connecting"), "resync": gettext("re-syncing"),
                       "polling": gettext("polling (no websocket)")},
        "text": {"none": gettext("nothing yet"), "pnl": gettext("P&L"), "broker": gettext("Broker"), "workers": gettext("Workers"),
                 "scheduler": gettext("Scheduler"), "queue": gettext("Queue backlog"), "outbox": gettext("Orders owed to the broker"),
                 "ago": gettext("last heartbeat %s s ago"), "new_held": gettext("New orders arrived: reload to see them"),
                 "missed": gettext("Some changes were missed: reload the page")},
    }


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
