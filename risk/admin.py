"""The risk desk in admin: rules (with history), restricted symbols, risk events, live
counters and the global trading state.

What is not here, because another page already does it (one page per job):

- held orders (PENDING_APPROVAL) are approved, rejected or overridden on the
  order desk (``orders/admin.py``), with the ``orders.approve_order``,
  ``orders.reject_order`` and ``orders.override_order`` permissions;
- an account's trading state (HALT / REDUCE / RESUME) is set on the account
  page (``trading/admin.py``), with ``trading.set_trading_state``.

The proxy models ``risk.ReviewOrder`` and ``risk.AccountTradingState`` stay (their
migration created them) but have no admin page, and their permissions
``risk.review_order``, ``risk.override_order`` and ``risk.set_trading_state`` are
dead: no role is granted them (``staff.roles``) and nothing checks them.

Permissions checked here: rules need ``risk.manage_risk_rules`` on top of
Django's add/change/delete permission (view stays view: Compliance reads only);
the global trading state needs ``trading.set_trading_state``, the same permission
as the account page. Every change goes through a service of ``risk.services``
with the operator as actor, so admin, API and tasks share the same checks and
audit trail; the global switch asks for a reason on the shared confirmation
page of ``staff.admin_tools``.
"""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.functional import lazy
from django.utils.html import format_html
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _
from simple_history.admin import SimpleHistoryAdmin

from orders.kill_switch import trading_state_switch
from risk import services
from risk.models import RestrictedSymbol, RiskControl, RiskCounter, RiskEvent, RiskRule
from risk.rules import REGISTRY, RULE_CLASSES, rule_choices, validate_rule_config
from staff.admin_tools import ReadOnlyAdminMixin, actor_of, reason_page, run_service
from staff.forms import TradingStateForm
from trading.i18n import bilingual, pbilingual
from trading.models import TradingState

MANAGE_RULES = "risk.manage_risk_rules"
SET_TRADING_STATE = "trading.set_trading_state"  # as trading/admin.py checks for an account's state


class _HistoryAdmin(SimpleHistoryAdmin):
    """SimpleHistoryAdmin whose "revert to this version" form saves only with change permission.

    django-simple-history checks view-or-change for the history pages and then
    saves a POST to a version's page; a view-only member (Compliance) must not
    be able to change anything that way.
    """

    def history_form_view(self, request: HttpRequest, object_id: str, version_id: str,
                          extra_context: dict[str, Any] | None = None) -> HttpResponse:
        if request.method == "POST" and not self.has_change_permission(request):
            raise PermissionDenied
        return super().history_form_view(request, object_id, version_id, extra_context)


# --------------------------------------------------------------------------- rules


def _params_catalogue() -> str:
    """The rule codes with their titles (in the reader's language) and parameters, for the rule form."""
    lines = []
    for cls in RULE_CLASSES:
        params = ", ".join(f"{name}: {kind} = {default}" for name, kind, default in cls.describe_params()) or gettext("none")
        lines.append(f"{cls.code} ({cls.title}, {cls.phase}): {params}")
    return format_html("<pre style='white-space:pre-wrap'>{}</pre>", "\n".join(lines))


class RiskRuleForm(forms.ModelForm):
    code = forms.ChoiceField(label=_("rule"), choices=rule_choices)
    params = forms.JSONField(label=_("parameters (JSON)"), required=False, initial=dict,
                             help_text=_('Money and ratios as strings, never floats, e.g. '
                                         '{"max_amount": "100000", "max_ratio": "0.10"}'))

    class Meta:
        model = RiskRule
        fields = ["code", "account", "enabled", "action", "params", "note"]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        code = data.get("code")
        if code:
            data["params"] = validate_rule_config(code, data.get("params") or {})
        return data


@admin.register(RiskRule)
class RiskRuleAdmin(_HistoryAdmin):
    form = RiskRuleForm
    list_display = ["code", "title", "scope", "enabled", "action", "params_text", "updated_at"]
    list_filter = ["enabled", "action", "code"]
    search_fields = ["code", "account__name", "note"]
    list_select_related = ["account"]
    raw_id_fields = ["account"]
    actions = ["enable_rules", "disable_rules"]
    fieldsets = [(None, {"fields": ["code", "account", "enabled", "action", "params", "note"],
                         "description": lazy(_params_catalogue, str)()})]

    # Django's add/change/delete permission alone is not enough: the role's custom
    # permission must be there too. View stays Django's view (Compliance reads only).

    def has_manage_rules_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(MANAGE_RULES)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return super().has_add_permission(request) and self.has_manage_rules_permission(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return super().has_change_permission(request, obj) and self.has_manage_rules_permission(request)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return super().has_delete_permission(request, obj) and self.has_manage_rules_permission(request)

    @admin.display(description=_("name"))
    def title(self, obj: RiskRule) -> str:
        cls = REGISTRY.get(obj.code)
        return str(cls.title) if cls else bilingual("unknown")

    @admin.display(description=_("applies to"))
    def scope(self, obj: RiskRule) -> str:
        return obj.account.name if obj.account_id and obj.account else bilingual("global")

    @admin.display(description=_("parameters"))
    def params_text(self, obj: RiskRule) -> str:
        return json.dumps(obj.params, ensure_ascii=False)

    def save_model(self, request: HttpRequest, obj: RiskRule, form: Any, change: bool) -> None:
        services.risk_rule_save(rule=obj, actor=actor_of(request))

    def delete_model(self, request: HttpRequest, obj: RiskRule) -> None:
        services.risk_rule_delete(rule=obj, actor=actor_of(request))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[RiskRule]) -> None:
        for rule in queryset:
            services.risk_rule_delete(rule=rule, actor=actor_of(request))

    def _set_enabled(self, request: HttpRequest, queryset: QuerySet[RiskRule], enabled: bool) -> None:
        for rule in queryset:
            rule.enabled = enabled
            services.risk_rule_save(rule=rule, actor=actor_of(request))
        count = queryset.count()
        if enabled:
            message = ngettext("%(count)d rule enabled.", "%(count)d rules enabled.", count)
        else:
            message = ngettext("%(count)d rule disabled.", "%(count)d rules disabled.", count)
        self.message_user(request, message % {"count": count})

    @admin.action(description=_("Enable selected rules"), permissions=["change"])
    def enable_rules(self, request: HttpRequest, queryset: QuerySet[RiskRule]) -> None:
        self._set_enabled(request, queryset, True)

    @admin.action(description=_("Disable selected rules"), permissions=["change"])
    def disable_rules(self, request: HttpRequest, queryset: QuerySet[RiskRule]) -> None:
        self._set_enabled(request, queryset, False)


