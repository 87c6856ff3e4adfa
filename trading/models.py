"""Core domain shared by every app: accounts, instruments, quotes, positions, cash ledger, API keys."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from django.db import models
from django.db.models import Q
from simple_history.models import HistoricalRecords

from trading.crypto import EncryptedJSONField
from trading.market_rules import Board, Exchange, FeeSchedule, format_symbol
from trading.money import ROUND_HALF_EVEN, to_price_places
from trading.suitability import RiskLevel, RiskTolerance


def money_field(verbose_name: str = "", **options: Any) -> models.DecimalField:
    """Money in CNY: 2 decimal places, set once here."""
    return models.DecimalField(verbose_name or None, max_digits=20, decimal_places=2, **options)


def price_field(verbose_name: str = "", **options: Any) -> models.DecimalField:
    """A price: 4 decimal places hold both stock (0.01) and fund (0.001) ticks."""
    return models.DecimalField(verbose_name or None, max_digits=16, decimal_places=4, **options)


class TradingState(models.TextChoices):
    ACTIVE = "ACTIVE", "正常交易"
    REDUCING = "REDUCING", "只减仓"
    HALTED = "HALTED", "暂停交易"


class SessionMode(models.TextChoices):
    ALWAYS = "always", "全天连续竞价(模拟)"
    REAL = "real", "真实交易日历与时段"


class Account(models.Model):
    """A trading account at one broker. Cash and frozen are caches of the ledger sums."""

    class Status(models.TextChoices):
        ACTIVE = "ACTIVE", "启用"
        DISABLED = "DISABLED", "停用"

    name = models.SlugField("账户名", max_length=64, unique=True)
    display_name = models.CharField("显示名", max_length=128, blank=True)
    broker_kind = models.CharField("券商接口", max_length=32, default="paper")
    broker_settings = EncryptedJSONField("券商配置(加密)", blank=True, default=dict)
    fee_schedule = models.JSONField("费率", default=dict, blank=True)
    session_mode = models.CharField("交易时段", max_length=8, choices=SessionMode.choices, default=SessionMode.ALWAYS)
    status = models.CharField("状态", max_length=16, choices=Status.choices, default=Status.ACTIVE)
    trading_state = models.CharField("交易状态", max_length=16, choices=TradingState.choices, default=TradingState.ACTIVE)
    trading_state_reason = models.CharField("交易状态原因", max_length=255, blank=True)
    control_group = models.CharField("实控组", max_length=64, blank=True)
    is_high_frequency = models.BooleanField("已报备高频", default=False)
    # Suitability (trading/suitability.py), read with the account lock so intake needs no query:
    # the permissions the broker granted ({code: "YYYY-MM-DD" granted}; main boards need none) and
    # the owner's current risk tolerance, cached from their newest RiskAssessment.
    owner = models.CharField("投资者(所有人)", max_length=128, blank=True, help_text="空 = 账户名")
    trading_permissions = models.JSONField("交易权限", default=dict, blank=True)
    risk_tolerance = models.CharField("风险承受能力", max_length=2, choices=RiskTolerance.choices, blank=True)
    risk_tolerance_expires_on = models.DateField("评估有效期至", null=True, blank=True)
    cash = money_field("资金余额", default=Decimal("0"))
    frozen = money_field("冻结资金", default=Decimal("0"))
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "资金账户"
        verbose_name_plural = "资金账户"
        constraints = [
            models.CheckConstraint(condition=Q(frozen__gte=0), name="account_frozen_non_negative"),
            models.CheckConstraint(condition=Q(cash__gte=models.F("frozen")), name="account_frozen_within_cash"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def owner_name(self) -> str:
        """Whose risk-tolerance assessment applies: ``owner``, else the account's name."""
        return self.owner or self.name

    @property
    def available(self) -> Decimal:
        return self.cash - self.frozen

    @property
    def fees(self) -> FeeSchedule:
        return FeeSchedule.from_dict(self.fee_schedule or {})


