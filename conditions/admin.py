"""The operators' pages of conditional orders: the list by state, one parent with its trigger
history and the orders it released, and cancelling (single or in bulk).

Every field is read-only: a parent changes only through ``conditions.services`` (the cancel action
here calls ``conditional_cancel`` with the operator as actor), so the transition table, the locks and
the audit trail apply. Cancelling needs ``conditions.cancel_conditionalorder`` (the order desk's
roles, staff/roles.py)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from conditions.models import ConditionalOrder, ParentEvent, ParentState
from staff.admin_tools import ReadOnlyAdminMixin, actor_of, badge, price_text, run_for_each, short_time

ALGO_KINDS = ("twap", "iceberg")
STATE_STYLE = {ParentState.PAUSED: "PENDING_APPROVAL", ParentState.ACTIVE: "SUBMITTED", ParentState.TRIGGERED: "PARTIALLY_FILLED", ParentState.COMPLETED: "FILLED",
               ParentState.CANCELLED: "CANCELLED", ParentState.EXPIRED: "EXPIRED", ParentState.FAILED: "REJECTED"}


class HistoryInline(ReadOnlyAdminMixin, admin.TabularInline):
    """The trigger history: every firing, release, refusal and change, with the order released."""

    model = ParentEvent
    extra = 0
    can_delete = False
    fields = ("at_local", "event", "state_before", "state_after", "last_price", "child_link", "reason")
    readonly_fields = fields
    ordering = ["id"]

    @admin.display(description=_("time"))
    def at_local(self, obj: ParentEvent) -> str:
        return short_time(obj.at)

    @admin.display(description=_("released order"))
    def child_link(self, obj: ParentEvent) -> str:
        if obj.child_id is None:
            return "-"
        return format_html('<a href="{}">#{}</a>', reverse("admin:orders_order_change", args=[obj.child_id]), obj.child_id)


@admin.register(ConditionalOrder)
class ConditionalOrderAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["id", "created_local", "account", "symbol_display", "kind", "side", "quantity", "released_quantity",
                    "trigger_display", "state_badge", "strategy", "state_reason"]
    list_display_links = ["id", "created_local"]
    list_filter = ["state", "kind", ("account", admin.RelatedOnlyFieldListFilter), ("instrument", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["=id", "client_order_id", "instrument__code", "instrument__name", "strategy"]
    search_help_text = _("Id, client order id, symbol code or name, strategy")
    list_select_related = ["account", "instrument"]
    date_hierarchy = "created_at"
    list_per_page = 50
    actions = ["cancel_selected", "pause_selected", "resume_selected"]
    inlines = [HistoryInline]

    def get_readonly_fields(self, request: HttpRequest, obj: ConditionalOrder | None = None) -> list[str]:
        return [f.name for f in ConditionalOrder._meta.fields] + (["algo_report_display"] if obj is not None and obj.kind in ALGO_KINDS else [])

    def has_cancel_permission(self, request: HttpRequest, obj: ConditionalOrder | None = None) -> bool:
        return request.user.has_perm("conditions.cancel_conditionalorder")

    def object_label(self, obj: ConditionalOrder) -> str:
        return f"#{obj.pk} {obj.account.name} {obj.kind} {obj.side} {obj.quantity} {obj.instrument.symbol} · {obj.get_state_display()}"

    @admin.display(description=_("created at"), ordering="created_at")
    def created_local(self, obj: ConditionalOrder) -> str:
        return short_time(obj.created_at)

    @admin.display(description=_("symbol"), ordering="instrument__code")
    def symbol_display(self, obj: ConditionalOrder) -> str:
        return f"{obj.instrument.symbol} {obj.instrument.name}"

    @admin.display(description=_("watching"))
    def trigger_display(self, obj: ConditionalOrder) -> str:
        parts = []
        if obj.watch_low is not None:
            parts.append(f"≤ {price_text(obj.watch_low)}")
        if obj.watch_high is not None:
            parts.append(f"≥ {price_text(obj.watch_high)}")
        if obj.due_at is not None:
            parts.append(short_time(obj.due_at))
        return " / ".join(parts) or "-"

    @admin.display(description=_("state"), ordering="state")
    def state_badge(self, obj: ConditionalOrder) -> str:
        return badge(STATE_STYLE.get(ParentState(obj.state), "CANCELLED"), obj.get_state_display())

    @admin.action(description=_("Cancel selected conditional orders"), permissions=["cancel"])
    def cancel_selected(self, request: HttpRequest, queryset: QuerySet[ConditionalOrder]) -> Any:
        from conditions.services import conditional_cancel

        actor = actor_of(request)
        ids = list(queryset.filter(state=ParentState.ACTIVE).order_by("id").values_list("id", flat=True))
        run_for_each(request, ids, lambda pk: conditional_cancel(parent_id=pk, actor=actor, reason=gettext("cancelled in admin")),
                     done=gettext("%(count)d conditional orders cancelled."))
        return None

    # Execution algorithms (TWAP, iceberg): pause and resume, for the roles that may cancel.

    @admin.action(description=_("Pause selected execution algorithms"), permissions=["cancel"])
    def pause_selected(self, request: HttpRequest, queryset: QuerySet[ConditionalOrder]) -> Any:
        from conditions.services import conditional_pause

        actor = actor_of(request)
        ids = list(queryset.filter(state=ParentState.ACTIVE, kind__in=ALGO_KINDS).order_by("id").values_list("id", flat=True))
        run_for_each(request, ids, lambda pk: conditional_pause(parent_id=pk, actor=actor, reason=gettext("paused in admin")),
                     done=gettext("%(count)d execution algorithms paused."))
        return None

    @admin.action(description=_("Resume selected execution algorithms"), permissions=["cancel"])
    def resume_selected(self, request: HttpRequest, queryset: QuerySet[ConditionalOrder]) -> Any:
        from conditions.services import conditional_resume

        actor = actor_of(request)
        ids = list(queryset.filter(state=ParentState.PAUSED).order_by("id").values_list("id", flat=True))
        run_for_each(request, ids, lambda pk: conditional_resume(parent_id=pk, actor=actor, reason=gettext("resumed in admin")),
                     done=gettext("%(count)d execution algorithms resumed."))
        return None

    @admin.display(description=_("execution report"))
    def algo_report_display(self, obj: ConditionalOrder) -> str:
        from conditions.algo_report import algo_report

        report = algo_report(obj)
        if report is None:
            return "-"
        rows = [(gettext("filled quantity"), report["filled_quantity"]), (gettext("average fill price"), report["average_price"]),
                (gettext("arrival price"), report["arrival_price"]),
                (gettext("interval average price (time-weighted last price)"), report["interval_average_price"]),
                (gettext("slippage against arrival (bps)"), report["slippage_vs_arrival_bps"]),
                (gettext("slippage against the interval average (bps)"), report["slippage_vs_interval_bps"]),
                (gettext("orders released"), report["children"]), (gettext("quotes seen"), report["quotes_seen"])]
        return format_html_join("", "<div>{}: <b>{}</b></div>", ((label, "-" if value is None else value) for label, value in rows))
