"""The audit trail in admin: read-only for everyone, visible with `audit.view_audit`.

Rows are append-only: no one adds, changes or deletes them here, superusers
included.
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin
from django.core.paginator import Paginator
from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse
from django.utils.functional import cached_property
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from audit.models import AuditEvent
from staff.admin_tools import ReadOnlyAdminMixin, local_time_html

# object_type -> admin URL name of its page
OBJECT_PAGES = {
    "order": "admin:orders_order_change",
    "account": "admin:trading_account_change",
    "api_key": "admin:trading_apikey_change",
}


class BoundedCountPaginator(Paginator):
    """Counts at most ``LIMIT`` rows (``SELECT COUNT(*) FROM (... LIMIT n)``), so a page of a log of
    millions of rows never counts them all; past the limit the last pages are not offered (narrow
    the search, or use the compliance search, which pages by key)."""

    LIMIT = 10_000

    @cached_property
    def count(self) -> int:
        events: Any = self.object_list  # the changelist's queryset
        return int(events[: self.LIMIT].count())


class RecentValuesFilter(admin.AllValuesFieldListFilter):
    """The values seen among the latest events (not a DISTINCT over the whole log)."""

    RECENT = 10_000

    def __init__(self, field: Any, request: HttpRequest, params: Any, model: Any, model_admin: Any, field_path: str) -> None:
        super().__init__(field, request, params, model, model_admin, field_path)  # its DISTINCT is lazy: replaced here
        floor = getattr(request, "_audit_recent_floor", None)  # one look-up for the page's filters
        if floor is None:
            recent = model.objects.order_by("-id").values_list("id", flat=True)[self.RECENT - 1: self.RECENT]
            floor = next(iter(recent), 0)
            request._audit_recent_floor = floor  # type: ignore[attr-defined]
        values = set(model.objects.filter(id__gte=floor).order_by().values_list(field_path, flat=True).distinct())
        if self.lookup_val:
            values |= set(self.lookup_val)
        self.lookup_choices: Any = sorted(values)


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["id", "occurred_local", "actor_type", "actor", "action", "object_link", "account", "reason_short"]
    list_filter = ["actor_type", ("object_type", RecentValuesFilter), ("action", RecentValuesFilter)]
    # Exact or prefix matches only, no substring search in the reasons (the compliance search is the
    # indexed one: compliance/selectors.py).
    search_fields = ["=actor", "^action", "=object_id", "=account"]
    search_help_text = _("Actor, account or object id (exact), or the start of an action")
    list_per_page = 100
    ordering = ["-id"]
    # No full COUNT(*) on every page, and no date drill-down (a DISTINCT over every row): the
    # compliance search (compliance/admin.py) filters by time.
    show_full_result_count = False
    paginator = BoundedCountPaginator
    fields = ("id", "occurred_local", "actor_type", "actor", "action", "object_type", "object_id", "object_link",
              "account", "before_pretty", "after_pretty", "reason")
    readonly_fields = fields

    def _may_view(self, request: HttpRequest) -> bool:
        return request.user.is_active and request.user.has_perm("audit.view_audit")

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self._may_view(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._may_view(request)

    @admin.display(description=_("occurred at"), ordering="occurred_at")
    def occurred_local(self, obj: AuditEvent) -> str:
        return local_time_html(obj.occurred_at)

    @admin.display(description=_("object"))
    def object_link(self, obj: AuditEvent) -> str:
        label = f"{obj.object_type} #{obj.object_id}"
        name = OBJECT_PAGES.get(obj.object_type)
        if name is None:
            return label
        try:
            url = reverse(name, args=[obj.object_id])
        except NoReverseMatch:
            return label
        return format_html('<a href="{}">{}</a>', url, label)

    @admin.display(description=_("reason"))
    def reason_short(self, obj: AuditEvent) -> str:
        text = obj.reason or ""
        return text if len(text) <= 60 else format_html('<span title="{}">{}…</span>', text, text[:60])

    @admin.display(description=_("before"))
    def before_pretty(self, obj: AuditEvent) -> str:
        return _pretty(obj.before)

    @admin.display(description=_("after"))
    def after_pretty(self, obj: AuditEvent) -> str:
        return _pretty(obj.after)


def _pretty(value: Any) -> str:
    if value is None:
        return "-"
    return format_html("<pre style='margin:0;white-space:pre-wrap'>{}</pre>",
                       json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True))