class Instrument(models.Model):
    """Reference data for one listed instrument, keyed by (exchange, code)."""

    exchange = models.CharField("交易所", max_length=2, choices=Exchange.choices)
    code = models.CharField("代码", max_length=6)
    name = models.CharField("名称", max_length=64)
    board = models.CharField("板块", max_length=20, choices=Board.choices)
    is_st = models.BooleanField("ST", default=False)
    listing_date = models.DateField("上市日期", null=True, blank=True)
    registration_listing = models.BooleanField("注册制上市", default=False)
    t0 = models.BooleanField("T+0", default=False)
    limit_pct = models.DecimalField("涨跌幅(覆盖)", max_digits=6, decimal_places=4, null=True, blank=True)
    industry = models.CharField("行业", max_length=64, blank=True)
    total_shares = models.BigIntegerField("总股本", default=0)
    is_active = models.BooleanField("可交易", default=True)
    delisting = models.BooleanField("退市整理期", default=False)
    risk_level = models.CharField("风险等级(覆盖)", max_length=2, choices=RiskLevel.choices, blank=True,
                                  help_text="空 = 按板块, ST 为 R5")

    class Meta:
        verbose_name = "证券"
        verbose_name_plural = "证券"
        constraints = [models.UniqueConstraint(fields=["exchange", "code"], name="instrument_exchange_code_unique")]
        ordering = ["exchange", "code"]

    def __str__(self) -> str:
        return f"{self.symbol} {self.name}"

    @property
    def symbol(self) -> str:
        return format_symbol(self.code, self.exchange)


class Quote(models.Model):
    """The latest quote of one instrument in the simulated (paper) market."""

    instrument = models.OneToOneField(Instrument, on_delete=models.CASCADE, related_name="quote")
    last = price_field(null=True, blank=True)
    prev_close = price_field(null=True, blank=True)
    bid = price_field(null=True, blank=True)
    ask = price_field(null=True, blank=True)
    bid_volume = models.BigIntegerField(default=0)
    ask_volume = models.BigIntegerField(default=0)
    trading_day = models.DateField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "行情"
        verbose_name_plural = "行情"

    def __str__(self) -> str:
        return f"{self.instrument_id} last {self.last}"


class Position(models.Model):
    """Shares of one instrument held by one account.

    ``unsettled_quantity`` counts shares bought on ``unsettled_day`` (T+1: not
    sellable that day); ``frozen_quantity`` counts shares held by open sells.
    """

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="positions")
    instrument = models.ForeignKey(Instrument, on_delete=models.PROTECT, related_name="positions")
    quantity = models.BigIntegerField("持仓", default=0)
    frozen_quantity = models.BigIntegerField("冻结", default=0)
    unsettled_quantity = models.BigIntegerField("今日买入", default=0)
    unsettled_day = models.DateField(null=True, blank=True)
    cost_amount = money_field("持仓成本", default=Decimal("0"))
    realized_pnl = money_field("已实现盈亏", default=Decimal("0"))
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "持仓"
        verbose_name_plural = "持仓"
        constraints = [
            models.UniqueConstraint(fields=["account", "instrument"], name="position_account_instrument_unique"),
            models.CheckConstraint(condition=Q(quantity__gte=0), name="position_quantity_non_negative"),
            models.CheckConstraint(condition=Q(frozen_quantity__gte=0), name="position_frozen_non_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.account_id}:{self.instrument_id} {self.quantity}"

    def sellable_quantity(self, today: date) -> int:
        unsettled = self.unsettled_quantity if self.unsettled_day == today else 0
        return max(self.quantity - self.frozen_quantity - unsettled, 0)

    @property
    def avg_cost(self) -> Decimal | None:
        if not self.quantity:
            return None
        return to_price_places(self.cost_amount / self.quantity, ROUND_HALF_EVEN)


class CashEntryKind(models.TextChoices):
    DEPOSIT = "DEPOSIT", "入金"
    WITHDRAW = "WITHDRAW", "出金"
    FREEZE = "FREEZE", "冻结"
    UNFREEZE = "UNFREEZE", "解冻"
    FILL = "FILL", "成交"
    FEE = "FEE", "费用"


# Kinds that move cash; the others move the frozen amount.
CASH_KINDS = (CashEntryKind.DEPOSIT, CashEntryKind.WITHDRAW, CashEntryKind.FILL, CashEntryKind.FEE)
FROZEN_KINDS = (CashEntryKind.FREEZE, CashEntryKind.UNFREEZE)


class CashLedgerEntry(models.Model):
    """One change of an account's cash or frozen cash. Append-only; sums give the balances."""

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="ledger")
    kind = models.CharField(max_length=10, choices=CashEntryKind.choices)
    amount = money_field()  # signed: what it adds to cash (or to frozen)
    cash_after = money_field()
    frozen_after = money_field()
    order = models.ForeignKey("orders.Order", null=True, blank=True, on_delete=models.PROTECT, related_name="ledger")
    fill = models.ForeignKey("orders.Fill", null=True, blank=True, on_delete=models.PROTECT, related_name="ledger")
    memo = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = "资金流水"
        verbose_name_plural = "资金流水"
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.kind} {self.amount}"


