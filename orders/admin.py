"""The operators' order desk: the approval queue, the order page with its timeline, and the
order actions (approve, reject, override, cancel, modify), single and in bulk.

Nothing here changes an order itself: every action calls a service
(orders.review for approval decisions, orders.services for cancel and modify)
with the operator as actor, so the state machine, the risk re-check and the
audit trail apply. A service's TradingError (another operator was faster, the
order moved on) is shown as an error message.

Why one module of over 500 lines: the order desk's list, page and actions share the queue's
querysets, the confirmation forms and the error handling, which splitting would repeat.
"""

from __future__ import annotations

from decimal import Decimal
from types import ModuleType
from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from audit.models import AuditEvent
from brokers.models import LinkState
from orders.models import TERMINAL_STATUSES, Discrepancy, DiscrepancyStatus, Fill, Order, OrderStatus
from staff.admin_tools import (
    ReadOnlyAdminMixin,
    actor_of,
    badge,
    local_time,
    price_text,
    reason_page,
    run_for_each,
    run_service,
    short_time,
    side_html,
)
from staff.forms import OrderModifyForm, ReasonForm
from trading.market_rules import Side

S = OrderStatus
# Where each action applies; the services check again under the row lock.
APPROVABLE = {S.PENDING_APPROVAL}
CANCELLABLE = {S.NEW, S.PENDING_APPROVAL, S.SUBMITTED, S.PARTIALLY_FILLED}
MODIFIABLE = {S.NEW, S.PENDING_APPROVAL, S.SUBMITTED, S.PARTIALLY_FILLED}


def _review() -> ModuleType:
    from orders import review

    return review


class StrategyFilter(admin.SimpleListFilter):
    title = _("strategy")
    parameter_name = "strategy"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        names = Order.objects.exclude(strategy="").order_by("strategy").values_list("strategy", flat=True).distinct()[:200]
        return [(name, name) for name in names]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Order]) -> QuerySet[Order]:
        if self.value():
            return queryset.filter(strategy=self.value())
        return queryset


