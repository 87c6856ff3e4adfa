"""Shared pieces of the back office's admin pages: badges, reason pages, running a service.

Admin pages never change state themselves: every button calls a service with
``Actor.user(username)``, so the state machine, risk re-check and audit trail
apply; a service's TradingError (say, another operator got there first)
becomes an error message, never a 500.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.contrib import admin, messages
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext as _

from audit.services import Actor
from trading.clock import now
from trading.errors import TradingError
from trading.selectors import price_text as api_price_text

STATUS_STYLE = {
    "PENDING_APPROVAL": "pending",
    "NEW": "working",
    "SUBMITTING": "working",
    "SUBMITTED": "working",
    "PARTIALLY_FILLED": "working",
    "CANCEL_REQUESTED": "working",
    "FILLED": "filled",
    "CANCELLED": "dead",
    "EXPIRED": "dead",
    "REJECTED": "rejected",
    "UNKNOWN": "unknown",
    "HALTED": "halted",
    "REDUCING": "reducing",
    "ACTIVE": "active",
}


def badge(value: str, label: Any) -> str:
    return format_html('<span class="tbo-badge tbo-badge-{}" data-status="{}">{}</span>',
                       STATUS_STYLE.get(value, "dead"), value, label)


def side_html(side: str, label: Any) -> str:
    return format_html('<span class="tbo-{}">{}</span>', "buy" if side == "BUY" else "sell", label)


def local_time(value: datetime | None) -> str:
    """A timestamp as Asia/Shanghai wall time (the settings' TIME_ZONE)."""
    if value is None:
        return "-"
    return timezone.localtime(value).strftime("%Y-%m-%d %H:%M:%S")


def local_time_html(value: datetime | None) -> str:
    """local_time on one line, for list columns."""
    return format_html('<span class="tbo-time">{}</span>', local_time(value))


def short_time(value: datetime | None) -> str:
    """Today's timestamps as HH:MM:SS, older ones with their date (for long lists)."""
    if value is None:
        return "-"
    local = timezone.localtime(value)
    full = local.strftime("%Y-%m-%d %H:%M:%S")
    text = local.strftime("%H:%M:%S") if local.date() == timezone.localdate(now()) else local.strftime("%m-%d %H:%M")
    return format_html('<span class="tbo-num" title="{}">{}</span>', full, text)




def price_text(value: Decimal | None) -> str:
    """A price as the API writes it ("10.50", "3.456"), or "-" when there is none."""
    return api_price_text(value) or "-"


class ReadOnlyAdminMixin:
    """For admin pages that show records and never add, change or delete them:
    changes happen only through services (and their admin actions)."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ReadOnlyModelAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Rows that only services write: every field shown read-only, never added, changed or deleted."""

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [f.name for f in self.model._meta.fields]


def actor_of(request: HttpRequest) -> Actor:
    return Actor.user(request.user.get_username())


def run_service(request: HttpRequest, call: Callable[[], Any], *, success: str | None = None,
                failure_prefix: str = "") -> Any:
    """Call one service; report its TradingError as an error message and return None."""
    try:
        result = call()
    except TradingError as exc:
        messages.error(request, f"{failure_prefix}{exc.message}")
        return None
    if success:
        messages.success(request, success)
    return result


def run_for_each(request: HttpRequest, ids: Iterable[int], call: Callable[[int], Any], *, done: str) -> int:
    """Call a service once per id, each in its own transaction; one failure does not stop the rest.

    ``done`` is a message with ``%(count)d``; each failure gets its own error message.
    """
    succeeded = 0
    for pk in ids:
        try:
            call(pk)
        except TradingError as exc:
            messages.error(request, _("#%(id)s: %(error)s") % {"id": pk, "error": exc.message})
        else:
            succeeded += 1
    if succeeded:
        messages.success(request, done % {"count": succeeded})
    return succeeded


def object_label(admin: Any, obj: Any) -> str:
    label = getattr(admin, "object_label", None)
    return str(label(obj)) if label else str(obj)


def reason_page(request: HttpRequest, admin: Any, *, title: str, form: Any, objects: list[Any], submit_label: str,
                danger: bool = False, action: str | None = None, selected: list[str] | None = None,
                intro: str = "", extra: dict[str, Any] | None = None) -> TemplateResponse:
    """The intermediate page of an action that needs a reason (or a confirmation)."""
    opts = admin.model._meta
    context = {
        **admin.admin_site.each_context(request),
        "title": title,
        "subtitle": None,
        "opts": opts,
        "app_label": opts.app_label,
        "form": form,
        "objects": [(obj.pk, object_label(admin, obj)) for obj in objects],
        "submit_label": submit_label,
        "danger": danger,
        "action": action,
        "selected": selected or [],
        "intro": intro,
        "action_checkbox_name": "_selected_action",
        **(extra or {}),
    }
    return TemplateResponse(request, "admin/staff/reason_form.html", context)