class ApiKey(models.Model):
    """A strategy's key to the REST API. Only a hash of the key is stored."""

    name = models.CharField("名称", max_length=64, unique=True)
    prefix = models.CharField(max_length=12, unique=True)
    key_hash = models.CharField(max_length=64)
    accounts = models.ManyToManyField(Account, related_name="api_keys", blank=True)
    can_trade = models.BooleanField("可交易", default=True)
    market_data = models.BooleanField("可发布行情", default=False)
    is_active = models.BooleanField("启用", default=True)
    # Above the exchanges' high-frequency line (300 orders+cancels a second), so a legal
    # strategy is never throttled, yet a runaway script is stopped.
    rate_limit_per_second = models.PositiveIntegerField("每秒请求上限", default=400, help_text="0 表示不限")
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    # The risk disclosure (风险揭示书) the key's owner acknowledged; until then the API answers 403
    # disclosure_required (trading/auth.py).
    disclosure_version = models.CharField("已确认风险揭示书版本", max_length=16, blank=True)
    disclosure_acknowledged_at = models.DateTimeField("风险揭示确认时间", null=True, blank=True)
    disclosure_acknowledged_by = models.CharField("风险揭示确认人", max_length=128, blank=True)
    history = HistoricalRecords()

    class Meta:
        verbose_name = "API密钥"
        verbose_name_plural = "API密钥"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"


class RiskAssessment(models.Model):
    """One risk-tolerance assessment (风险承受能力评估) of an account owner: the questionnaire's
    result, the level C1-C5, when it was made and until when it holds. Append-only; the newest
    of an owner is current and is cached on their accounts (``Account.risk_tolerance``)."""

    owner = models.CharField("投资者", max_length=128, db_index=True)
    level = models.CharField("风险承受能力", max_length=2, choices=RiskTolerance.choices)
    score = models.PositiveIntegerField("问卷得分", null=True, blank=True)
    questionnaire = models.JSONField("问卷结果", default=dict, blank=True)
    assessed_on = models.DateField("评估日期")
    expires_on = models.DateField("有效期至")
    recorded_by = models.CharField("录入人", max_length=128, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "风险承受能力评估"
        verbose_name_plural = "风险承受能力评估"
        ordering = ["-assessed_on", "-id"]
        constraints = [models.CheckConstraint(condition=Q(expires_on__gte=models.F("assessed_on")),
                                              name="risk_assessment_expires_after_assessed")]

    def __str__(self) -> str:
        return f"{self.owner} {self.level} ({self.assessed_on} - {self.expires_on})"
