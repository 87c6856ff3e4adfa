"""The risk desk in admin: rules (with history), restricted symbols, events, live counters,
trading states (per account and global) and the review of held orders.

Every change goes through a service of ``risk.services`` or ``orders.review``,
so admin, API and tasks share the same checks and audit trail. Actions that
change state ask for a reason on an intermediate confirmation page.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.html import format_html, format_html_join
from simple_history.admin import SimpleHistoryAdmin

from audit.services import Actor
from risk import services
from risk.models import (
    AccountTradingState,
    RestrictedSymbol,
    ReviewOrder,
    RiskControl,
    RiskCounter,
    RiskEvent,
    RiskRule,
)
from risk.rules import REGISTRY, RULE_CLASSES, rule_choices, validate_rule_config
from trading.errors import TradingError
from trading.models import TradingState


def _actor(request: HttpRequest) -> Actor:
    return Actor.user(getattr(request.user, "username", "") or "admin")


class ReasonForm(forms.Form):
    reason = forms.CharField(label="原因 (reason)", max_length=255, widget=forms.TextInput(attrs={"size": 80}))


class OptionalReasonForm(forms.Form):
    reason = forms.CharField(label="备注 (note)", max_length=255, required=False, widget=forms.TextInput(attrs={"size": 80}))


class StateForm(ReasonForm):
    cancel_open_orders = forms.BooleanField(label="同时撤销全部挂单 (also cancel every open order)", required=False)


def _with_reason(
    model_admin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet, *, action: str, title: str, question: str,
    submit_label: str, form_class: type[forms.Form], apply: Callable[[Any, dict[str, Any]], Any],
) -> HttpResponse | None:
    """An admin action with a confirmation page asking for a reason; ``apply`` runs per object."""
    if request.POST.get("confirm") == "yes":
        form = form_class(request.POST)
        if form.is_valid():
            done = 0
            for obj in queryset:
                try:
                    apply(obj, form.cleaned_data)
                    done += 1
                except TradingError as exc:
                    model_admin.message_user(request, f"{obj}: {exc.message}", messages.ERROR)
            if done:
                model_admin.message_user(request, f"{title}: {done} 项完成 ({done} done)", messages.SUCCESS)
            return None
    else:
        form = form_class()
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.model._meta,
        "title": title,
        "question": question,
        "queryset": queryset,
        "form": form,
        "action": action,
        "submit_label": submit_label,
    }
    return TemplateResponse(request, "risk/action_with_reason.html", context)


# --------------------------------------------------------------------------- rules


def _params_catalogue() -> str:
    lines = []
    for cls in RULE_CLASSES:
        params = ", ".join(f"{name}: {kind} = {default}" for name, kind, default in cls.describe_params()) or "无参数 (none)"
        lines.append(f"{cls.code} ({cls.title}, {cls.phase}): {params}")
    return "\n".join(lines)


class RiskRuleForm(forms.ModelForm):
    code = forms.ChoiceField(label="规则", choices=rule_choices)
    params = forms.JSONField(label="参数 (JSON)", required=False, initial=dict,
                             help_text='金额与比例请用字符串, 如 {"max_amount": "100000", "max_ratio": "0.10"} '
                                       "(money and ratios as strings, never floats)")

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
class RiskRuleAdmin(SimpleHistoryAdmin):
    form = RiskRuleForm
    list_display = ["code", "title", "scope", "enabled", "action", "params_text", "updated_at"]
    list_filter = ["enabled", "action", "code"]
    search_fields = ["code", "account__name", "note"]
    list_select_related = ["account"]
    raw_id_fields = ["account"]
    actions = ["enable_rules", "disable_rules"]
    fieldsets = [(None, {"fields": ["code", "account", "enabled", "action", "params", "note"],
                         "description": format_html("<pre style='white-space:pre-wrap'>{}</pre>", _params_catalogue())})]

    @admin.display(description="名称")
    def title(self, obj: RiskRule) -> str:
        cls = REGISTRY.get(obj.code)
        return cls.title if cls else "未知规则 (unknown)"

    @admin.display(description="范围")
    def scope(self, obj: RiskRule) -> str:
        return obj.account.name if obj.account_id and obj.account else "全局 (global)"

    @admin.display(description="参数")
    def params_text(self, obj: RiskRule) -> str:
        return json.dumps(obj.params, ensure_ascii=False)

    def save_model(self, request: HttpRequest, obj: RiskRule, form: Any, change: bool) -> None:
        services.risk_rule_save(rule=obj, actor=_actor(request))

    def delete_model(self, request: HttpRequest, obj: RiskRule) -> None:
        services.risk_rule_delete(rule=obj, actor=_actor(request))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[RiskRule]) -> None:
        for rule in queryset:
            services.risk_rule_delete(rule=rule, actor=_actor(request))

    def _set_enabled(self, request: HttpRequest, queryset: QuerySet[RiskRule], enabled: bool) -> None:
        for rule in queryset:
            rule.enabled = enabled
            services.risk_rule_save(rule=rule, actor=_actor(request))
        self.message_user(request, f"{queryset.count()} 条规则已{'启用' if enabled else '停用'}")

    @admin.action(description="启用所选规则 (enable)")
    def enable_rules(self, request: HttpRequest, queryset: QuerySet[RiskRule]) -> None:
        self._set_enabled(request, queryset, True)

    @admin.action(description="停用所选规则 (disable)")
    def disable_rules(self, request: HttpRequest, queryset: QuerySet[RiskRule]) -> None:
        self._set_enabled(request, queryset, False)


@admin.register(RestrictedSymbol)
class RestrictedSymbolAdmin(SimpleHistoryAdmin):
    list_display = ["instrument", "scope", "side", "reason", "valid_from", "valid_to", "created_by", "updated_at"]
    list_filter = ["side"]
    search_fields = ["instrument__code", "instrument__name", "account__name", "reason"]
    list_select_related = ["instrument", "account"]
    raw_id_fields = ["instrument", "account"]
    readonly_fields = ["created_by"]

    @admin.display(description="范围")
    def scope(self, obj: RestrictedSymbol) -> str:
        return obj.account.name if obj.account_id and obj.account else "全部账户 (all)"

    def save_model(self, request: HttpRequest, obj: RestrictedSymbol, form: Any, change: bool) -> None:
        services.restricted_symbol_save(restriction=obj, actor=_actor(request))

    def delete_model(self, request: HttpRequest, obj: RestrictedSymbol) -> None:
        services.restricted_symbol_delete(restriction=obj, actor=_actor(request))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[RestrictedSymbol]) -> None:
        for entry in queryset:
            services.restricted_symbol_delete(restriction=entry, actor=_actor(request))


# --------------------------------------------------------------------------- read-only views


class _ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(RiskEvent)
class RiskEventAdmin(_ReadOnly):
    list_display = ["created_at", "level", "rule", "action", "account", "order_link", "message"]
    list_filter = ["level", "rule", "action", "trading_day"]
    search_fields = ["rule", "message", "account__name"]
    list_select_related = ["account", "order"]
    date_hierarchy = "created_at"

    @admin.display(description="委托")
    def order_link(self, obj: RiskEvent) -> str:
        if not obj.order_id:
            return ""
        return format_html('<a href="../revieworder/{}/change/">#{}</a>', obj.order_id, obj.order_id)


@admin.register(RiskCounter)
class RiskCounterAdmin(_ReadOnly):
    list_display = ["trading_day", "account", "key", "orders", "amount", "rejected", "cancels", "last_order_at",
                    "second_count", "start_assets", "peak_assets", "updated_at"]
    list_filter = ["trading_day"]
    search_fields = ["account__name", "key"]
    list_select_related = ["account"]


# --------------------------------------------------------------------------- trading states


def _state_actions(scope_label: str) -> list[Callable[..., Any]]:
    """Admin actions switching the trading state of the selected accounts (or of the global row)."""

    def make(state: str, label: str) -> Callable[..., Any]:
        def action(model_admin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
            def apply(obj: Any, data: dict[str, Any]) -> None:
                account = None if isinstance(obj, RiskControl) else obj
                services.trading_state_set(account=account, state=state, reason=data["reason"], actor=_actor(request),
                                           cancel_open_orders=bool(data.get("cancel_open_orders")))

            return _with_reason(model_admin, request, queryset, action=f"set_{state.lower()}", title=f"{scope_label}{label}",
                                question=f"将以下对象切换为 {state} ({label})?", submit_label=f"确认切换为 {state}",
                                form_class=StateForm, apply=apply)

        action.__name__ = f"set_{state.lower()}"
        return admin.action(description=f"{label} ({state})", permissions=["set_trading_state"])(action)

    return [make(TradingState.HALTED, "暂停交易"), make(TradingState.REDUCING, "只减仓"), make(TradingState.ACTIVE, "恢复正常交易")]


class _TradingStateAdmin(admin.ModelAdmin):
    def has_set_trading_state_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("risk.set_trading_state")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # states change only through the actions (a service with a reason)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return super().has_view_permission(request, obj) or self.has_set_trading_state_permission(request)


@admin.register(AccountTradingState)
class AccountTradingStateAdmin(_TradingStateAdmin):
    list_display = ["name", "display_name", "trading_state", "trading_state_reason", "control_group", "is_high_frequency", "status"]
    list_filter = ["trading_state", "is_high_frequency", "control_group"]
    search_fields = ["name", "display_name"]
    actions = _state_actions("账户")


@admin.register(RiskControl)
class RiskControlAdmin(_TradingStateAdmin):
    list_display = ["__str__", "trading_state", "trading_state_reason", "updated_by", "updated_at"]
    actions = _state_actions("全局")

    def get_queryset(self, request: HttpRequest) -> QuerySet[RiskControl]:
        RiskControl.objects.get_or_create(pk=RiskControl.SINGLETON_ID)
        return super().get_queryset(request)


# --------------------------------------------------------------------------- review of held orders


def _verdict_rows(order: ReviewOrder) -> Any:
    verdicts = order.risk_verdicts or []
    if not verdicts:
        return "无 (no rule configured)"
    rows = format_html_join(
        "", "<tr style='{}'><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td></tr>",
        ((("" if v.get("passed") else "background:#fde2e1"), v.get("rule", ""), "通过" if v.get("passed") else "未通过",
          v.get("action", ""), v.get("message", ""), json.dumps(v.get("values") or {}, ensure_ascii=False)) for v in verdicts),
    )
    return format_html("<table><tr><th>规则</th><th>结果</th><th>动作</th><th>说明</th><th>比较值</th></tr>{}</table>", rows)


class StatusDefaultFilter(admin.SimpleListFilter):
    title = "状态"
    parameter_name = "status"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        from orders.models import OrderStatus

        return [("all", "全部"), *[(s.value, s.label) for s in OrderStatus]]

    def choices(self, changelist: Any) -> Any:
        value = self.value() or "PENDING_APPROVAL"
        for lookup, title in self.lookup_choices:
            yield {"selected": value == lookup, "query_string": changelist.get_query_string({self.parameter_name: lookup}),
                   "display": title}

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value() or "PENDING_APPROVAL"
        return queryset if value == "all" else queryset.filter(status=value)


@admin.register(ReviewOrder)
class ReviewOrderAdmin(admin.ModelAdmin):
    list_display = ["id", "account", "instrument", "side", "order_type", "price", "quantity", "status", "failed_rules",
                    "status_reason", "created_at"]
    list_filter = [StatusDefaultFilter, "side"]
    search_fields = ["client_order_id", "account__name", "instrument__code"]
    list_select_related = ["account", "instrument"]
    readonly_fields = ["account", "instrument", "client_order_id", "strategy", "side", "order_type", "price", "protection_price",
                       "quantity", "status", "status_reason", "trading_day", "created_at", "submitted_by", "verdicts"]
    fields = tuple(readonly_fields)
    actions = ["approve", "reject", "override"]

    @admin.display(description="未通过的规则")
    def failed_rules(self, obj: ReviewOrder) -> str:
        return ", ".join(f"{v.get('rule')}({v.get('action')})" for v in obj.risk_verdicts or [] if not v.get("passed"))

    @admin.display(description="风控结果 (verdicts)")
    def verdicts(self, obj: ReviewOrder) -> Any:
        return _verdict_rows(obj)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return super().has_view_permission(request, obj) or self.has_review_permission(request)

    def has_review_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("risk.review_order")

    def has_override_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("risk.override_order")

    @admin.action(description="审批通过 (approve: accept REVIEW verdicts, re-check)", permissions=["review"])
    def approve(self, request: HttpRequest, queryset: QuerySet[ReviewOrder]) -> HttpResponse | None:
        from orders.review import order_approve

        return _with_reason(self, request, queryset, action="approve", title="审批通过", question="审批以下委托 (风控将复核)?",
                            submit_label="确认审批", form_class=OptionalReasonForm,
                            apply=lambda obj, data: order_approve(order_id=obj.pk, actor=_actor(request), reason=data["reason"]))

    @admin.action(description="拒绝 (reject)", permissions=["review"])
    def reject(self, request: HttpRequest, queryset: QuerySet[ReviewOrder]) -> HttpResponse | None:
        from orders.review import order_reject

        return _with_reason(self, request, queryset, action="reject", title="拒绝委托", question="拒绝以下委托?",
                            submit_label="确认拒绝", form_class=ReasonForm,
                            apply=lambda obj, data: order_reject(order_id=obj.pk, actor=_actor(request), reason=data["reason"]))

    @admin.action(description="越权放行 (override a REJECT verdict)", permissions=["override"])
    def override(self, request: HttpRequest, queryset: QuerySet[ReviewOrder]) -> HttpResponse | None:
        from orders.review import order_override

        return _with_reason(self, request, queryset, action="override", title="越权放行",
                            question="越权放行以下委托 (不理会风控拒绝, 将记入审计)?", submit_label="确认越权放行",
                            form_class=ReasonForm,
                            apply=lambda obj, data: order_override(order_id=obj.pk, actor=_actor(request), reason=data["reason"]))
