"""Conditional orders (条件单): parents that release ordinary orders (children) when a trigger fires.

A parent's ``kind`` names its plug-in (``conditions/kinds/``): the class that decides, on a quote or
a clock tick, which children to release. Its state changes only through
``conditions.state_machine.parent_apply_event``. ``watch_low`` / ``watch_high`` / ``due_at`` are
the plug-in's thresholds, kept in step with ``params`` and ``memory`` under the parent's row lock:
a quote whose last price lies strictly between them, and a clock before ``due_at``, cannot fire the
parent, so evaluation never looks at it (the partial indexes below hold ACTIVE parents only).
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from orders.models import Order
from trading.market_rules import Side
from trading.models import Account, Instrument, price_field


class ParentState(models.TextChoices):
    ACTIVE = "ACTIVE", "监控中"
    TRIGGERED = "TRIGGERED", "已触发"
    PAUSED = "PAUSED", "已暂停"  # an execution algorithm held by an operator or by a refused child
    COMPLETED = "COMPLETED", "已完成"
    CANCELLED = "CANCELLED", "已撤销"
    EXPIRED = "EXPIRED", "已过期"
    FAILED = "FAILED", "失败"


TERMINAL_STATES = frozenset({ParentState.COMPLETED, ParentState.CANCELLED, ParentState.EXPIRED, ParentState.FAILED})


class ChildPriceType(models.TextChoices):
    """How the released order's price is set (always rounded to the tick, clipped to the day's band)."""

    LIMIT = "LIMIT", "固定限价"
    TRIGGER_OFFSET = "TRIGGER_OFFSET", "触发价加减档位"
    BEST_OPPOSITE = "BEST_OPPOSITE", "对手方最优价"
    MARKET = "MARKET", "市价（保护价）"


class ConditionalOrder(models.Model):
    """One conditional order: a trigger (``kind`` + ``params``) and the order it releases."""

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="conditional_orders",
                                db_index=False, verbose_name="资金账户")
    instrument = models.ForeignKey(Instrument, on_delete=models.PROTECT, related_name="conditional_orders",
                                   verbose_name="证券")
    client_order_id = models.CharField("客户端委托号", max_length=64)
    strategy = models.CharField("策略", max_length=64, blank=True)
    kind = models.CharField("条件类型", max_length=32)
    side = models.CharField("方向", max_length=4, choices=Side.choices)
    # Shares the parent releases in all (0 while a bracket waits for its entry order's fill; a grid's
    # position cap). ``released_quantity`` counts the shares of every child released so far.
    quantity = models.BigIntegerField("数量")
    released_quantity = models.BigIntegerField("已释放数量", default=0)
    price_type = models.CharField("委托价格方式", max_length=16, choices=ChildPriceType.choices,
                                  default=ChildPriceType.LIMIT)
    limit_price = price_field("限价", null=True, blank=True)
    offset_ticks = models.IntegerField("价格偏移档位", default=0)
    protection_price = price_field("保护价", null=True, blank=True)
    params = models.JSONField("触发参数", default=dict)
    # The plug-in's own running state (a trailing stop's extreme, a grid's reference level).
    memory = models.JSONField("运行状态", default=dict, blank=True)
    watch_low = price_field("下触发阈值", null=True, blank=True)
    watch_high = price_field("上触发阈值", null=True, blank=True)
    due_at = models.DateTimeField("定时触发时间", null=True, blank=True)
    entry_order = models.ForeignKey(Order, null=True, blank=True, on_delete=models.PROTECT, related_name="+",
                                    verbose_name="开仓委托")
    state = models.CharField("状态", max_length=12, choices=ParentState.choices, default=ParentState.ACTIVE)
    state_reason = models.CharField("状态说明", max_length=500, blank=True)
    # Bumped by every change: what an evaluator read is compared with the locked row.
    version = models.PositiveIntegerField("版本", default=0)
    expires_at = models.DateTimeField("失效时间", null=True, blank=True)
    created_by = models.CharField("创建者", max_length=128, blank=True)
    created_at = models.DateTimeField("创建时间", auto_now_add=True)
    updated_at = models.DateTimeField("更新时间", auto_now=True)
    triggered_at = models.DateTimeField("触发时间", null=True, blank=True)

    class Meta:
        verbose_name = "条件单"
        verbose_name_plural = "条件单"
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["account", "client_order_id"], name="conditional_client_order_id_unique"),
            models.CheckConstraint(condition=Q(quantity__gte=0), name="conditional_quantity_non_negative"),
        ]
        indexes = [
            models.Index(fields=["account", "state"], name="conditional_account_state_idx"),
            models.Index(fields=["state", "id"], name="conditional_state_idx"),
            # A quote touches only the ACTIVE parents of its symbol whose threshold it reaches.
            models.Index(fields=["instrument", "watch_low"], name="conditional_watch_low_idx",
                         condition=Q(state="ACTIVE", watch_low__isnull=False)),
            models.Index(fields=["instrument", "watch_high"], name="conditional_watch_high_idx",
                         condition=Q(state="ACTIVE", watch_high__isnull=False)),
            models.Index(fields=["due_at"], name="conditional_due_idx", condition=Q(state="ACTIVE", due_at__isnull=False)),
            models.Index(fields=["expires_at"], name="conditional_expiry_idx",
                         condition=Q(state="ACTIVE", expires_at__isnull=False)),
            models.Index(fields=["entry_order"], name="conditional_entry_idx", condition=Q(entry_order__isnull=False)),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.kind} {self.side} {self.quantity} {self.state}"

    @property
    def symbol(self) -> str:
        return self.instrument.symbol

    @property
    def is_terminal(self) -> bool:
        return self.state in TERMINAL_STATES


class ParentEvent(models.Model):
    """The trigger history of one parent: every change of state or memory, every release, every refusal."""

    parent = models.ForeignKey(ConditionalOrder, on_delete=models.PROTECT, related_name="history", verbose_name="条件单")
    at = models.DateTimeField("时间")
    event = models.CharField("事件", max_length=24)
    state_before = models.CharField("之前状态", max_length=12, blank=True)
    state_after = models.CharField("之后状态", max_length=12, blank=True)
    last_price = price_field("行情最新价", null=True, blank=True)
    child = models.ForeignKey(Order, null=True, blank=True, on_delete=models.PROTECT, related_name="+",
                              verbose_name="释放的委托")
    detail = models.JSONField("详情", default=dict, blank=True)
    reason = models.CharField("说明", max_length=500, blank=True)

    class Meta:
        verbose_name = "条件单触发记录"
        verbose_name_plural = "条件单触发记录"
        ordering = ["id"]
        indexes = [models.Index(fields=["child"], name="parent_event_child_idx", condition=Q(child__isnull=False))]

    def __str__(self) -> str:
        return f"{self.parent_id} {self.event}"


class AlgoObservation(models.Model):
    """The market an execution algorithm (TWAP, iceberg) saw during its life, for its report: the
    time-weighted average of the last price since the parent was created (quotes carry no traded
    volume, so no volume-weighted average). ``price_seconds`` sums last price x seconds it stood;
    the segment from ``last_at`` to the parent's end (or now) is added when the report is read.
    Written by the quote receiver (conditions/algo_report.py) alone, its row locked on its own."""

    parent = models.OneToOneField(ConditionalOrder, on_delete=models.PROTECT, primary_key=True, related_name="observation",
                                  verbose_name="条件单")
    instrument = models.ForeignKey(Instrument, on_delete=models.PROTECT, related_name="+", verbose_name="证券")
    started_at = models.DateTimeField("开始时间")
    last_at = models.DateTimeField("最近行情时间")
    last_price = price_field("最近价", null=True, blank=True)
    price_seconds = models.DecimalField("价格×秒", max_digits=28, decimal_places=6, default=0)
    seconds = models.DecimalField("秒数", max_digits=20, decimal_places=6, default=0)
    quotes = models.BigIntegerField("行情数", default=0)

    class Meta:
        verbose_name = "算法单行情观察"
        verbose_name_plural = "算法单行情观察"

    def __str__(self) -> str:
        return f"{self.parent_id} {self.quotes}"
