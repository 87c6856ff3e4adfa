"""The audit log: one row per change to an order, an account's money or a setting."""

from __future__ import annotations

from django.db import models


class ActorType(models.TextChoices):
    SYSTEM = "system", "系统"
    USER = "user", "操作员"
    API_KEY = "api_key", "API客户端"
    BROKER = "broker", "券商"


class AuditEvent(models.Model):
    """Who or what did which change to which object, with the state before and after.

    Rows are only ever inserted; nothing updates or deletes them.
    """

    occurred_at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor_type = models.CharField(max_length=10, choices=ActorType.choices, default=ActorType.SYSTEM)
    actor = models.CharField(max_length=128, blank=True)
    action = models.CharField(max_length=64, db_index=True)
    object_type = models.CharField(max_length=32)
    object_id = models.CharField(max_length=64)
    account = models.CharField(max_length=64, blank=True, db_index=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    reason = models.TextField(blank=True)

    class Meta:
        verbose_name = "审计事件"
        verbose_name_plural = "审计事件"
        ordering = ["id"]
        indexes = [models.Index(fields=["object_type", "object_id"], name="audit_object_idx")]

    def __str__(self) -> str:
        return f"{self.occurred_at:%Y-%m-%d %H:%M:%S} {self.action} {self.object_type}#{self.object_id}"
