"""The back office's admin site: two-factor login, the approval-queue badge, the language switch."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import admin
from django.http import HttpRequest
from django.urls import reverse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from staff.admin_lookups import strict
from staff.forms import StaffLoginForm
from staff.security import is_verified


class TradingAdminSite(admin.AdminSite):
    site_header = _("A-share trading back office")
    site_title = _("Trading back office")
    index_title = _("Trading day")
    login_form = StaffLoginForm
    login_template = "admin/staff_login.html"
    site_url = None  # no public site: the admin is the back office

    def register(self, model_or_iterable: Any, admin_class: Any = None, **options: Any) -> None:
        """Every ModelAdmin, ours and third-party ones, filters only on what it declares
        (staff.admin_lookups): no querystring lookups on secrets or undeclared fields."""
        super().register(model_or_iterable, strict(admin_class or admin.ModelAdmin), **options)

    def has_permission(self, request: HttpRequest) -> bool:
        """Active staff who passed the second factor (unless exempt, see staff.security)."""
        return super().has_permission(request) and is_verified(request)

    # Pages a staff member may open before acknowledging the risk disclosure.
    DISCLOSURE_EXEMPT = frozenset({"staff_disclosure", "logout", "login", "jsi18n"})

    def admin_view(self, view: Any, cacheable: bool = False) -> Any:
        """Every admin page, behind the risk disclosure: a staff member who has not acknowledged
        the current one is sent to it first (``staff_disclosure``), then back."""
        from functools import wraps

        from django.http import HttpResponseRedirect
        from django.utils.http import urlencode

        from staff.services import staff_disclosure_acknowledged

        @wraps(view)
        def gated(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            match = request.resolver_match
            if (request.user.is_active and request.user.is_staff and self.has_permission(request)
                    and (match is None or match.url_name not in self.DISCLOSURE_EXEMPT)
                    and not staff_disclosure_acknowledged(request.user)):
                return HttpResponseRedirect(reverse("admin:staff_disclosure") + "?" + urlencode({"next": request.get_full_path()}))
            return view(request, *args, **kwargs)

        return super().admin_view(gated, cacheable)

    def get_urls(self) -> list[Any]:
        from django.urls import path

        return [path("disclosure/", super().admin_view(self.disclosure_view), name="staff_disclosure"), *super().get_urls()]

    def disclosure_view(self, request: HttpRequest) -> Any:
        """The risk disclosure a staff member acknowledges before first using the admin (audited)."""
        from django.http import HttpResponseRedirect
        from django.shortcuts import render
        from django.utils.http import url_has_allowed_host_and_scheme

        from staff.services import staff_disclosure_acknowledge
        from trading.auth import client_address
        from trading.suitability import RISK_DISCLOSURE_TEXT, RISK_DISCLOSURE_VERSION

        next_url = request.POST.get("next") or request.GET.get("next") or "/admin/"
        if not url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
            next_url = "/admin/"
        error = ""
        if request.method == "POST":
            if request.POST.get("accept") == "yes":
                staff_disclosure_acknowledge(user=request.user, version=request.POST.get("version", ""),
                                             address=client_address(request))
                return HttpResponseRedirect(next_url)
            error = gettext("Tick the box to acknowledge the risk disclosure.")
        context = {**self.each_context(request), "title": gettext("Risk disclosure"), "text": RISK_DISCLOSURE_TEXT,
                   "version": RISK_DISCLOSURE_VERSION, "next": next_url, "error": error}
        return render(request, "admin/staff/disclosure.html", context)

    def each_context(self, request: HttpRequest) -> dict[str, Any]:
        context = super().each_context(request)
        context["pending_approval_count"] = pending_approval_count(request)
        context["pending_approval_url"] = pending_queue_url()
        context["demo_mode"] = getattr(settings, "DEMO_MODE", False)
        return context

    def index(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> Any:
        context = {**(extra_context or {}), "today": today_summary(request)}
        return super().index(request, context)

    def get_app_list(self, request: HttpRequest, app_label: str | None = None) -> list[dict[str, Any]]:
        """The app list, with the approval queue as the first entry of the orders app."""
        app_list = super().get_app_list(request, app_label)
        count = pending_approval_count(request)
        if count is None:
            return app_list
        for app in app_list:
            if app["app_label"] == "orders":
                app["models"].insert(0, {
                    "name": f"{gettext('Orders pending approval')} ({count})",
                    "object_name": "PendingApprovalQueue",
                    "perms": {"view": True, "add": False, "change": False, "delete": False},
                    "admin_url": pending_queue_url(),
                    "add_url": None,
                    "view_only": True,
                })
        return app_list


def today_summary(request: HttpRequest) -> list[dict[str, Any]] | None:
    """The index page's "today" box: what needs an operator's eye, each with a link to the list."""
    user = request.user
    if not user.has_perm("orders.view_order"):
        return None
    from django.db.models import Count, Sum
    from django.utils import timezone

    from orders.models import Fill, Order, OrderStatus
    from trading.clock import now
    from trading.models import Account, TradingState

    S = OrderStatus
    by_status = dict(Order.objects.filter(status__in=[S.PENDING_APPROVAL, S.UNKNOWN, S.NEW, S.SUBMITTING, S.SUBMITTED,
                                                       S.PARTIALLY_FILLED, S.CANCEL_REQUESTED])
                     .values_list("status").annotate(n=Count("id")).order_by())
    working = [S.NEW, S.SUBMITTING, S.SUBMITTED, S.PARTIALLY_FILLED, S.CANCEL_REQUESTED]
    today = timezone.localdate(now())
    fills = Fill.objects.filter(trading_day=today).aggregate(n=Count("id"), amount=Sum("amount"))
    restricted = Account.objects.exclude(trading_state=TradingState.ACTIVE).count()
    orders = reverse("admin:orders_order_changelist")
    rows = [
        {"label": gettext("Orders pending approval"), "value": by_status.get(S.PENDING_APPROVAL, 0),
         "url": pending_queue_url(), "alert": by_status.get(S.PENDING_APPROVAL, 0) > 0},
        {"label": gettext("Orders in unknown state"), "value": by_status.get(S.UNKNOWN, 0),
         "url": f"{orders}?status__exact=UNKNOWN", "alert": by_status.get(S.UNKNOWN, 0) > 0},
        {"label": gettext("Working orders"), "value": sum(by_status.get(s, 0) for s in working),
         "url": f"{orders}?status__in={','.join(working)}", "alert": False},
        {"label": gettext("Fills today"), "value": fills["n"] or 0,
         "url": reverse("admin:orders_fill_changelist") + f"?trading_day={today.isoformat()}", "alert": False,
         "extra": fills["amount"] or ""},
        {"label": gettext("Accounts halted or reduce-only"), "value": restricted,
         "url": reverse("admin:trading_account_changelist") + "?trading_state__exact=HALTED", "alert": restricted > 0},
    ]
    return rows


def pending_queue_url() -> str:
    return reverse("admin:orders_order_changelist") + "?status__exact=PENDING_APPROVAL"


def pending_approval_count(request: HttpRequest) -> int | None:
    """Orders waiting for an operator, or None when the user may not see orders."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or not user.has_perm("orders.view_order"):
        return None
    from orders.models import Order, OrderStatus

    return Order.objects.filter(status=OrderStatus.PENDING_APPROVAL).count()
