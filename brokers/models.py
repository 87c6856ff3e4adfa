"""The paper broker's own books (brokers/adapters/paper.py).

Like a real broker, the paper broker keeps its own accounts, positions, orders
and trades and never reads the back office's Order/Position tables:
reconciliation compares the two sets of records. Accounts are linked by name
only (``account_name`` = ``trading.Account.name``), as a broker knows a
"资金账号", not our primary keys.

Locking (PostgreSQL; SQLite serialises writers anyway): every change to one
account's cash, positions and orders happens under its ``PaperAccount`` row
lock. Rows are always locked in this order: ``trading.Quote`` (sorted by
instrument id) -> ``PaperAccount`` (sorted by name) -> ``PaperOrder`` ->
``PaperSequence``, so placement, cancels, expiry and the matcher queue
instead of deadlocking.

Change numbers: every change to an order takes the next ``change_seq`` of its
account under that account's lock and stamps it on the order. Changes of one
account therefore commit in the order of their numbers, and a reader that
saw the account's ``change_seq`` at S and then reads the orders numbered up
to S misses none of them: that is the cursor of ``PaperBroker.query_changes``.
"""

from __future__ import annotations

from decimal import Decimal

from django.db import models
from django.db.models import Q

from brokers.interface import BrokerOrderStatus
from trading.market_rules import OrderType, Side
from trading.models import money_field, price_field
from trading.money import ROUND_HALF_EVEN, ZERO, to_price_places

STATUS_LABELS = {
    BrokerOrderStatus.OPEN: "已报",
    BrokerOrderStatus.PARTIALLY_FILLED: "部分成交",
    BrokerOrderStatus.FILLED: "全部成交",
    BrokerOrderStatus.CANCELLED: "已撤",
    BrokerOrderStatus.REJECTED: "废单",
    BrokerOrderStatus.EXPIRED: "已过期",
}
STATUS_CHOICES = [(status.value, STATUS_LABELS[status]) for status in BrokerOrderStatus]
OPEN_STATUSES = (BrokerOrderStatus.OPEN.value, BrokerOrderStatus.PARTIALLY_FILLED.value)


class PaperAccount(models.Model):
    """A cash account at the paper broker. ``frozen`` is held by open buy orders."""

    account_name = models.CharField("资金账号", max_length=64, unique=True)
    cash = money_field("资金余额", default=ZERO)
    frozen = money_field("冻结资金", default=ZERO)
    # The number of the account's latest order change (see the module docstring).
    change_seq = models.BigIntegerField("变更序号", default=0)
    created_at = models.DateTimeField("开户时间", auto_now_add=True)
    updated_at = models.DateTimeField("更新时间", auto_now=True)

    class Meta:
        verbose_name = "模拟资金账户"
        verbose_name_plural = "模拟资金账户"
        ordering = ["account_name"]
        constraints = [
            models.CheckConstraint(condition=Q(frozen__gte=0), name="paperaccount_frozen_non_negative"),
        ]

    def __str__(self) -> str:
        return self.account_name

    @property
    def available(self) -> Decimal:
        return self.cash - self.frozen