class BrokerWaitFilter(admin.SimpleListFilter):
    """Orders accepted and owed to a broker whose link is down (brokers.connection): they go
    when it is back, once."""

    title = _("broker link")
    parameter_name = "broker_link"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [("waiting", _("waiting for the broker"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Order]) -> QuerySet[Order]:
        if self.value() == "waiting":
            return queryset.filter(status=OrderStatus.NEW, admitted_at__isnull=False,
                                   account__broker_link__state=LinkState.DOWN)
        return queryset


@admin.register(Order)
class OrderAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    change_form_template = "admin/orders/order/change_form.html"
    change_list_template = "admin/orders/order/change_list.html"
    list_display = ["id", "created_local", "account", "symbol_display", "side_display", "price_display",
                    "quantity_display", "status_badge", "strategy", "reason_short"]
    list_display_links = ["id", "created_local"]
    list_filter = ["status", BrokerWaitFilter, ("account", admin.RelatedOnlyFieldListFilter), "side", StrategyFilter,
                   ("instrument", admin.RelatedOnlyFieldListFilter), "trading_day", "source"]
    search_fields = ["=id", "client_order_id", "broker_order_id", "instrument__code", "instrument__name", "strategy"]
    search_help_text = _("Order id, client order id, broker order id, symbol code or name, strategy")
    list_select_related = ["account", "instrument"]
    date_hierarchy = "created_at"
    list_per_page = 50
    actions = ["approve_selected", "reject_selected", "override_selected", "cancel_selected"]
    fieldsets = [
        (_("Order"), {"fields": ["account", "instrument", "client_order_id", "strategy", "side", "order_type",
                                 "price", "protection_price", "reference_price", "quantity", "trading_day", "source",
                                 "submitted_by"]}),
        (_("Execution"), {"fields": ["status", "status_reason", "broker_order_id", "filled_quantity",
                                     "filled_amount", "fees_paid", "frozen_amount", "frozen_quantity",
                                     "replaces", "created_at", "updated_at", "submitted_at"]}),
    ]

    # ------------------------------------------------------------------ permissions
    # All fields are read-only: orders change only through the actions below.

    def has_approve_permission(self, request: HttpRequest, obj: Order | None = None) -> bool:
        return request.user.has_perm("orders.approve_order")

    def has_reject_permission(self, request: HttpRequest, obj: Order | None = None) -> bool:
        return request.user.has_perm("orders.reject_order")

    def has_override_permission(self, request: HttpRequest, obj: Order | None = None) -> bool:
        return request.user.has_perm("orders.override_order")

    def has_cancel_permission(self, request: HttpRequest, obj: Order | None = None) -> bool:
        return request.user.has_perm("orders.cancel_order")

    def has_modify_permission(self, request: HttpRequest, obj: Order | None = None) -> bool:
        return request.user.has_perm("orders.modify_order")

    def get_readonly_fields(self, request: HttpRequest, obj: Order | None = None) -> list[str]:
        return [f.name for f in Order._meta.fields]

    # ------------------------------------------------------------------ list columns

    def object_label(self, obj: Order) -> str:
        """How an order is named to a person: "#7 买入 1000 600000.SH 浦发银行 @ 10.05 · 待审批"."""
        price = f" @ {price_text(obj.price)}" if obj.price is not None else ""
        return (f"#{obj.pk} {obj.get_side_display()} {obj.quantity} {obj.instrument.symbol} {obj.instrument.name}"
                f"{price} · {obj.get_status_display()}")

    @admin.display(description=_("created at"), ordering="created_at")
    def created_local(self, obj: Order) -> str:
        return short_time(obj.created_at)

    @admin.display(description=_("symbol"), ordering="instrument__code")
    def symbol_display(self, obj: Order) -> str:
        return format_html("{}<br><span class='tbo-muted'>{}</span>", obj.instrument.symbol, obj.instrument.name)

    @admin.display(description=_("side"), ordering="side")
    def side_display(self, obj: Order) -> str:
        return format_html("{} <span class='tbo-muted'>{}</span>", side_html(obj.side, obj.get_side_display()),
                           obj.get_order_type_display())

    @admin.display(description=_("price"), ordering="price")
    def price_display(self, obj: Order) -> str:
        return format_html('<span class="tbo-num">{}</span>', price_text(obj.price))

    @admin.display(description=_("filled / quantity"), ordering="quantity")
    def quantity_display(self, obj: Order) -> str:
        return format_html('<span class="tbo-num">{} / {}</span>', obj.filled_quantity, obj.quantity)

    @admin.display(description=_("status"), ordering="status")
    def status_badge(self, obj: Order) -> str:
        return badge(obj.status, obj.get_status_display())

    @admin.display(description=_("reason"))
    def reason_short(self, obj: Order) -> str:
        """The failed rules of a held or rejected order, else the status message; all of it on hover."""
        text = obj.status_reason or ""
        failed = [v.get("rule", "") for v in obj.risk_verdicts or [] if not v.get("passed")]
        if failed and obj.status in (S.PENDING_APPROVAL, S.REJECTED):
            return format_html('<span title="{}">{}</span>', text, ", ".join(failed))
        if len(text) <= 24:
            return text
        return format_html('<span title="{}">{}…</span>', text, text[:24])

    # ------------------------------------------------------------------ the order page

    def get_urls(self) -> list[Any]:
        wrap = self.admin_site.admin_view
        return [
            path("<int:object_id>/approve/", wrap(self.approve_view), name="orders_order_approve"),
            path("<int:object_id>/reject/", wrap(self.reject_view), name="orders_order_reject"),
            path("<int:object_id>/override/", wrap(self.override_view), name="orders_order_override"),
            path("<int:object_id>/cancel/", wrap(self.cancel_view), name="orders_order_cancel"),
            path("<int:object_id>/modify/", wrap(self.modify_view), name="orders_order_modify"),
            *super().get_urls(),
        ]

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "",
                    extra_context: dict[str, Any] | None = None) -> HttpResponse:
        order = self.get_object(request, object_id)
        context = dict(extra_context or {})
        if order is not None:
            context.update(self.order_page_context(request, order))
        return super().change_view(request, object_id, form_url, context)

    def order_page_context(self, request: HttpRequest, order: Order) -> dict[str, Any]:
        """The order page beyond its fields: actions allowed now, timeline, verdicts, fills."""
        status = order.status
        return {
            "order": order,
            "subtitle": self.object_label(order),
            "price_text": price_text(order.price),
            "status_badge": self.status_badge(order),
            "side_html": side_html(order.side, order.get_side_display()),
            "can_approve": status in APPROVABLE and self.has_approve_permission(request),
            "can_reject": status in APPROVABLE and self.has_reject_permission(request),
            "can_override": status in APPROVABLE and self.has_override_permission(request),
            "can_cancel": status in CANCELLABLE and self.has_cancel_permission(request),
            "can_modify": status in MODIFIABLE and self.has_modify_permission(request),
            "is_terminal": status in TERMINAL_STATUSES,
            "has_reject_verdict": any(not v.get("passed") and v.get("action") == "REJECT"
                                      for v in order.risk_verdicts or []),
            "timeline": order_timeline(order),
            "verdicts": order_verdicts(order),
            "fills": [{"broker_trade_id": fill.broker_trade_id, "at": local_time(fill.filled_at),
                       "price": price_text(fill.price), "quantity": fill.quantity, "amount": fill.amount,
                       "fees": fill.fees} for fill in order.fills.order_by("filled_at", "id")],
            "replaced_by": list(Order.objects.filter(replaces=order).only("id", "status")),
            "avg_fill_price": price_text(order.avg_fill_price) if order.avg_fill_price is not None else None,
        }

    def _order_or_404(self, request: HttpRequest, object_id: int) -> Order:
        order: Order = get_object_or_404(Order.objects.select_related("account", "instrument"), pk=object_id)
        return order

    def _back(self, order_id: int) -> HttpResponseRedirect:
        return HttpResponseRedirect(reverse("admin:orders_order_change", args=[order_id]))

    def _deny(self, request: HttpRequest, order_id: int) -> HttpResponseRedirect:
        messages.error(request, gettext("You do not have permission for this action."))
        return self._back(order_id)

    def approve_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_approve_permission(request):
            return self._deny(request, object_id)
        order = run_service(request, lambda: _review().order_approve(order_id=object_id, actor=actor_of(request)))
        if order is not None:
            order.refresh_from_db()
            messages.success(request, gettext("Order #%(id)s approved; now %(status)s.")
                             % {"id": object_id, "status": order.get_status_display()})
        return self._back(object_id)

    def _reason_view(self, request: HttpRequest, object_id: int, *, allowed: bool, title: str, submit: str,
                     required: bool, call: Any, done: str, intro: str = "", danger: bool = True) -> HttpResponse:
        if not allowed:
            return self._deny(request, object_id)
        order = self._order_or_404(request, object_id)
        form = ReasonForm(request.POST or None, reason_required=required)
        if request.method == "POST" and form.is_valid():
            reason = form.cleaned_data["reason"]
            result = run_service(request, lambda: call(reason))
            if result is not None:
                order.refresh_from_db()
                messages.success(request, done % {"id": order.pk, "status": order.get_status_display()})
            return self._back(object_id)
        return reason_page(request, self, title=title, form=form, objects=[order], submit_label=submit, danger=danger,
                           intro=intro, extra={"cancel_url": reverse("admin:orders_order_change", args=[order.pk])})

    def reject_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        actor = actor_of(request)
        return self._reason_view(
            request, object_id, allowed=self.has_reject_permission(request), title=gettext("Reject order"),
            submit=gettext("Reject"), required=True, done=gettext("Order #%(id)s rejected; now %(status)s."),
            call=lambda reason: _review().order_reject(order_id=object_id, actor=actor, reason=reason),
        )

    def override_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        actor = actor_of(request)
        return self._reason_view(
            request, object_id, allowed=self.has_override_permission(request), title=gettext("Override risk control"),
            submit=gettext("Override and release"), required=True,
            done=gettext("Order #%(id)s released by override; now %(status)s."),
            intro=gettext("The order is released although a risk rule says REJECT. The reason is kept in the audit trail."),
            call=lambda reason: _review().order_override(order_id=object_id, actor=actor, reason=reason),
        )

    def cancel_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        from orders.services import order_cancel

        actor = actor_of(request)
        return self._reason_view(
            request, object_id, allowed=self.has_cancel_permission(request), title=gettext("Cancel order"),
            submit=gettext("Cancel order"), required=False, done=gettext("Order #%(id)s: cancel sent; now %(status)s."),
            call=lambda reason: order_cancel(order_id=object_id, actor=actor, reason=reason),
        )

    def modify_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        from orders.services import order_modify

        if not self.has_modify_permission(request):
            return self._deny(request, object_id)
        order = self._order_or_404(request, object_id)
        form = OrderModifyForm(request.POST or None, initial={"price": order.price, "quantity": order.quantity})
        if request.method == "POST" and form.is_valid():
            price: Decimal | None = form.cleaned_data["price"]
            quantity: int | None = form.cleaned_data["quantity"]
            replacement = run_service(request, lambda: order_modify(
                order_id=order.pk, actor=actor_of(request),
                price=str(price) if price is not None else None, quantity=quantity))
            if replacement is None:
                return self._back(order.pk)
            messages.success(request, gettext("Order #%(id)s is replaced by #%(new)s (%(status)s).")
                             % {"id": order.pk, "new": replacement.pk, "status": replacement.get_status_display()})
            return self._back(replacement.pk)
        return reason_page(request, self, title=gettext("Modify order"), form=form, objects=[order],
                           submit_label=gettext("Modify (cancel and replace)"), danger=False,
                           intro=gettext("The order is cancelled at the broker and a replacement with the new price "
                                         "and quantity is sent once the cancel is confirmed."),
                           extra={"cancel_url": reverse("admin:orders_order_change", args=[order.pk])})

    # ------------------------------------------------------------------ bulk actions

    @admin.action(description=_("Approve selected orders"), permissions=["approve"])
    def approve_selected(self, request: HttpRequest, queryset: QuerySet[Order]) -> None:
        actor = actor_of(request)
        ids = list(queryset.order_by("id").values_list("id", flat=True))
        run_for_each(request, ids, lambda pk: _review().order_approve(order_id=pk, actor=actor),
                     done=gettext("%(count)d orders approved."))

    def _bulk_with_reason(self, request: HttpRequest, queryset: QuerySet[Order], *, action: str, title: str,
                          submit: str, required: bool, call: Any, done: str, intro: str = "") -> Any:
        form = ReasonForm(request.POST if request.POST.get("post") else None, reason_required=required)
        if request.POST.get("post") and form.is_valid():
            reason = form.cleaned_data["reason"]
            ids = list(queryset.order_by("id").values_list("id", flat=True))
            run_for_each(request, ids, lambda pk: call(pk, reason), done=done)
            return None
        orders = list(queryset.select_related("instrument").order_by("id"))
        return reason_page(request, self, title=title, form=form, objects=orders, submit_label=submit, danger=True,
                           action=action, selected=[str(o.pk) for o in orders], intro=intro,
                           extra={"cancel_url": reverse("admin:orders_order_changelist")})

    @admin.action(description=_("Reject selected orders…"), permissions=["reject"])
    def reject_selected(self, request: HttpRequest, queryset: QuerySet[Order]) -> Any:
        actor = actor_of(request)
        return self._bulk_with_reason(
            request, queryset, action="reject_selected", title=gettext("Reject orders"), submit=gettext("Reject"),
            required=True, done=gettext("%(count)d orders rejected."),
            call=lambda pk, reason: _review().order_reject(order_id=pk, actor=actor, reason=reason))

    @admin.action(description=_("Override risk control for selected orders…"), permissions=["override"])
    def override_selected(self, request: HttpRequest, queryset: QuerySet[Order]) -> Any:
        actor = actor_of(request)
        return self._bulk_with_reason(
            request, queryset, action="override_selected", title=gettext("Override risk control"),
            submit=gettext("Override and release"), required=True,
            done=gettext("%(count)d orders released by override."),
            intro=gettext("The orders are released although a risk rule says REJECT. The reason is kept in the audit trail."),
            call=lambda pk, reason: _review().order_override(order_id=pk, actor=actor, reason=reason))

    @admin.action(description=_("Cancel selected orders…"), permissions=["cancel"])
    def cancel_selected(self, request: HttpRequest, queryset: QuerySet[Order]) -> Any:
        from orders.services import order_cancel

        actor = actor_of(request)
        return self._bulk_with_reason(
            request, queryset, action="cancel_selected", title=gettext("Cancel orders"), submit=gettext("Cancel orders"),
            required=False, done=gettext("%(count)d orders: cancel sent."),
            call=lambda pk, reason: order_cancel(order_id=pk, actor=actor, reason=reason))

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        context = dict(extra_context or {})
        context["is_queue"] = request.GET.get("status__exact") == S.PENDING_APPROVAL
        if context["is_queue"]:
            context["title"] = gettext("Orders pending approval")
        return super().changelist_view(request, context)


