"""Alerts in admin: acknowledge and resolve (``monitoring.acknowledge_alert``, audited through the
alert services), routing rules and monitor settings (Risk manager, Administrator), channels and
their secrets (Administrator only: change_channel), deliveries with their attempts (read-only,
failed ones retried by an action).

Secrets are write-only here: the form takes new values and keeps the stored ones when left
empty; pages show which secrets exist, never their values.
"""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from monitoring import alerts as alert_services
from monitoring.channels import REGISTRY
from monitoring.delivery import delivery_retry
from monitoring.models import (
    Alert,
    AlertStatus,
    Channel,
    Delivery,
    DeliveryAttempt,
    DeliveryStatus,
    Heartbeat,
    MonitorSetting,
    RoutingRule,
)
from monitoring.monitors import DEFAULTS, settings_cache_clear
from staff.admin_tools import ReadOnlyAdminMixin, ReadOnlyModelAdmin, local_time_html
from trading.i18n import bilingual

ACKNOWLEDGE = "monitoring.acknowledge_alert"
LEVEL_STYLE = {"CRITICAL": "rejected", "WARNING": "pending", "INFO": "working"}


def level_badge(level: str, label: Any) -> str:
    return format_html('<span class="tbo-badge tbo-badge-{}" data-level="{}">{}</span>',
                       LEVEL_STYLE.get(level, "dead"), level, label)


