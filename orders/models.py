"""Orders, their fills and the outbox that carries them to the broker."""

from __future__ import annotations

from decimal import Decimal

from django.db import models
from django.db.models import Q

from trading.market_rules import OrderType, Side
from trading.models import Account, Instrument, money_field, price_field
from trading.money import ROUND_HALF_EVEN, to_price_places


class OrderStatus(models.TextChoices):
    NEW = "NEW", "新建"
    PENDING_APPROVAL = "PENDING_APPROVAL", "待审批"
    SUBMITTING = "SUBMITTING", "报送中"
    SUBMITTED = "SUBMITTED", "已报"
    PARTIALLY_FILLED = "PARTIALLY_FILLED", "部分成交"
    FILLED = "FILLED", "全部成交"
    CANCEL_REQUESTED = "CANCEL_REQUESTED", "撤单中"
    CANCELLED = "CANCELLED", "已撤"
    REJECTED = "REJECTED", "已拒绝"
    EXPIRED = "EXPIRED", "已过期"
    UNKNOWN = "UNKNOWN", "状态未知"


TERMINAL_STATUSES = frozenset({OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.REJECTED, OrderStatus.EXPIRED})
# Orders that rest at the broker and can still fill.
WORKING_STATUSES = frozenset({OrderStatus.SUBMITTED, OrderStatus.PARTIALLY_FILLED, OrderStatus.CANCEL_REQUESTED})


class OrderSource(models.TextChoices):
    API = "api", "API"
    ADMIN = "admin", "后台"
    SYSTEM = "system", "系统"


class Order(models.Model):
    """One order of one account. Its status only changes through orders.state_machine."""

    # No index of its own: (account, client_order_id) and (account, status) lead with it.
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="orders", db_index=False)
    instrument = models.ForeignKey(Instrument, on_delete=models.PROTECT, related_name="orders")
    client_order_id = models.CharField("客户端委托号", max_length=64)
    strategy = models.CharField("策略", max_length=64, blank=True, db_index=True)
    side = models.CharField("方向", max_length=4, choices=Side.choices)
    order_type = models.CharField("类型", max_length=8, choices=OrderType.choices)
    price = price_field("价格", null=True, blank=True)
    protection_price = price_field("保护价", null=True, blank=True)
    # The market's price when the order came in (the price cage's reference: a buy the ask, else the
    # bid, last, previous close; a sell the bid first), from the quote intake reads. Slippage of a fill
    # is measured against it (compliance/trading_reports.py); None when there was no quote.
    reference_price = price_field("委托时参考价", null=True, blank=True)
    quantity = models.BigIntegerField("数量")
    filled_quantity = models.BigIntegerField("成交数量", default=0)
    filled_amount = money_field("成交金额", default=Decimal("0"))
    fees_paid = money_field("已付费用", default=Decimal("0"))
    commission_charged = money_field("已收佣金", default=Decimal("0"))
    frozen_amount = money_field("冻结资金", default=Decimal("0"))
    frozen_quantity = models.BigIntegerField("冻结股份", default=0)
    status = models.CharField("状态", max_length=20, choices=OrderStatus.choices, default=OrderStatus.NEW)
    status_reason = models.CharField("状态说明", max_length=500, blank=True)
    broker_order_id = models.CharField("券商委托号", max_length=64, blank=True, db_index=True)
    risk_verdicts = models.JSONField("风控结果", default=list, blank=True)
    replaces = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="replaced_by")
    source = models.CharField(max_length=8, choices=OrderSource.choices, default=OrderSource.API)
    submitted_by = models.CharField("提交者", max_length=128, blank=True)
    trading_day = models.DateField("交易日", db_index=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    # The order row is its own outbox: a NEW order that passed risk control is
    # "to submit", a CANCEL_REQUESTED one "to cancel", written in the same
    # transaction as the change. The sweep re-enqueues those not picked up in
    # time and stamps this field, so a backlog is not re-enqueued every sweep.
    dispatched_at = models.DateTimeField(null=True, blank=True)
    # When the order passed the market-rule, holdings and risk checks and took its freeze. A
    # replacement waiting for its original's cancel has none yet: nothing without it is ever
    # handed to the queue or sent to a broker (orders.services: relay, sweep and worker).
    admitted_at = models.DateTimeField("准入时间", null=True, blank=True)
    # When the account asked to cancel it (order_cancel, a modify's cancel of its original): what
    # the programme-trading counts and the instant-cancel figure read (orders/activity.py).
    cancel_requested_at = models.DateTimeField("撤单申请时间", null=True, blank=True)

    class Meta:
        verbose_name = "委托"
        verbose_name_plural = "委托"
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["account", "client_order_id"], name="order_client_order_id_unique"),
            models.CheckConstraint(condition=Q(quantity__gt=0), name="order_quantity_positive"),
            models.CheckConstraint(condition=Q(filled_quantity__lte=models.F("quantity")), name="order_not_overfilled"),
        ]
        indexes = [
            models.Index(fields=["account", "status"], name="order_account_status_idx"),
            models.Index(fields=["status", "updated_at"], name="order_status_updated_idx"),
            # The outbox relay's own index: only rows whose broker call is owed and not yet
            # handed to the queue, so a pass costs what it sends, not every NEW order.
            models.Index(fields=["id"], name="order_owed_idx",
                         condition=Q(dispatched_at__isnull=True, status__in=["NEW", "CANCEL_REQUESTED"])),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.side} {self.quantity} {self.instrument.symbol} {self.status}"

    @property
    def symbol(self) -> str:
        return self.instrument.symbol

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @property
    def remaining_quantity(self) -> int:
        return self.quantity - self.filled_quantity

    @property
    def avg_fill_price(self) -> Decimal | None:
        if not self.filled_quantity:
            return None
        return to_price_places(self.filled_amount / self.filled_quantity, ROUND_HALF_EVEN)


