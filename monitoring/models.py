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


class Level(models.TextChoices):
    CRITICAL = "CRITICAL", "严重 (critical)"
    WARNING = "WARNING", "警告 (warning)"
    INFO = "INFO", "提示 (info)"


LEVEL_RANK = {Level.INFO: 0, Level.WARNING: 1, Level.CRITICAL: 2}


class AlertStatus(models.TextChoices):
    OPEN = "OPEN", "未处理 (open)"
    ACKNOWLEDGED = "ACKNOWLEDGED", "已确认 (acknowledged)"
    RESOLVED = "RESOLVED", "已解决 (resolved)"


class Alert(models.Model):
    code = models.CharField("告警代码 (code)", max_length=64, db_index=True)
    event_kind = models.CharField("来源事件 (source event)", max_length=32, blank=True)
    account = models.CharField("账户 (account)", max_length=64, blank=True, db_index=True)
    level = models.CharField("级别 (level)", max_length=8, choices=Level.choices)
    title = models.CharField("标题 (title)", max_length=255)
    detail = models.TextField("详情 (detail)", blank=True)
    data = models.JSONField("数据 (data)", default=dict, blank=True)
    dedup_key = models.CharField("去重键 (dedup key)", max_length=255)
    status = models.CharField("状态 (status)", max_length=16, choices=AlertStatus.choices, default=AlertStatus.OPEN)
    occurrences = models.PositiveIntegerField("次数 (occurrences)", default=1)
    first_seen_at = models.DateTimeField("首次 (first seen)")
    last_seen_at = models.DateTimeField("最近 (last seen)")
    last_notified_at = models.DateTimeField("最近通知 (last notified)", null=True, blank=True)
    acknowledged_by = models.CharField("确认人 (acknowledged by)", max_length=150, blank=True)
    acknowledged_at = models.DateTimeField("确认时间 (acknowledged at)", null=True, blank=True)
    resolved_by = models.CharField("解决人 (resolved by)", max_length=150, blank=True)
    resolved_at = models.DateTimeField("解决时间 (resolved at)", null=True, blank=True)
    escalations = models.PositiveIntegerField("已升级次数 (escalations)", default=0)
    next_escalation_at = models.DateTimeField("下次升级 (next escalation)", null=True, blank=True, db_index=True)

    class Meta:
        verbose_name = "告警 (alert)"
        verbose_name_plural = "告警 (alerts)"
        ordering = ["-last_seen_at"]
        permissions = [("acknowledge_alert", "确认/解决告警 (acknowledge and resolve alerts)")]
        constraints = [
            models.UniqueConstraint(fields=["dedup_key"], condition=~Q(status="RESOLVED"), name="alert_one_open_per_key"),
        ]
        indexes = [models.Index(fields=["status", "level"], name="alert_status_level")]

    def __str__(self) -> str:
        return f"[{self.level}] {self.title}"


class Channel(models.Model):
    """A notification channel: a plug-in (``kind``) with its settings and encrypted secrets."""

    name = models.CharField("名称 (name)", max_length=64, unique=True)
    kind = models.CharField("类型 (kind)", max_length=32)
    enabled = models.BooleanField("启用 (enabled)", default=True)
    options = models.JSONField("设置 (options)", default=dict, blank=True,
                               help_text="不含密钥的设置 (settings without secrets): url, sender, provider ...")
    secrets = EncryptedJSONField("密钥(加密) (secrets, encrypted)", blank=True, default=dict)
    rate_per_minute = models.PositiveIntegerField("每分钟上限 (messages a minute)", default=0,
                                                  help_text="0: 该类型的默认值 (the kind's default)")
    max_attempts = models.PositiveIntegerField("最多尝试 (attempts)", default=5)
    paused_until = models.DateTimeField("限流至 (throttled until)", null=True, blank=True)
    fallback = models.ForeignKey("self", models.SET_NULL, null=True, blank=True, related_name="+",
                                 verbose_name="失败时改用 (fallback channel)")

    class Meta:
        verbose_name = "通知渠道 (channel)"
        verbose_name_plural = "通知渠道 (channels)"
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.kind})"


class RoutingRule(models.Model):
    """Alerts at ``min_level`` or above, of the listed codes and accounts, go to ``channels``."""

    name = models.CharField("名称 (name)", max_length=64, unique=True)
    enabled = models.BooleanField("启用 (enabled)", default=True)
    min_level = models.CharField("最低级别 (minimum level)", max_length=8, choices=Level.choices, default=Level.WARNING)
    codes = models.CharField("告警代码 (codes)", max_length=500, blank=True,
                             help_text="逗号分隔的代码或前缀(如 broker.*); 空为全部 (comma-separated codes or prefixes; empty: all)")
    accounts = models.CharField("账户 (accounts)", max_length=500, blank=True, help_text="逗号分隔; 空为全部 (empty: all)")
    channels = models.ManyToManyField(Channel, related_name="rules", verbose_name="渠道 (channels)")
    recipients = models.CharField("接收人 (recipients)", max_length=1000, blank=True,
                                  help_text="逗号分隔: 邮箱/手机号/@手机号 (comma-separated: emails, phone numbers)")
    group_seconds = models.PositiveIntegerField("合并窗口秒 (grouping window, s)", default=0,
                                                help_text="在此窗口内的告警合并为一条 (alerts within it go out as one)")
    renotify_seconds = models.PositiveIntegerField("重复通知间隔秒 (repeat after, s)", default=600,
                                                   help_text="同一未解决告警再次发生时, 超过此间隔才再次通知")
    escalate_after_seconds = models.PositiveIntegerField("升级等待秒 (escalate after, s)", default=0,
                                                         help_text="严重告警未确认多久后升级; 0 不升级 (0: never)")
    max_escalations = models.PositiveIntegerField("最多升级次数 (escalations)", default=3)
    escalation_channels = models.ManyToManyField(Channel, related_name="escalation_rules", blank=True,
                                                 verbose_name="升级渠道 (escalation channels)")
    escalation_recipients = models.CharField("升级接收人 (escalation recipients)", max_length=1000, blank=True)

    class Meta:
        verbose_name = "告警路由 (routing rule)"
        verbose_name_plural = "告警路由 (routing rules)"
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class DeliveryStatus(models.TextChoices):
    PENDING = "PENDING", "待发送 (pending)"
    SENDING = "SENDING", "发送中 (sending)"
    SENT = "SENT", "已发送 (sent)"
    MERGED = "MERGED", "已合并 (merged into a digest)"
    CANCELLED = "CANCELLED", "已取消 (cancelled: acknowledged)"
    FAILED = "FAILED", "失败 (failed)"