# ---------------------------------------------------------------------- the timeline

# Audit actions on orders as a person reads them (status changes and fills are spelled out below).
ACTION_LABELS = {
    "order.approved": _("Approved"),
    "order.risk_overridden": _("Risk control overridden"),
    "order.approval_rechecked_rejected": _("Refused by the re-check on approval"),
    "order.cancel_refused": _("Cancel refused by the broker"),
}


def order_timeline(order: Order) -> list[dict[str, Any]]:
    """Every audit event of the order, oldest first, as rows a person reads."""
    events = AuditEvent.objects.filter(object_type="order", object_id=str(order.pk)).order_by("id")
    labels = dict(OrderStatus.choices)
    rows = []
    for event in events:
        before = event.before or {}
        after = event.after or {}
        what = event.action
        detail = ""
        if event.action in ACTION_LABELS:
            what = str(ACTION_LABELS[event.action])
        if event.action == "order.status_changed":
            what = gettext("Status changed")
            old, new = before.get("status", ""), after.get("status", "")
            detail = f"{gettext(str(labels.get(old, old)))} → {gettext(str(labels.get(new, new)))}"
            if after.get("event"):
                detail += f"  ({after['event']})"
        elif event.action == "order.created":
            what = gettext("Created")
            sides = dict(Side.choices)
            detail = " ".join(str(sides.get(str(after.get("side")), after.get("side", ""))) if k == "side" else
                              str(after.get(k, "")) for k in ("side", "quantity", "symbol") if after.get(k))
            if after.get("price"):
                detail += f" @ {after['price']}"
        elif event.action == "order.filled":
            what = gettext("Filled")
            price = after.get("price")
            detail = f"{after.get('quantity')} @ {price_text(Decimal(price)) if price else '-'}"
        rows.append({
            "at": local_time(event.occurred_at),
            "actor": f"{event.get_actor_type_display()} {event.actor}",
            "actor_type": event.actor_type,
            "action": event.action,
            "what": what,
            "detail": detail,
            "reason": event.reason,
        })
    return rows