class PaperPosition(models.Model):
    """Shares of one symbol held at the paper broker.

    ``bought_today`` counts shares bought on ``bought_day`` (T+1: not sellable
    that day unless the instrument is T+0); ``frozen_quantity`` is held by open
    sell orders.
    """

    account_name = models.CharField("资金账号", max_length=64)
    symbol = models.CharField("证券代码", max_length=16)
    quantity = models.BigIntegerField("持仓", default=0)
    frozen_quantity = models.BigIntegerField("冻结", default=0)
    bought_today = models.BigIntegerField("今日买入", default=0)
    bought_day = models.DateField("买入日", null=True, blank=True)
    cost_amount = money_field("持仓成本", default=ZERO)
    updated_at = models.DateTimeField("更新时间", auto_now=True)

    class Meta:
        verbose_name = "模拟持仓"
        verbose_name_plural = "模拟持仓"
        ordering = ["account_name", "symbol"]
        constraints = [
            models.UniqueConstraint(fields=["account_name", "symbol"], name="paperposition_account_symbol_unique"),
            models.CheckConstraint(condition=Q(quantity__gte=0), name="paperposition_quantity_non_negative"),
            models.CheckConstraint(condition=Q(frozen_quantity__gte=0), name="paperposition_frozen_non_negative"),
            models.CheckConstraint(
                condition=Q(frozen_quantity__lte=models.F("quantity")), name="paperposition_frozen_within_quantity"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.account_name} {self.symbol} {self.quantity}"


class PaperOrder(models.Model):
    """One order at the paper broker (委托), including refused ones (废单, status REJECTED).

    ``frozen_amount`` is the cash a buy still holds; a sell holds its unfilled
    quantity in the position's ``frozen_quantity``. ``cage_held``: a limit
    order outside the price cage that the broker holds without matching
    (broker setting ``cage_mode: hold``) until a quote puts it inside.
    """

    broker_order_id = models.CharField("委托编号", max_length=32, unique=True)
    account_name = models.CharField("资金账号", max_length=64)
    client_ref = models.CharField("客户端委托号", max_length=64, blank=True)
    symbol = models.CharField("证券代码", max_length=32)
    side = models.CharField("方向", max_length=4, choices=Side.choices)
    order_type = models.CharField("类型", max_length=8, choices=OrderType.choices)
    price = price_field("委托价", null=True, blank=True)
    protection_price = price_field("保护价", null=True, blank=True)
    quantity = models.BigIntegerField("委托数量")
    filled_quantity = models.BigIntegerField("成交数量", default=0)
    filled_amount = money_field("成交金额", default=ZERO)
    commission_charged = money_field("已收佣金", default=ZERO)
    frozen_amount = money_field("冻结资金", default=ZERO)
    cage_held = models.BooleanField("笼子外暂存", default=False)
    status = models.CharField("状态", max_length=20, choices=STATUS_CHOICES, default=BrokerOrderStatus.OPEN.value)
    message = models.CharField("说明", max_length=255, blank=True)
    trading_day = models.DateField("交易日")
    created_at = models.DateTimeField("委托时间")  # when the broker received it
    updated_at = models.DateTimeField("更新时间")
    change_seq = models.BigIntegerField("变更序号", default=0)  # the account's change number of its last change

    class Meta:
        verbose_name = "模拟委托"
        verbose_name_plural = "模拟委托"
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gte=0), name="paperorder_quantity_non_negative"),
            models.CheckConstraint(condition=Q(filled_quantity__gte=0), name="paperorder_filled_non_negative"),
            models.CheckConstraint(
                condition=Q(filled_quantity__lte=models.F("quantity")), name="paperorder_not_overfilled"
            ),
            models.CheckConstraint(condition=Q(frozen_amount__gte=0), name="paperorder_frozen_non_negative"),
        ]
        indexes = [
            # The matcher: the resting orders of a symbol that a quote's price reaches (a range
            # on price), and those held outside the cage; never every resting order of the symbol.
            models.Index(fields=["symbol", "cage_held", "side", "status", "price"], name="paperorder_book_idx"),
            # query_orders / expiry (a range on trading_day) of one account.
            models.Index(fields=["account_name", "status", "trading_day"], name="paperorder_account_open_idx"),
            # query_changes: what changed after a cursor.
            models.Index(fields=["account_name", "change_seq"], name="paperorder_account_change_idx"),
            models.Index(fields=["account_name", "trading_day"], name="paperorder_account_day_idx"),
            models.Index(fields=["account_name", "updated_at"], name="paperorder_account_updated_idx"),
            # Reconciliation after a lost answer finds the order by our reference.
            models.Index(fields=["account_name", "client_ref"], name="paperorder_account_ref_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.broker_order_id} {self.side} {self.quantity} {self.symbol} {self.status}"

    @property
    def remaining_quantity(self) -> int:
        return self.quantity - self.filled_quantity

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def avg_fill_price(self) -> Decimal | None:
        if not self.filled_quantity:
            return None
        return to_price_places(self.filled_amount / self.filled_quantity, ROUND_HALF_EVEN)


class PaperTrade(models.Model):
    """One execution (成交) of a paper order, with its fees."""

    broker_trade_id = models.CharField("成交编号", max_length=32, unique=True)
    order = models.ForeignKey(PaperOrder, on_delete=models.PROTECT, related_name="trades", verbose_name="委托")
    price = price_field("成交价")
    quantity = models.BigIntegerField("成交数量")
    amount = money_field("成交金额")
    commission = money_field("佣金", default=ZERO)
    stamp_duty = money_field("印花税", default=ZERO)
    transfer_fee = money_field("过户费", default=ZERO)
    other_fees = money_field("其他费用", default=ZERO)
    filled_at = models.DateTimeField("成交时间")
    trading_day = models.DateField("交易日", db_index=True)

    class Meta:
        verbose_name = "模拟成交"
        verbose_name_plural = "模拟成交"
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gt=0), name="papertrade_quantity_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.broker_trade_id} {self.quantity}@{self.price}"

    @property
    def fees(self) -> Decimal:
        return self.commission + self.stamp_duty + self.transfer_fee + self.other_fees


class PaperSequence(models.Model):
    """Per-day counter for order and trade numbers (``P-20261123-000017``).

    Incremented under its row lock, so concurrent workers never hand out the
    same number; taken last in the lock order (after the account).
    """

    kind = models.CharField(max_length=8)  # "order" | "trade"
    day = models.DateField()
    last = models.BigIntegerField(default=0)

    class Meta:
        verbose_name = "模拟编号序列"
        verbose_name_plural = "模拟编号序列"
        constraints = [models.UniqueConstraint(fields=["kind", "day"], name="papersequence_kind_day_unique")]

    def __str__(self) -> str:
        return f"{self.kind} {self.day}: {self.last}"


class LinkState(models.TextChoices):
    UP = "UP", "已连接"
    DOWN = "DOWN", "已断开"


class BrokerLink(models.Model):
    """The last known state of an account's connection to its broker (brokers/connection.py).

    Written when the state changes, not on every call: each process keeps its own circuit
    breaker and records here what it saw, for operators (admin, health) and for the other
    processes (a breaker that is open looks here for a reconnect seen elsewhere).
    """

    account = models.OneToOneField("trading.Account", on_delete=models.CASCADE, related_name="broker_link",
                                   verbose_name="账户")
    state = models.CharField("连接状态", max_length=8, choices=LinkState.choices, default=LinkState.UP)
    failures = models.PositiveIntegerField("连续失败次数", default=0)
    last_error = models.CharField("最近错误", max_length=500, blank=True, default="")
    changed_at = models.DateTimeField("状态变化时间", null=True, blank=True)
    last_ok_at = models.DateTimeField("最近成功时间", null=True, blank=True)
    next_attempt_at = models.DateTimeField("下次重连时间", null=True, blank=True)

    class Meta:
        verbose_name = "券商连接"
        verbose_name_plural = "券商连接"

    def __str__(self) -> str:
        return f"{self.account_id}: {self.state}"