@admin.register(RestrictedSymbol)
class RestrictedSymbolAdmin(_HistoryAdmin):
    list_display = ["instrument", "scope", "side", "reason", "valid_from", "valid_to", "created_by", "updated_at"]
    list_filter = ["side"]
    search_fields = ["instrument__code", "instrument__name", "account__name", "reason"]
    list_select_related = ["instrument", "account"]
    raw_id_fields = ["instrument", "account"]
    readonly_fields = ["created_by"]

    @admin.display(description=_("applies to"))
    def scope(self, obj: RestrictedSymbol) -> str:
        return obj.account.name if obj.account_id and obj.account else bilingual("all")

    def save_model(self, request: HttpRequest, obj: RestrictedSymbol, form: Any, change: bool) -> None:
        services.restricted_symbol_save(restriction=obj, actor=actor_of(request))

    def delete_model(self, request: HttpRequest, obj: RestrictedSymbol) -> None:
        services.restricted_symbol_delete(restriction=obj, actor=actor_of(request))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[RestrictedSymbol]) -> None:
        for entry in queryset:
            services.restricted_symbol_delete(restriction=entry, actor=actor_of(request))


# --------------------------------------------------------------------------- read-only views


class _ReadOnly(ReadOnlyAdminMixin, admin.ModelAdmin):
    pass


@admin.register(RiskEvent)
class RiskEventAdmin(_ReadOnly):
    list_display = ["created_at", "level", "rule", "action", "account", "order_link", "message"]
    list_filter = ["level", "rule", "action", "trading_day"]
    search_fields = ["rule", "message", "account__name"]
    list_select_related = ["account", "order"]
    date_hierarchy = "created_at"

    @admin.display(description=_("order"))
    def order_link(self, obj: RiskEvent) -> str:
        """The order on the order desk, where a held one is approved, rejected or overridden."""
        if not obj.order_id:
            return ""
        return format_html('<a href="{}">#{}</a>', reverse("admin:orders_order_change", args=[obj.order_id]),
                           obj.order_id)


@admin.register(RiskCounter)
class RiskCounterAdmin(_ReadOnly):
    list_display = ["trading_day", "account", "key", "orders", "amount", "rejected", "cancels", "last_order_at",
                    "second_count", "start_assets", "peak_assets", "updated_at"]
    list_filter = ["trading_day"]
    search_fields = ["account__name", "key"]
    list_select_related = ["account"]


# --------------------------------------------------------------------------- global trading state


@admin.register(RiskControl)
class RiskControlAdmin(admin.ModelAdmin):
    """The global trading state (one row). Accounts' own states are set on the account page."""

    list_display = ["__str__", "trading_state", "trading_state_reason", "updated_by", "updated_at"]
    actions = ["set_global_trading_state"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[RiskControl]:
        RiskControl.objects.get_or_create(pk=RiskControl.SINGLETON_ID)
        return super().get_queryset(request)

    def has_set_trading_state_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.has_perm(SET_TRADING_STATE)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # the state changes only through the action (a service, with a reason)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return super().has_view_permission(request, obj) or self.has_set_trading_state_permission(request)

    @admin.action(description=_("Set the global trading state…"), permissions=["set_trading_state"])
    def set_global_trading_state(self, request: HttpRequest, queryset: QuerySet[RiskControl]) -> HttpResponse | None:
        """The account page's confirmation (state, reason, cancel open orders) for the global row."""
        form = TradingStateForm(request.POST if request.POST.get("post") else None)
        if request.POST.get("post") and form.is_valid():
            data = form.cleaned_data
            label = dict(TradingState.choices)[data["state"]]
            run_service(request, lambda: trading_state_switch(
                account=None, state=data["state"], reason=data["reason"], actor=actor_of(request),
                cancel_open_orders=data["cancel_open_orders"]),
                success=bilingual("global trading state set to {value}", label=label, value=data['state']))
            return None
        rows = list(queryset)
        return reason_page(request, self, title=pbilingual("page title", "set the global trading state"), form=form,
                           objects=rows, submit_label=gettext("Confirm"), danger=True,
                           action="set_global_trading_state", selected=[str(row.pk) for row in rows],
                           intro=bilingual("new orders of every account are checked against it at once") + ".",
                           extra={"cancel_url": reverse("admin:risk_riskcontrol_changelist")})