def order_verdicts(order: Order) -> list[dict[str, Any]]:
    rows = []
    for verdict in order.risk_verdicts or []:
        rows.append({
            "rule": verdict.get("rule", ""),
            "passed": bool(verdict.get("passed")),
            "action": verdict.get("action", ""),
            "message": verdict.get("message", ""),
            "values": verdict.get("values") or {},
        })
    return rows


@admin.register(Fill)
class FillAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["broker_trade_id", "order_link", "symbol", "side", "price", "quantity", "amount", "fees",
                    "filled_local", "trading_day"]
    list_filter = ["trading_day", ("order__account", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["broker_trade_id", "order__client_order_id", "order__broker_order_id", "order__instrument__code"]
    list_select_related = ["order", "order__instrument", "order__account"]
    date_hierarchy = "filled_at"

    def get_readonly_fields(self, request: HttpRequest, obj: Fill | None = None) -> list[str]:
        return [f.name for f in Fill._meta.fields]

    @admin.display(description=_("order"), ordering="order_id")
    def order_link(self, obj: Fill) -> str:
        return format_html('<a href="{}">#{}</a>', reverse("admin:orders_order_change", args=[obj.order_id]),
                           obj.order_id)

    @admin.display(description=_("symbol"))
    def symbol(self, obj: Fill) -> str:
        return obj.order.instrument.symbol

    @admin.display(description=_("side"))
    def side(self, obj: Fill) -> str:
        return side_html(obj.order.side, obj.order.get_side_display())

    @admin.display(description=_("filled at"), ordering="filled_at")
    def filled_local(self, obj: Fill) -> str:
        return local_time(obj.filled_at)




class DiscrepancyStatusFilter(admin.SimpleListFilter):
    """Status, OPEN unless asked otherwise: the page opens on what needs a person."""

    title = _("status")
    parameter_name = "status"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [*DiscrepancyStatus.choices, ("all", _("All"))]

    def choices(self, changelist: Any) -> Any:
        current = self.value() or DiscrepancyStatus.OPEN
        for value, label in self.lookup_choices:
            yield {"selected": current == value, "display": label,
                   "query_string": changelist.get_query_string({self.parameter_name: value})}

    def queryset(self, request: HttpRequest, queryset: QuerySet[Discrepancy]) -> QuerySet[Discrepancy]:
        value = self.value() or DiscrepancyStatus.OPEN
        return queryset if value == "all" else queryset.filter(status=value)


@admin.register(Discrepancy)
class DiscrepancyAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Differences reconciliation found between a broker's records and ours (orders/services/discrepancies.py).

    Open ones first (the page opens on them); a risk manager resolves them with a reason. Resolving
    changes nothing but the row: putting a position or cash right is a separate, audited act."""

    list_display = ["id", "account", "kind", "object_display", "ours", "theirs", "first_seen_local",
                    "last_seen_local", "times_seen", "status_badge", "resolved_by", "resolution"]
    list_display_links = ["id", "kind"]
    list_filter = [DiscrepancyStatusFilter, "kind", ("account", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["object_ref", "ours", "theirs", "resolution"]
    search_help_text = _("Object (order:12, broker_order:S1, trade:T1, position:600000.SH, cash), either side, resolution")
    list_select_related = ["account"]
    list_per_page = 100
    actions = ["resolve_selected"]

    def get_readonly_fields(self, request: HttpRequest, obj: Discrepancy | None = None) -> list[str]:
        return [f.name for f in Discrepancy._meta.fields]

    def has_resolve_permission(self, request: HttpRequest, obj: Discrepancy | None = None) -> bool:
        return request.user.has_perm("orders.resolve_discrepancy")

    def object_label(self, obj: Discrepancy) -> str:
        return f"#{obj.pk} {obj.account.name} {obj.get_kind_display()} {obj.object_ref}: {obj.ours or '-'} / {obj.theirs or '-'}"

    @admin.display(description=_("object"), ordering="object_ref")
    def object_display(self, obj: Discrepancy) -> str:
        if obj.order_id:
            return format_html('<a href="{}">{}</a>', reverse("admin:orders_order_change", args=[obj.order_id]),
                               obj.object_ref)
        return obj.object_ref

    @admin.display(description=_("first seen"), ordering="first_seen_at")
    def first_seen_local(self, obj: Discrepancy) -> str:
        return short_time(obj.first_seen_at)

    @admin.display(description=_("last seen"), ordering="last_seen_at")
    def last_seen_local(self, obj: Discrepancy) -> str:
        return short_time(obj.last_seen_at)

    @admin.display(description=_("status"), ordering="status")
    def status_badge(self, obj: Discrepancy) -> str:
        return badge("UNKNOWN" if obj.status == DiscrepancyStatus.OPEN else "FILLED", obj.get_status_display())

    @admin.action(description=_("Resolve selected discrepancies…"), permissions=["resolve"])
    def resolve_selected(self, request: HttpRequest, queryset: QuerySet[Discrepancy]) -> Any:
        from orders.services import discrepancy_resolve

        actor = actor_of(request)
        form = ReasonForm(request.POST if request.POST.get("post") else None, reason_required=True)
        if request.POST.get("post") and form.is_valid():
            reason = form.cleaned_data["reason"]
            ids = list(queryset.order_by("id").values_list("id", flat=True))
            run_for_each(request, ids, lambda pk: discrepancy_resolve(discrepancy_id=pk, actor=actor, reason=reason),
                         done=gettext("%(count)d discrepancies resolved."))
            return None
        rows = list(queryset.select_related("account").order_by("id"))
        return reason_page(request, self, title=gettext("Resolve discrepancies"), form=form, objects=rows,
                           submit_label=gettext("Resolve"), danger=False, action="resolve_selected",
                           selected=[str(r.pk) for r in rows],
                           intro=gettext("Say what was found and done. Resolving changes nothing but the discrepancy: "
                                         "put a position or cash right separately. The reason is kept in the audit "
                                         "trail."),
                           extra={"cancel_url": reverse("admin:orders_discrepancy_changelist")})
