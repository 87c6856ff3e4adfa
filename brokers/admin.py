"""Read-only views of the paper broker's books: operators look, the broker writes."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from brokers.models import BrokerLink, PaperAccount, PaperOrder, PaperPosition, PaperTrade
from staff.admin_tools import ReadOnlyModelAdmin


@admin.register(PaperAccount)
class PaperAccountAdmin(ReadOnlyModelAdmin):
    list_display = ["account_name", "cash", "frozen", "available_display", "updated_at"]
    search_fields = ["account_name"]

    @admin.display(description=_("available"))
    def available_display(self, obj: PaperAccount) -> Any:
        return obj.available


@admin.register(PaperPosition)
class PaperPositionAdmin(ReadOnlyModelAdmin):
    list_display = [
        "account_name",
        "symbol",
        "quantity",
        "frozen_quantity",
        "bought_today",
        "bought_day",
        "cost_amount",
    ]
    list_filter = ["account_name"]
    search_fields = ["account_name", "symbol"]


class PaperTradeInline(admin.TabularInline):
    model = PaperTrade
    extra = 0
    can_delete = False
    fields = ("broker_trade_id", "price", "quantity", "amount", "commission", "stamp_duty", "transfer_fee", "filled_at")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(PaperOrder)
class PaperOrderAdmin(ReadOnlyModelAdmin):
    list_display = [
        "broker_order_id",
        "account_name",
        "client_ref",
        "symbol",
        "side",
        "order_type",
        "price",
        "quantity",
        "filled_quantity",
        "status",
        "message",
        "created_at",
    ]
    list_filter = ["status", "side", "order_type", "trading_day", "cage_held", "account_name"]
    search_fields = ["broker_order_id", "client_ref", "symbol", "account_name"]
    date_hierarchy = "created_at"
    inlines = [PaperTradeInline]


@admin.register(PaperTrade)
class PaperTradeAdmin(ReadOnlyModelAdmin):
    list_display = [
        "broker_trade_id",
        "order",
        "price",
        "quantity",
        "amount",
        "commission",
        "stamp_duty",
        "transfer_fee",
        "other_fees",
        "filled_at",
    ]
    list_filter = ["trading_day"]
    search_fields = ["broker_trade_id", "order__broker_order_id", "order__client_ref", "order__symbol"]
    list_select_related = ["order"]
    date_hierarchy = "filled_at"


@admin.register(BrokerLink)
class BrokerLinkAdmin(ReadOnlyModelAdmin):
    """Each account's connection to its broker as last seen (brokers/connection.py)."""

    list_display = ["account", "state", "failures", "last_error", "changed_at", "last_ok_at", "next_attempt_at"]
    list_filter = ["state"]
    search_fields = ["account__name"]
