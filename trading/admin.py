"""Accounts, positions, the cash ledger, reference data and API keys in the operators' admin.

Money and positions are read-only here: they move only through fills and the
ledger services. The trading state (HALT / REDUCE / RESUME) is set through
orders.kill_switch.trading_state_switch after a confirmation page with a reason; API
keys are issued, changed and revoked through staff.services, and a new key is
shown exactly once, in the page that created it.

Why one module of over 500 lines: it is the trading app's one admin room (STYLE.md), and each
ModelAdmin here is small; a package of admin modules would only scatter the registrations.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from staff.admin_tools import ReadOnlyModelAdmin, actor_of, badge, local_time, reason_page, run_for_each, run_service
from staff.forms import SCOPE_TRADE, ApiKeyCreateForm, TradingStateForm
from trading.clock import now
from trading.models import Account, ApiKey, CashLedgerEntry, Instrument, Position, Quote, RiskAssessment, TradingState
from trading.money import ROUND_HALF_EVEN, to_cent
from trading.selectors import account_trading_day


def _today_for(account: Account) -> Any:
    return account_trading_day(account, now())


# ---------------------------------------------------------------------- accounts


class PositionInline(admin.TabularInline):
    model = Position
    extra = 0
    can_delete = False
    fields = ("instrument", "quantity", "sellable", "frozen_quantity", "unsettled_quantity", "avg_cost_display",
              "last_price", "market_value", "realized_pnl")
    readonly_fields = fields
    verbose_name = _("position")
    verbose_name_plural = _("positions")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Position]:
        return super().get_queryset(request).filter(quantity__gt=0).select_related("account", "instrument",
                                                                                   "instrument__quote")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description=_("sellable"))
    def sellable(self, obj: Position) -> int:
        return obj.sellable_quantity(_today_for(obj.account))

    @admin.display(description=_("average cost"))
    def avg_cost_display(self, obj: Position) -> Any:
        return obj.avg_cost if obj.avg_cost is not None else "-"

    @admin.display(description=_("last price"))
    def last_price(self, obj: Position) -> Any:
        from trading.selectors import position_last_price

        return position_last_price(obj) or "-"

    @admin.display(description=_("market value"))
    def market_value(self, obj: Position) -> Any:
        from trading.selectors import position_last_price

        last = position_last_price(obj)
        return to_cent(last * obj.quantity, ROUND_HALF_EVEN) if last is not None else "-"


STATE_ACTIONS = {
    "halt": (TradingState.HALTED, _("Halt trading")),
    "reduce": (TradingState.REDUCING, _("Reduce only")),
    "resume": (TradingState.ACTIVE, _("Resume trading")),
}


@admin.register(Account)
class AccountAdmin(ReadOnlyModelAdmin):
    change_form_template = "admin/trading/account/change_form.html"
    list_display = ["name", "display_name", "broker_kind", "status", "state_badge", "cash", "frozen",
                    "available_display", "trading_state_reason"]
    list_filter = ["status", "trading_state", "broker_kind", "session_mode"]
    search_fields = ["name", "display_name", "control_group"]
    inlines = [PositionInline]
    actions = ["set_trading_state_selected", "reconcile_selected"]
    fieldsets = [
        (_("Account"), {"fields": ["name", "display_name", "broker_kind", "broker_settings_masked", "session_mode",
                                   "status", "control_group", "is_high_frequency", "created_at"]}),
        (_("Suitability"), {"fields": ["owner", "permissions_display", "risk_tolerance",
                                                 "risk_tolerance_expires_on"]}),
        (_("Fees"), {"fields": ["fee_schedule"], "classes": ["collapse"]}),
    ]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        fields = [f.name for f in Account._meta.fields if f.name != "broker_settings"]
        return [*fields, "broker_settings_masked", "available_display", "permissions_display"]

    def has_manage_suitability_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.has_perm("trading.manage_suitability")

    @admin.display(description=_("trading permissions"))
    def permissions_display(self, obj: Account) -> str:
        """Each permission with the date granted, and a link to edit them (suitability managers)."""
        from trading.suitability import permission_label

        granted = obj.trading_permissions or {}
        text = gettext("main boards") + "".join(f", {permission_label(code)} ({day})" for code, day in sorted(granted.items()))
        if obj.pk is None:
            return text
        return format_html('{} <a class="button" href="{}">{}</a>', text,
                           reverse("admin:trading_account_permissions", args=[obj.pk]), gettext("Edit"))

    def permissions_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        from staff.forms import TradingPermissionsForm
        from trading.services import account_permissions_set

        account = get_object_or_404(Account, pk=object_id)
        back = reverse("admin:trading_account_change", args=[account.pk])
        if not self.has_manage_suitability_permission(request):
            messages.error(request, gettext("You do not have permission for this action."))
            return HttpResponseRedirect(back)
        form = TradingPermissionsForm(request.POST or None, initial=TradingPermissionsForm.initial_for(account))
        if request.method == "POST" and form.is_valid():
            done = run_service(request, lambda: account_permissions_set(
                account_id=account.pk, permissions=form.permissions(), owner=form.cleaned_data["owner"],
                actor=actor_of(request), reason=form.cleaned_data["reason"]),
                success=gettext("Trading permissions of %(name)s saved.") % {"name": account.name})
            if done is not None:
                return HttpResponseRedirect(back)
        return reason_page(request, self, title=gettext("Trading permissions: %(name)s") % {"name": account.name}, form=form,
                           objects=[account], submit_label=gettext("Confirm"),
                           intro=gettext("The permissions the broker granted this account, with their dates. A buy on a "
                                         "board without its permission is refused (422, rule trading_permission)."),
                           extra={"cancel_url": back})

    def has_set_trading_state_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.has_perm("trading.set_trading_state")

    def has_reconcile_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.has_perm("orders.reconcile_account")

    @admin.display(description=_("available"))
    def available_display(self, obj: Account) -> Any:
        return obj.available

    @admin.display(description=_("trading state"), ordering="trading_state")
    def state_badge(self, obj: Account) -> str:
        return badge(obj.trading_state, obj.get_trading_state_display())

    @admin.display(description=_("broker settings"))
    def broker_settings_masked(self, obj: Account) -> str:
        """Which settings exist, never their values (they are credentials)."""
        settings = obj.broker_settings or {}
        if not settings:
            return "-"
        return format_html_join(", ", "{}=••••••", ((key,) for key in sorted(settings)))

    def get_urls(self) -> list[Any]:
        wrap = self.admin_site.admin_view
        return [
            path("<int:object_id>/trading-state/<str:which>/", wrap(self.trading_state_view),
                 name="trading_account_trading_state"),
            path("<int:object_id>/permissions/", wrap(self.permissions_view), name="trading_account_permissions"),
            *super().get_urls(),
        ]

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "",
                    extra_context: dict[str, Any] | None = None) -> HttpResponse:
        from trading.selectors import account_balance

        account = self.get_object(request, object_id)
        context = dict(extra_context or {})
        if account is not None:
            context.update({
                "account": account,
                "balance": account_balance(account=account, at=now()),
                "state_badge": self.state_badge(account),
                "can_set_state": self.has_set_trading_state_permission(request),
                "state_actions": [(key, label) for key, (state, label) in STATE_ACTIONS.items()
                                  if state != account.trading_state],
                "ledger": list(CashLedgerEntry.objects.filter(account=account).order_by("-id")[:20]),
                "ledger_url": reverse("admin:trading_cashledgerentry_changelist") + f"?account__id__exact={account.pk}",
                "orders_url": reverse("admin:orders_order_changelist") + f"?account__id__exact={account.pk}",
            })
        return super().change_view(request, object_id, form_url, context)

    def trading_state_view(self, request: HttpRequest, object_id: int, which: str) -> HttpResponse:
        from orders.kill_switch import trading_state_switch

        account = get_object_or_404(Account, pk=object_id)
        back = reverse("admin:trading_account_change", args=[account.pk])
        if which not in STATE_ACTIONS or not self.has_set_trading_state_permission(request):
            messages.error(request, gettext("You do not have permission for this action."))
            return HttpResponseRedirect(back)
        state, label = STATE_ACTIONS[which]
        form = TradingStateForm(request.POST or None, initial={"state": state})
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            run_service(request, lambda: trading_state_switch(account=account, state=data["state"], reason=data["reason"],
                                                              actor=actor_of(request),
                                                              cancel_open_orders=data["cancel_open_orders"]),
                        success=gettext("Account %(name)s: trading state set to %(state)s.")
                        % {"name": account.name, "state": dict(TradingState.choices)[form.cleaned_data["state"]]})
            return HttpResponseRedirect(back)
        return reason_page(request, self, title=f"{label}: {account.name}", form=form, objects=[account],
                           submit_label=gettext("Confirm"), danger=state != TradingState.ACTIVE,
                           intro=gettext("Orders of this account are checked against the new state at once."),
                           extra={"cancel_url": back})

    @admin.action(description=_("Set trading state of selected accounts…"), permissions=["set_trading_state"])
    def set_trading_state_selected(self, request: HttpRequest, queryset: QuerySet[Account]) -> Any:
        from orders.kill_switch import trading_state_switch

        form = TradingStateForm(request.POST if request.POST.get("post") else None)
        if request.POST.get("post") and form.is_valid():
            actor = actor_of(request)
            state, reason = form.cleaned_data["state"], form.cleaned_data["reason"]
            cancel = form.cleaned_data["cancel_open_orders"]
            by_id = {a.pk: a for a in queryset}
            run_for_each(request, list(by_id),
                         lambda pk: trading_state_switch(account=by_id[pk], state=state, reason=reason, actor=actor,
                                                         cancel_open_orders=cancel),
                         done=gettext("Trading state set for %(count)d accounts."))
            return None
        accounts = list(queryset.order_by("name"))
        return reason_page(request, self, title=gettext("Set trading state"), form=form, objects=accounts,
                           submit_label=gettext("Confirm"), danger=True, action="set_trading_state_selected",
                           selected=[str(a.pk) for a in accounts],
                           extra={"cancel_url": reverse("admin:trading_account_changelist")})


    @admin.action(description=_("Reconcile selected accounts with their brokers"), permissions=["reconcile"])
    def reconcile_selected(self, request: HttpRequest, queryset: QuerySet[Account]) -> None:
        """The same run as the periodic reconciliation, now; differences go to Orders > Discrepancies."""
        from orders.services import account_reconcile

        actor = actor_of(request)

        def reconcile(pk: int) -> None:
            result = account_reconcile(account_id=pk, actor=actor)
            messages.info(request, gettext("%(account)s: %(changed)d orders brought in line, %(opened)d new "
                                           "discrepancies, %(closed)d closed, %(open)d open.")
                          % {"account": result.account, "changed": result.orders_changed, "opened": result.opened,
                             "closed": result.closed, "open": result.open_total})

        run_for_each(request, list(queryset.order_by("pk").values_list("pk", flat=True)), reconcile,
                     done=gettext("%(count)d accounts reconciled."))


@admin.register(Position)
class PositionAdmin(ReadOnlyModelAdmin):
    list_display = ["account", "instrument", "quantity", "sellable", "frozen_quantity", "unsettled_quantity",
                    "cost_amount", "realized_pnl", "updated_local"]
    list_filter = [("account", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["account__name", "instrument__code", "instrument__name"]
    list_select_related = ["account", "instrument"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Position]:
        return super().get_queryset(request).filter(quantity__gt=0)

    @admin.display(description=_("sellable"))
    def sellable(self, obj: Position) -> int:
        return obj.sellable_quantity(_today_for(obj.account))

    @admin.display(description=_("updated at"), ordering="updated_at")
    def updated_local(self, obj: Position) -> str:
        return local_time(obj.updated_at)


@admin.register(CashLedgerEntry)
class CashLedgerEntryAdmin(ReadOnlyModelAdmin):
    list_display = ["id", "created_local", "account", "kind", "amount", "cash_after", "frozen_after", "order_link",
                    "memo"]
    list_filter = [("account", admin.RelatedOnlyFieldListFilter), "kind"]
    search_fields = ["account__name", "memo", "=order__id"]
    list_select_related = ["account"]
    date_hierarchy = "created_at"
    ordering = ["-id"]

    @admin.display(description=_("created at"), ordering="created_at")
    def created_local(self, obj: CashLedgerEntry) -> str:
        return local_time(obj.created_at)

    @admin.display(description=_("order"))
    def order_link(self, obj: CashLedgerEntry) -> str:
        if not obj.order_id:
            return "-"
        return format_html('<a href="{}">#{}</a>', reverse("admin:orders_order_change", args=[obj.order_id]),
                           obj.order_id)


@admin.register(RiskAssessment)
class RiskAssessmentAdmin(admin.ModelAdmin):
    """Owners' risk-tolerance assessments: recorded here (trading.services.risk_assessment_record,
    audited), never changed or deleted; a new assessment replaces the old one."""

    list_display = ["owner", "level", "score", "assessed_on", "expires_on", "recorded_by", "created_local"]
    list_filter = ["level"]
    search_fields = ["owner"]
    date_hierarchy = "assessed_on"
    fields = ["owner", "level", "score", "questionnaire", "assessed_on", "expires_on"]

    def _manage(self, request: HttpRequest) -> bool:
        return request.user.has_perm("trading.manage_suitability")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return self._manage(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description=_("created at"), ordering="created_at")
    def created_local(self, obj: RiskAssessment) -> str:
        return local_time(obj.created_at)

    def save_model(self, request: HttpRequest, obj: RiskAssessment, form: Any, change: bool) -> None:
        from trading.services import risk_assessment_record

        recorded = risk_assessment_record(owner=obj.owner, level=obj.level, assessed_on=obj.assessed_on,
                                          expires_on=obj.expires_on, score=obj.score, questionnaire=obj.questionnaire,
                                          actor=actor_of(request))
        obj.pk = recorded.pk  # the admin's redirect and message name the recorded row


# ---------------------------------------------------------------------- reference data


class QuoteInline(admin.StackedInline):
    model = Quote
    extra = 0
    can_delete = False
    fields = ("last", "prev_close", "bid", "ask", "bid_volume", "ask_volume", "trading_day", "updated_at")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Instrument)
class InstrumentAdmin(ReadOnlyModelAdmin):
    """Reference data, maintained by `manage.py load_instruments` (restrictions live in risk control)."""

    list_display = ["symbol_display", "name", "exchange", "board", "is_st", "delisting", "risk_level_display", "t0",
                    "limit_pct", "listing_date", "is_active"]
    list_filter = ["exchange", "board", "is_st", "delisting", "risk_level", "t0", "is_active"]
    search_fields = ["code", "name", "industry"]
    inlines = [QuoteInline]

    @admin.display(description=_("symbol"), ordering="code")
    def symbol_display(self, obj: Instrument) -> str:
        return obj.symbol

    @admin.display(description=_("risk level"))
    def risk_level_display(self, obj: Instrument) -> str:
        from trading.suitability import instrument_risk_level

        return instrument_risk_level(obj)


@admin.register(Quote)
class QuoteAdmin(ReadOnlyModelAdmin):
    list_display = ["instrument", "last", "prev_close", "bid", "ask", "bid_volume", "ask_volume", "updated_local"]
    search_fields = ["instrument__code", "instrument__name"]
    list_select_related = ["instrument"]

    @admin.display(description=_("updated at"), ordering="updated_at")
    def updated_local(self, obj: Quote) -> str:
        return local_time(obj.updated_at)


# ---------------------------------------------------------------------- API keys


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ["name", "prefix_display", "accounts_display", "scope_display", "rate_limit_per_second",
                    "active_badge", "last_used_local", "created_local"]
    list_filter = ["is_active", "can_trade", "market_data"]
    search_fields = ["name", "prefix", "accounts__name"]
    actions = ["revoke_selected"]
    fields = ["name", "prefix_display", "accounts", "can_trade", "market_data", "rate_limit_per_second",
              "is_active", "created_at", "last_used_at", "disclosure_version", "disclosure_acknowledged_at",
              "disclosure_acknowledged_by"]
    filter_horizontal = ["accounts"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[ApiKey]:
        return super().get_queryset(request).prefetch_related("accounts")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        readonly = ["name", "prefix_display", "is_active", "created_at", "last_used_at", "disclosure_version",
                    "disclosure_acknowledged_at", "disclosure_acknowledged_by"]
        if obj is not None and not obj.is_active:
            readonly += ["accounts", "can_trade", "market_data", "rate_limit_per_second"]
        return readonly

    def _manage(self, request: HttpRequest) -> bool:
        return request.user.has_perm("trading.manage_api_keys")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return self._manage(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._manage(request)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # revoke instead: the row keeps its history and audit events

    def has_revoke_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._manage(request)

    @admin.display(description=_("key"))
    def prefix_display(self, obj: ApiKey) -> str:
        return f"tbo_{obj.prefix}_…"

    @admin.display(description=_("accounts"))
    def accounts_display(self, obj: ApiKey) -> str:
        return ", ".join(sorted(a.name for a in obj.accounts.all()))

    @admin.display(description=_("scope"))
    def scope_display(self, obj: ApiKey) -> str:
        scope = [gettext("May trade") if obj.can_trade else gettext("Read only")]
        if obj.market_data:
            scope.append(gettext("Market data"))
        return " + ".join(scope)

    @admin.display(description=_("active"), ordering="is_active")
    def active_badge(self, obj: ApiKey) -> str:
        if obj.is_active:
            return badge("ACTIVE", gettext("Active"))
        return badge("REJECTED", gettext("Revoked"))

    @admin.display(description=_("last used at"), ordering="last_used_at")
    def last_used_local(self, obj: ApiKey) -> str:
        return local_time(obj.last_used_at)

    @admin.display(description=_("created at"), ordering="created_at")
    def created_local(self, obj: ApiKey) -> str:
        return local_time(obj.created_at)

    def add_view(self, request: HttpRequest, form_url: str = "", extra_context: dict[str, Any] | None = None) -> HttpResponse:
        """Issue a key. The raw key is in this response only: never stored, never in a message."""
        from staff.services import api_key_issue

        if not self.has_add_permission(request):
            messages.error(request, gettext("You do not have permission for this action."))
            return HttpResponseRedirect(reverse("admin:trading_apikey_changelist"))
        form = ApiKeyCreateForm(request.POST or None)
        context = {**self.admin_site.each_context(request), "opts": self.model._meta, "form": form,
                   "title": gettext("Issue an API key"), "subtitle": None}
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            issued = run_service(request, lambda: api_key_issue(
                name=data["name"], accounts=[a.name for a in data["accounts"]], can_trade=data["scope"] == SCOPE_TRADE,
                market_data=data["market_data"], rate_limit_per_second=data["rate_limit_per_second"],
                actor=actor_of(request), disclosure_acknowledged_by=data["disclosure_acknowledged_by"]))
            if issued is not None:
                key, raw = issued
                response = TemplateResponse(request, "admin/trading/apikey/issued.html",
                                            {**context, "title": gettext("API key issued"), "key": key, "raw_key": raw})
                response["Cache-Control"] = "no-store"
                return response
        return TemplateResponse(request, "admin/trading/apikey/issue.html", context)

    def save_model(self, request: HttpRequest, obj: ApiKey, form: Any, change: bool) -> None:
        """Changes go through staff.services.api_key_update in save_related (one audited call)."""

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        from staff.services import api_key_update

        data = form.cleaned_data
        if "accounts" not in data:
            return  # a revoked key: nothing is editable
        run_service(request, lambda: api_key_update(
            key_id=form.instance.pk, accounts=[a.name for a in data["accounts"]], can_trade=data["can_trade"],
            market_data=data["market_data"], rate_limit_per_second=data["rate_limit_per_second"],
            actor=actor_of(request)))

    @admin.action(description=_("Revoke selected API keys…"), permissions=["revoke"])
    def revoke_selected(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> Any:
        from staff.forms import ReasonForm
        from staff.services import api_key_revoke

        form = ReasonForm(request.POST if request.POST.get("post") else None, reason_required=True)
        if request.POST.get("post") and form.is_valid():
            actor, reason = actor_of(request), form.cleaned_data["reason"]
            run_for_each(request, list(queryset.values_list("pk", flat=True)),
                         lambda pk: api_key_revoke(key_id=pk, actor=actor, reason=reason),
                         done=gettext("%(count)d API keys revoked."))
            return None
        keys = list(queryset.order_by("name"))
        return reason_page(request, self, title=gettext("Revoke API keys"), form=form, objects=keys,
                           submit_label=gettext("Revoke"), danger=True, action="revoke_selected",
                           selected=[str(k.pk) for k in keys],
                           intro=gettext("A revoked key stops working within seconds and cannot be enabled again."),
                           extra={"cancel_url": reverse("admin:trading_apikey_changelist")})