@admin.register(Alert)
class AlertAdmin(ReadOnlyModelAdmin):
    list_display = ["level_display", "status", "title", "account", "occurrences", "last_seen", "acknowledged_by",
                    "escalations"]
    list_filter = ["status", "level", "code"]
    search_fields = ["title", "detail", "account", "code"]
    actions = ["acknowledge_selected", "resolve_selected"]
    readonly_fields = ["deliveries_list"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [*super().get_readonly_fields(request, obj), "deliveries_list"]

    @admin.display(description=_("level"), ordering="level")
    def level_display(self, obj: Alert) -> str:
        return level_badge(obj.level, obj.get_level_display())

    @admin.display(description=_("last seen"), ordering="last_seen_at")
    def last_seen(self, obj: Alert) -> str:
        return local_time_html(obj.last_seen_at)

    @admin.display(description=_("deliveries"))
    def deliveries_list(self, obj: Alert) -> str:
        rows = obj.deliveries.select_related("channel").order_by("created_at")
        return format_html_join("", "<div>{} {} {} ({})</div>",
                                ((d.channel.name, d.get_kind_display(), d.get_status_display(), d.attempts) for d in rows))

    def has_acknowledge_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(ACKNOWLEDGE)

    @admin.action(description=_("acknowledge"), permissions=["acknowledge"])
    def acknowledge_selected(self, request: HttpRequest, queryset: QuerySet[Alert]) -> None:
        done = self._each(request, queryset.filter(status=AlertStatus.OPEN), alert_services.alert_acknowledge)
        messages.success(request, bilingual("{count} alert(s) acknowledged", count=done))

    @admin.action(description=_("resolve"), permissions=["acknowledge"])
    def resolve_selected(self, request: HttpRequest, queryset: QuerySet[Alert]) -> None:
        done = self._each(request, queryset.exclude(status=AlertStatus.RESOLVED), alert_services.alert_resolve)
        messages.success(request, bilingual("{count} alert(s) resolved", count=done))

    @staticmethod
    def _each(request: HttpRequest, queryset: QuerySet[Alert], service: Any) -> int:
        """``service`` for each alert, by the operator (each in its own transaction)."""
        ids = list(queryset.values_list("pk", flat=True))
        for pk in ids:
            service(alert_id=pk, user=request.user.get_username())
        return len(ids)


class ChannelForm(forms.ModelForm):
    kind = forms.ChoiceField(label=_("kind"), choices=())
    new_secrets = forms.CharField(
        label=_("new secrets"), required=False, widget=forms.Textarea(attrs={"rows": 3, "autocomplete": "off"}),
        help_text=_('JSON, e.g. {"webhook": "https://...", "secret": "SEC..."}; empty: keep the stored ones'))

    class Meta:
        model = Channel
        fields = ["name", "kind", "enabled", "options", "rate_per_minute", "max_attempts", "fallback"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["kind"].choices = [(kind, kind) for kind in sorted(REGISTRY)]  # type: ignore[attr-defined]  # a ChoiceField, declared above

    def clean_new_secrets(self) -> dict[str, Any] | None:
        raw = (self.cleaned_data.get("new_secrets") or "").strip()
        if not raw:
            return None
        try:
            value = json.loads(raw)
        except ValueError:
            raise forms.ValidationError(bilingual("Secrets must be a JSON object")) from None
        if not isinstance(value, dict):
            raise forms.ValidationError(bilingual("Secrets must be a JSON object"))
        return value

    def save(self, commit: bool = True) -> Channel:
        channel = super().save(commit=False)
        secrets = self.cleaned_data.get("new_secrets")
        if secrets is not None:
            channel.secrets = secrets
        if commit:
            channel.save()
            self.save_m2m()
        return channel


@admin.register(Channel)
class ChannelAdmin(admin.ModelAdmin):
    form = ChannelForm
    list_display = ["name", "kind", "enabled", "rate_per_minute", "max_attempts", "fallback", "paused_until",
                    "secrets_masked"]
    readonly_fields = ["secrets_masked", "paused_until"]
    fields = ["name", "kind", "enabled", "options", "secrets_masked", "new_secrets", "rate_per_minute", "max_attempts",
              "fallback", "paused_until"]
    list_select_related = ["fallback"]

    @admin.display(description=_("secrets"))
    def secrets_masked(self, obj: Channel) -> str:
        """Which secrets are stored, never their values."""
        keys = sorted((obj.secrets or {}).keys()) if obj.pk else []
        return format_html_join(", ", "{}=••••••", ((key,) for key in keys)) if keys else "-"


@admin.register(RoutingRule)
class RoutingRuleAdmin(admin.ModelAdmin):
    list_display = ["name", "enabled", "min_level", "codes", "accounts", "group_seconds", "escalate_after_seconds"]
    list_filter = ["enabled", "min_level"]
    filter_horizontal = ["channels", "escalation_channels"]


class AttemptInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = DeliveryAttempt
    fields = ["started_at", "finished_at", "ok", "error"]
    readonly_fields = ["started_at", "finished_at", "ok", "error"]
    extra = 0


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyModelAdmin):
    list_display = ["created", "channel", "kind", "status", "level", "subject", "attempts", "last_error"]
    list_filter = ["status", "kind", "channel", "level"]
    search_fields = ["subject", "body", "last_error"]
    list_select_related = ["channel"]
    inlines = [AttemptInline]
    actions = ["retry_selected"]

    @admin.display(description=_("created"), ordering="created_at")
    def created(self, obj: Delivery) -> str:
        return local_time_html(obj.created_at)

    def has_retry_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(ACKNOWLEDGE)

    @admin.action(description=_("retry failed deliveries"), permissions=["retry"])
    def retry_selected(self, request: HttpRequest, queryset: QuerySet[Delivery]) -> None:
        done = sum(1 for pk in queryset.filter(status=DeliveryStatus.FAILED).values_list("pk", flat=True)
                   if delivery_retry(delivery_id=pk, user=request.user.get_username()))
        messages.success(request, bilingual("{count} delivery(ies) owed again", count=done))


class MonitorSettingForm(forms.ModelForm):
    code = forms.ChoiceField(label=_("monitor"), choices=())

    class Meta:
        model = MonitorSetting
        fields = ["code", "enabled", "level", "threshold", "window_seconds", "min_count"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["code"].choices = [(code, code) for code in sorted(DEFAULTS)]  # type: ignore[attr-defined]  # a ChoiceField, declared above


@admin.register(MonitorSetting)
class MonitorSettingAdmin(admin.ModelAdmin):
    form = MonitorSettingForm
    list_display = ["code", "enabled", "level", "threshold", "window_seconds", "min_count"]

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        settings_cache_clear()


@admin.register(Heartbeat)
class HeartbeatAdmin(ReadOnlyModelAdmin):
    list_display = ["name", "beat", "detail"]

    @admin.display(description=_("last beat"), ordering="at")
    def beat(self, obj: Heartbeat) -> str:
        return local_time_html(obj.at)