class Fill(models.Model):
    """One execution reported by the broker for an order."""

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="fills")
    broker_trade_id = models.CharField("成交编号", max_length=64)
    quantity = models.BigIntegerField("成交数量")
    price = price_field("成交价")
    amount = money_field("成交金额")
    commission = money_field("佣金", default=Decimal("0"))
    stamp_duty = money_field("印花税", default=Decimal("0"))
    transfer_fee = money_field("过户费", default=Decimal("0"))
    other_fees = money_field("其他费用", default=Decimal("0"))
    fees = money_field("费用合计", default=Decimal("0"))
    # What this fill realised on the account's position (a sell: amount - fees - the average cost of
    # the shares sold, buy fees included in that cost; a buy: 0), as position_apply_fill computed it.
    realized_pnl = money_field("已实现盈亏", default=Decimal("0"))
    filled_at = models.DateTimeField("成交时间")
    trading_day = models.DateField("交易日", db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "成交"
        verbose_name_plural = "成交"
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["order", "broker_trade_id"], name="fill_broker_trade_unique"),
            models.CheckConstraint(condition=Q(quantity__gt=0), name="fill_quantity_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.broker_trade_id} {self.quantity}@{self.price}"


class DiscrepancyKind(models.TextChoices):
    """What differs between the broker's records and ours (orders.services.discrepancies)."""

    ORDER_STATUS = "ORDER_STATUS", "委托状态不一致"
    FILLED_QUANTITY = "FILLED_QUANTITY", "成交数量不一致"
    ORDER_ONLY_AT_BROKER = "ORDER_ONLY_AT_BROKER", "券商有本地无的委托"
    ORDER_ONLY_HERE = "ORDER_ONLY_HERE", "本地有券商无的委托"
    TRADE_ONLY_AT_BROKER = "TRADE_ONLY_AT_BROKER", "本地缺少的成交"
    POSITION_QUANTITY = "POSITION_QUANTITY", "持仓数量不一致"
    CASH = "CASH", "资金不一致"


class DiscrepancyStatus(models.TextChoices):
    OPEN = "OPEN", "待处理"
    RESOLVED = "RESOLVED", "已处理"


class Discrepancy(models.Model):
    """One difference between the broker's records and ours that reconciliation found.

    One OPEN row per (account, kind, object_ref): the same difference seen again only moves
    ``last_seen_at``. Reconciliation closes a row itself when it compares the same object again
    and both sides agree; otherwise a person resolves it with a reason."""

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="discrepancies", verbose_name="资金账户")
    kind = models.CharField("差异类型", max_length=24, choices=DiscrepancyKind.choices)
    # What differs: "order:<id>", "broker_order:<broker order id>", "trade:<broker trade id>",
    # "position:<symbol>", "cash" or "available".
    object_ref = models.CharField("对象", max_length=128)
    order = models.ForeignKey(Order, null=True, blank=True, on_delete=models.PROTECT, related_name="discrepancies",
                              verbose_name="委托")
    ours = models.CharField("本地记录", max_length=500, blank=True)
    theirs = models.CharField("券商记录", max_length=500, blank=True)
    first_seen_at = models.DateTimeField("首次发现")
    last_seen_at = models.DateTimeField("最近发现")
    times_seen = models.PositiveIntegerField("发现次数", default=1)
    status = models.CharField("处理状态", max_length=10, choices=DiscrepancyStatus.choices, default=DiscrepancyStatus.OPEN)
    resolved_by = models.CharField("处理人", max_length=128, blank=True)
    resolved_at = models.DateTimeField("处理时间", null=True, blank=True)
    resolution = models.CharField("处理说明", max_length=500, blank=True)

    class Meta:
        verbose_name = "对账差异"
        verbose_name_plural = "对账差异"
        ordering = ["-last_seen_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["account", "kind", "object_ref"], condition=Q(status="OPEN"),
                                    name="discrepancy_one_open_per_object"),
            models.CheckConstraint(condition=Q(status="OPEN") | ~Q(resolution=""), name="discrepancy_resolved_with_reason"),
        ]
        indexes = [models.Index(fields=["status", "account"], name="discrepancy_status_account_idx")]

    def __str__(self) -> str:
        return f"#{self.pk} {self.kind} {self.object_ref}"