class DeliveryKind(models.TextChoices):
    ALERT = "ALERT", "告警 (alert)"
    DIGEST = "DIGEST", "汇总 (digest)"
    ESCALATION = "ESCALATION", "升级 (escalation)"
    FALLBACK = "FALLBACK", "渠道失败转发 (fallback)"


class Delivery(models.Model):
    channel = models.ForeignKey(Channel, models.PROTECT, related_name="deliveries", verbose_name="渠道 (channel)")
    kind = models.CharField("类型 (kind)", max_length=16, choices=DeliveryKind.choices, default=DeliveryKind.ALERT)
    alerts = models.ManyToManyField(Alert, related_name="deliveries", blank=True, verbose_name="告警 (alerts)")
    recipients = models.CharField("接收人 (recipients)", max_length=1000, blank=True)
    level = models.CharField("级别 (level)", max_length=8, choices=Level.choices)
    subject = models.CharField("主题 (subject)", max_length=255)
    body = models.TextField("内容 (body)")
    status = models.CharField("状态 (status)", max_length=16, choices=DeliveryStatus.choices,
                              default=DeliveryStatus.PENDING)
    attempts = models.PositiveIntegerField("尝试次数 (attempts)", default=0)
    due_at = models.DateTimeField("下次发送 (due at)", db_index=True)
    claimed_until = models.DateTimeField("占用至 (claimed until)", null=True, blank=True)
    last_error = models.TextField("最近错误 (last error)", blank=True)
    created_at = models.DateTimeField("创建 (created)")
    sent_at = models.DateTimeField("发送时间 (sent at)", null=True, blank=True)
    merged_into = models.ForeignKey("self", models.SET_NULL, null=True, blank=True, related_name="merged",
                                    verbose_name="合并至 (merged into)")
    key = models.CharField("去重键 (dedup key)", max_length=255, unique=True, null=True, blank=True)

    class Meta:
        verbose_name = "发送记录 (delivery)"
        verbose_name_plural = "发送记录 (deliveries)"
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["channel", "status", "due_at"], name="delivery_channel_due")]

    def __str__(self) -> str:
        return f"{self.channel.name}: {self.subject}"


class DeliveryAttempt(models.Model):
    """One call to a channel. Rate limits count these (a digest is one call)."""

    delivery = models.ForeignKey(Delivery, models.CASCADE, related_name="attempt_rows")
    channel = models.ForeignKey(Channel, models.CASCADE, related_name="+")
    started_at = models.DateTimeField("开始 (started)", db_index=True)
    finished_at = models.DateTimeField("结束 (finished)", null=True, blank=True)
    ok = models.BooleanField("成功 (ok)", null=True)
    error = models.TextField("错误 (error)", blank=True)

    class Meta:
        verbose_name = "发送尝试 (attempt)"
        verbose_name_plural = "发送尝试 (attempts)"
        ordering = ["started_at"]
        indexes = [models.Index(fields=["channel", "started_at"], name="attempt_channel_started")]

    def __str__(self) -> str:
        return f"{self.delivery_id} @ {self.started_at:%H:%M:%S}"


class MonitorSetting(models.Model):
    """An operator's setting of one monitor (its code); monitors without a row use the defaults."""

    code = models.CharField("监控代码 (monitor)", max_length=64, unique=True)
    enabled = models.BooleanField("启用 (enabled)", default=True)
    level = models.CharField("级别 (level)", max_length=8, choices=Level.choices)
    threshold = models.DecimalField("阈值 (threshold)", max_digits=20, decimal_places=4, null=True, blank=True)
    window_seconds = models.PositiveIntegerField("窗口秒 (window, s)", null=True, blank=True)

    class Meta:
        verbose_name = "监控设置 (monitor setting)"
        verbose_name_plural = "监控设置 (monitor settings)"
        ordering = ["code"]

    def __str__(self) -> str:
        return self.code


class Heartbeat(models.Model):
    """The last beat of a periodic process: ``worker`` (a Celery beat task run by a worker) or
    ``scheduler`` (the embedded scheduler)."""

    name = models.CharField("进程 (process)", max_length=64, unique=True)
    at = models.DateTimeField("最近心跳 (last beat)")
    detail = models.CharField("详情 (detail)", max_length=255, blank=True)

    class Meta:
        verbose_name = "心跳 (heartbeat)"
        verbose_name_plural = "心跳 (heartbeats)"

    def __str__(self) -> str:
        return self.name
