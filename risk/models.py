"""Risk control: configured rules, restricted symbols, risk events, live counters, the global switch.

Running totals behind the capital and frequency rules live in ``RiskCounter``
rows, one per (account, trading day) plus one per (account, trading day,
symbol). Every write to them happens while the writer holds the account row
lock (``trading.services.account_lock``), the same lock the order path takes
before risk control, so concurrent orders of one account see and update them
one after another and can never jointly break a limit.
"""

from __future__ import annotations

from decimal import Decimal

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext
from simple_history.models import HistoricalRecords

from orders.models import Order
from risk.verdicts import RiskAction
from trading.i18n import bilingual_lazy
from trading.models import Account, TradingState, money_field


class RiskRule(models.Model):
    """One rule enabled (or disabled) globally or for one account, with its parameters and action.

    Precedence: a row for an account replaces the global row of the same code
    for that account (including ``enabled=False``, which switches a global rule
    off for one account). Parameters are validated by the rule's parameter model
    when saved through ``risk.services.risk_rule_save`` (and the admin form).
    """

    code = models.CharField("规则", max_length=64, db_index=True)
    account = models.ForeignKey(
        Account, verbose_name="账户", null=True, blank=True, on_delete=models.CASCADE, related_name="risk_rules",
        help_text="留空 = 全局规则",
    )
    enabled = models.BooleanField("启用", default=True)
    action = models.CharField("动作", max_length=8, choices=RiskAction.choices, default=RiskAction.REJECT)
    params = models.JSONField("参数", default=dict, blank=True)
    note = models.CharField("备注", max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    history = HistoricalRecords()

    class Meta:
        verbose_name = "风控规则"
        verbose_name_plural = "风控规则"
        ordering = ["code", "account_id"]
        constraints = [
            models.UniqueConstraint(fields=["code", "account"], name="risk_rule_code_account_unique"),
            models.UniqueConstraint(fields=["code"], condition=Q(account__isnull=True), name="risk_rule_code_global_unique"),
        ]

    def __str__(self) -> str:
        scope = self.account.name if self.account_id and self.account else gettext("global")
        disabled = "" if self.enabled else " ({})".format(gettext("disabled"))
        return f"{self.code} [{scope}] {self.action}{disabled}"

    def clean(self) -> None:
        from risk.rules import validate_rule_config

        validate_rule_config(self.code, self.params)


class RestrictedSide(models.TextChoices):
    BOTH = "BOTH", "买卖均禁止"
    BUY = "BUY", "禁止买入"
    SELL = "SELL", "禁止卖出"


class RestrictedSymbol(models.Model):
    """A symbol one account (or everyone) may not trade, e.g. an insider list, with validity dates."""

    instrument = models.ForeignKey("trading.Instrument", verbose_name="证券", on_delete=models.CASCADE, related_name="restrictions")
    account = models.ForeignKey(
        Account, verbose_name="账户", null=True, blank=True, on_delete=models.CASCADE, related_name="restrictions",
        help_text="留空 = 所有账户",
    )
    side = models.CharField("限制方向", max_length=4, choices=RestrictedSide.choices, default=RestrictedSide.BOTH)
    reason = models.CharField("原因", max_length=255)
    valid_from = models.DateField("生效日", null=True, blank=True, help_text="留空 = 立即生效")
    valid_to = models.DateField("失效日(含)", null=True, blank=True, help_text="留空 = 长期有效")
    created_by = models.CharField("录入人", max_length=128, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    history = HistoricalRecords()

    class Meta:
        verbose_name = "禁止交易证券"
        verbose_name_plural = "禁止交易证券"
        ordering = ["instrument_id", "account_id"]

    def __str__(self) -> str:
        scope = self.account.name if self.account_id and self.account else gettext("all accounts")
        return f"{self.instrument} [{scope}] {self.reason}"


class RiskLevel(models.TextChoices):
    INFO = "info", "提示"
    WARNING = "warning", "警告"
    ERROR = "error", "拒绝"
    CRITICAL = "critical", "严重"


class RiskEvent(models.Model):
    """A failing verdict or a protection that fired: what was compared, for which order and account.

    Written in the transaction of the order (or fill) that caused it; the
    alerting app will read these rows.
    """

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    trading_day = models.DateField("交易日", null=True, blank=True)
    rule = models.CharField("规则", max_length=64, db_index=True)
    level = models.CharField("级别", max_length=8, choices=RiskLevel.choices, default=RiskLevel.WARNING)
    action = models.CharField("动作", max_length=16, blank=True)
    account = models.ForeignKey(Account, verbose_name="账户", null=True, blank=True, on_delete=models.SET_NULL, related_name="risk_events")
    order = models.ForeignKey(Order, verbose_name="委托", null=True, blank=True, on_delete=models.SET_NULL, related_name="risk_events")
    message = models.TextField("说明", blank=True)
    values = models.JSONField("比较值", default=dict, blank=True)

    class Meta:
        verbose_name = "风控事件"
        verbose_name_plural = "风控事件"
        ordering = ["-id"]
        indexes = [models.Index(fields=["account", "created_at"], name="risk_event_account_idx")]

    def __str__(self) -> str:
        return f"{self.rule} {self.level} {self.message[:60]}"


class RiskCounter(models.Model):
    """Live running totals of one account for one trading day (``key`` ""), or of one of its
    symbols that day (``key`` = symbol). Read and written only under the account lock.

    What is counted (see ``risk.services``): ``orders`` and ``amount`` are orders
    admitted by risk control (passed, warned or held for review); an order that
    later ends REJECTED (operator, re-check on approval, broker) or EXPIRED in
    review gives its amount back; cancelled orders stay counted. ``cancels``
    counts every cancel accepted by ``order_cancel``. ``second``/``second_count``
    is a fixed one-second window of orders plus cancels (account row only).
    ``open_buy_quantity``/``open_buy_amount`` (symbol rows) are the day's open buy
    orders in the symbol: added to when a buy is admitted, recomputed from the
    orders whenever a fill or the end of one of them is recorded, so a check
    reads them in O(symbols) instead of scanning every open order.
    """

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="risk_counters", db_index=False)
    trading_day = models.DateField("交易日")
    key = models.CharField("范围", max_length=16, blank=True, help_text="空 = 账户合计, 否则为证券代码")
    instrument = models.ForeignKey("trading.Instrument", null=True, blank=True, on_delete=models.CASCADE, related_name="+",
                                   db_index=False)
    orders = models.IntegerField("委托笔数", default=0)
    amount = money_field("委托金额", default=Decimal("0"))
    rejected = models.IntegerField("风控拒绝笔数", default=0)
    cancels = models.IntegerField("撤单笔数", default=0)
    last_order_at = models.DateTimeField("最近委托时间", null=True, blank=True)
    second = models.BigIntegerField("当前秒", default=0)
    second_count = models.IntegerField("当前秒报撤笔数", default=0)
    # Symbol rows: open buy orders of that day in the symbol (shares still to buy, cash they hold).
    open_buy_quantity = models.BigIntegerField("未成交买入股数", default=0)
    open_buy_amount = money_field("买入冻结资金", default=Decimal("0"))
    start_assets = money_field("日初资产", null=True, blank=True)
    peak_assets = money_field("日内最高资产", null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "风控实时计数"
        verbose_name_plural = "风控实时计数"
        ordering = ["-trading_day", "account_id", "key"]
        constraints = [
            models.UniqueConstraint(fields=["account", "trading_day", "key"], name="risk_counter_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.account_id} {self.trading_day} {self.key or '*'}"


class RiskControl(models.Model):
    """The singleton (pk=1) holding the global trading state and a version bumped on every
    configuration change (rules, restricted symbols, state), which invalidates the
    process caches of ``risk.controller``."""

    SINGLETON_ID = 1

    trading_state = models.CharField("全局交易状态", max_length=16, choices=TradingState.choices, default=TradingState.ACTIVE)
    trading_state_reason = models.CharField("原因", max_length=255, blank=True)
    version = models.BigIntegerField(default=0)
    updated_by = models.CharField("操作人", max_length=128, blank=True)
    updated_at = models.DateTimeField(auto_now=True)
    history = HistoricalRecords()

    class Meta:
        verbose_name = "全局交易状态"
        verbose_name_plural = "全局交易状态"

    def __str__(self) -> str:
        scope = gettext("global")
        return f"{scope}: {self.get_trading_state_display()}"


class ReviewOrder(Order):
    """Unused proxy, kept because a migration created it: held orders are handled on the
    order desk (orders/admin.py)."""

    class Meta:
        proxy = True
        verbose_name = "风控审核委托"
        verbose_name_plural = "风控审核委托"
        permissions = [
            ("review_order", bilingual_lazy("approve or reject held orders")),
            ("override_order", bilingual_lazy("override a risk rejection")),
        ]


class AccountTradingState(Account):
    """Unused proxy, kept because a migration created it: an account's trading state is
    switched on its own admin page (trading/admin.py)."""

    class Meta:
        proxy = True
        verbose_name = "账户交易状态"
        verbose_name_plural = "账户交易状态"
        permissions = [("set_trading_state", bilingual_lazy("switch trading state"))]
