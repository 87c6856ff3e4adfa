"""Alerts, where they go, and every attempt to get them there.

* :class:`Alert`: one condition a monitor noticed (a broker link down, a rejection, a stale
  heartbeat). Repeats of the same condition (its ``dedup_key``) while it is open count on the
  same row; one open or acknowledged alert per key (a partial unique constraint).
* :class:`RoutingRule`: which alerts (level, code, account) go to which channels and recipients,
  the grouping window, and the escalation of an unacknowledged CRITICAL alert.
* :class:`Channel`: a configured notification channel (one plug-in of ``monitoring/channels/``
  by its ``kind``), its secrets encrypted at rest, its rate limit, its fallback.
* :class:`Delivery`: one message owed to one channel and its recipients; a row from the moment it
  is owed until it is sent or visibly failed, with its attempts (:class:`DeliveryAttempt`).
  Digests merge several deliveries into one message; the merged rows point to it.
* :class:`MonitorSetting`: a monitor's level and threshold as an operator set them in admin
  (defaults in settings.MONITORING_DEFAULTS).
* :class:`Heartbeat`: the last sign of life of a worker or scheduler.

The escalation state (``Alert.next_escalation_at``) and the delivery state live here, in the
database, so a worker restart loses neither.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from trading.crypto import EncryptedJSONField
from trading.i18n import bilingual_lazy


class Level(models.TextChoices):
    CRITICAL = "CRITICAL", "严重"
    WARNING = "WARNING", "警告"
    INFO = "INFO", "提示"


LEVEL_RANK = {Level.INFO: 0, Level.WARNING: 1, Level.CRITICAL: 2}


class AlertStatus(models.TextChoices):
    OPEN = "OPEN", "未处理"
    ACKNOWLEDGED = "ACKNOWLEDGED", "已确认"
    RESOLVED = "RESOLVED", "已解决"


class Alert(models.Model):
    code = models.CharField("告警代码", max_length=64, db_index=True)
    event_kind = models.CharField("来源事件", max_length=32, blank=True)
    account = models.CharField("账户", max_length=64, blank=True, db_index=True)
    level = models.CharField("级别", max_length=8, choices=Level.choices)
    title = models.CharField("标题", max_length=255)
    detail = models.TextField("详情", blank=True)
    data = models.JSONField("数据", default=dict, blank=True)
    dedup_key = models.CharField("去重键", max_length=255)
    status = models.CharField("状态", max_length=16, choices=AlertStatus.choices, default=AlertStatus.OPEN)
    occurrences = models.PositiveIntegerField("次数", default=1)
    first_seen_at = models.DateTimeField("首次")
    last_seen_at = models.DateTimeField("最近")
    last_notified_at = models.DateTimeField("最近通知", null=True, blank=True)
    acknowledged_by = models.CharField("确认人", max_length=150, blank=True)
    acknowledged_at = models.DateTimeField("确认时间", null=True, blank=True)
    resolved_by = models.CharField("解决人", max_length=150, blank=True)
    resolved_at = models.DateTimeField("解决时间", null=True, blank=True)
    escalations = models.PositiveIntegerField("已升级次数", default=0)
    next_escalation_at = models.DateTimeField("下次升级", null=True, blank=True, db_index=True)

    class Meta:
        verbose_name = "告警"
        verbose_name_plural = "告警"
        ordering = ["-last_seen_at"]
        permissions = [("acknowledge_alert", bilingual_lazy("acknowledge and resolve alerts"))]
        constraints = [
            models.UniqueConstraint(fields=["dedup_key"], condition=~Q(status="RESOLVED"), name="alert_one_open_per_key"),
        ]
        indexes = [models.Index(fields=["status", "level"], name="alert_status_level")]

    def __str__(self) -> str:
        return f"[{self.level}] {self.title}"


class Channel(models.Model):
    """A notification channel: a plug-in (``kind``) with its settings and encrypted secrets."""

    name = models.CharField("名称", max_length=64, unique=True)
    kind = models.CharField("类型", max_length=32)
    enabled = models.BooleanField("启用", default=True)
    options = models.JSONField("设置", default=dict, blank=True,
                               help_text="不含密钥的设置: url, sender, provider ...")
    secrets = EncryptedJSONField("密钥(加密)", blank=True, default=dict)
    rate_per_minute = models.PositiveIntegerField("每分钟上限", default=0,
                                                  help_text="0: 该类型的默认值")
    max_attempts = models.PositiveIntegerField("最多尝试", default=5)
    paused_until = models.DateTimeField("限流至", null=True, blank=True)
    fallback = models.ForeignKey("self", models.SET_NULL, null=True, blank=True, related_name="+",
                                 verbose_name="失败时改用")

    class Meta:
        verbose_name = "通知渠道"
        verbose_name_plural = "通知渠道"
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.kind})"


class RoutingRule(models.Model):
    """Alerts at ``min_level`` or above, of the listed codes and accounts, go to ``channels``."""

    name = models.CharField("名称", max_length=64, unique=True)
    enabled = models.BooleanField("启用", default=True)
    min_level = models.CharField("最低级别", max_length=8, choices=Level.choices, default=Level.WARNING)
    codes = models.CharField("告警代码", max_length=500, blank=True,
                             help_text="逗号分隔的代码或前缀(如 broker.*); 空为全部")
    accounts = models.CharField("账户", max_length=500, blank=True, help_text="逗号分隔; 空为全部")
    channels = models.ManyToManyField(Channel, related_name="rules", verbose_name="渠道")
    recipients = models.CharField("接收人", max_length=1000, blank=True,
                                  help_text="逗号分隔: 邮箱/手机号/@手机号")
    group_seconds = models.PositiveIntegerField("合并窗口秒", default=0,
                                                help_text="在此窗口内的告警合并为一条")
    renotify_seconds = models.PositiveIntegerField("重复通知间隔秒", default=600,
                                                   help_text="同一未解决告警再次发生时, 超过此间隔才再次通知")
    escalate_after_seconds = models.PositiveIntegerField("升级等待秒", default=0,
                                                         help_text="严重告警未确认多久后升级; 0 不升级")
    max_escalations = models.PositiveIntegerField("最多升级次数", default=3)
    escalation_channels = models.ManyToManyField(Channel, related_name="escalation_rules", blank=True,
                                                 verbose_name="升级渠道")
    escalation_recipients = models.CharField("升级接收人", max_length=1000, blank=True)

    class Meta:
        verbose_name = "告警路由"
        verbose_name_plural = "告警路由"
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class DeliveryStatus(models.TextChoices):
    PENDING = "PENDING", "待发送"
    SENDING = "SENDING", "发送中"
    SENT = "SENT", "已发送"
    MERGED = "MERGED", "已合并"
    CANCELLED = "CANCELLED", "已取消"
    FAILED = "FAILED", "失败"


class DeliveryKind(models.TextChoices):
    ALERT = "ALERT", "告警"
    DIGEST = "DIGEST", "汇总"
    ESCALATION = "ESCALATION", "升级"
    FALLBACK = "FALLBACK", "渠道失败转发"


class Delivery(models.Model):
    channel = models.ForeignKey(Channel, models.PROTECT, related_name="deliveries", verbose_name="渠道")
    kind = models.CharField("类型", max_length=16, choices=DeliveryKind.choices, default=DeliveryKind.ALERT)
    alerts = models.ManyToManyField(Alert, related_name="deliveries", blank=True, verbose_name="告警")
    recipients = models.CharField("接收人", max_length=1000, blank=True)
    level = models.CharField("级别", max_length=8, choices=Level.choices)
    subject = models.CharField("主题", max_length=255)
    body = models.TextField("内容")
    status = models.CharField("状态", max_length=16, choices=DeliveryStatus.choices,
                              default=DeliveryStatus.PENDING)
    attempts = models.PositiveIntegerField("尝试次数", default=0)
    due_at = models.DateTimeField("下次发送", db_index=True)
    claimed_until = models.DateTimeField("占用至", null=True, blank=True)
    last_error = models.TextField("最近错误", blank=True)
    created_at = models.DateTimeField("创建")
    sent_at = models.DateTimeField("发送时间", null=True, blank=True)
    merged_into = models.ForeignKey("self", models.SET_NULL, null=True, blank=True, related_name="merged",
                                    verbose_name="合并至")
    key = models.CharField("去重键", max_length=255, unique=True, null=True, blank=True)

    class Meta:
        verbose_name = "发送记录"
        verbose_name_plural = "发送记录"
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["channel", "status", "due_at"], name="delivery_channel_due")]

    def __str__(self) -> str:
        return f"{self.channel.name}: {self.subject}"


class DeliveryAttempt(models.Model):
    """One call to a channel. Rate limits count these (a digest is one call)."""

    delivery = models.ForeignKey(Delivery, models.CASCADE, related_name="attempt_rows", verbose_name="发送")
    channel = models.ForeignKey(Channel, models.CASCADE, related_name="+", verbose_name="通道")
    started_at = models.DateTimeField("开始", db_index=True)
    finished_at = models.DateTimeField("结束", null=True, blank=True)
    ok = models.BooleanField("成功", null=True)
    error = models.TextField("错误", blank=True)

    class Meta:
        verbose_name = "发送尝试"
        verbose_name_plural = "发送尝试"
        ordering = ["started_at"]
        indexes = [models.Index(fields=["channel", "started_at"], name="attempt_channel_started")]

    def __str__(self) -> str:
        return f"{self.delivery_id} @ {self.started_at:%H:%M:%S}"


class MonitorSetting(models.Model):
    """An operator's setting of one monitor (its code); monitors without a row use the defaults."""

    code = models.CharField("监控代码", max_length=64, unique=True)
    enabled = models.BooleanField("启用", default=True)
    level = models.CharField("级别", max_length=8, choices=Level.choices)
    threshold = models.DecimalField("阈值", max_digits=20, decimal_places=4, null=True, blank=True)
    window_seconds = models.PositiveIntegerField("窗口秒", null=True, blank=True)
    # How many events a ratio needs before it is judged (orders.fill_rate: orders today).
    min_count = models.PositiveIntegerField("最少笔数", null=True, blank=True)

    class Meta:
        verbose_name = "监控设置"
        verbose_name_plural = "监控设置"
        ordering = ["code"]

    def __str__(self) -> str:
        return self.code


class Heartbeat(models.Model):
    """The last beat of a periodic process: ``worker`` (a Celery beat task run by a worker) or
    ``scheduler`` (the embedded scheduler)."""

    name = models.CharField("进程", max_length=64, unique=True)
    at = models.DateTimeField("最近心跳")
    detail = models.CharField("详情", max_length=255, blank=True)

    class Meta:
        verbose_name = "心跳"
        verbose_name_plural = "心跳"

    def __str__(self) -> str:
        return self.name
