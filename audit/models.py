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


class AuditSeal(models.Model):
    """One link of the audit chain (audit/sealing.py): the keyed digests of the events it seals,
    chained to the previous seal. Append-only, like the events (refused at the database level on
    PostgreSQL)."""

    seq = models.PositiveBigIntegerField(primary_key=True)
    sealed_at = models.DateTimeField()
    first_id = models.BigIntegerField()  # the lowest event id in ``entries``
    last_id = models.BigIntegerField(db_index=True)  # the highest
    count = models.PositiveIntegerField()
    entries = models.JSONField()  # [[event id, HMAC of the event], ...] in id order
    gaps = models.JSONField(default=list)  # ids skipped (not visible) when sealed: may still commit
    prev_chain = models.CharField(max_length=64)
    chain = models.CharField(max_length=64)  # HMAC(seq | prev_chain | SHA-256 of the entries)

    class Meta:
        verbose_name = "审计封印"
        verbose_name_plural = "审计封印"
        ordering = ["seq"]

    def __str__(self) -> str:
        return f"#{self.seq} {self.first_id}-{self.last_id} ({self.count})"


class AuditGap(models.Model):
    """An event id skipped by a seal: a transaction still open then (its event is sealed late, when
    it commits) or one rolled back (the gap closes after AUDIT_GAP_SECONDS)."""

    event_id = models.BigIntegerField(primary_key=True)
    seal_seq = models.PositiveBigIntegerField()
    seen_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"gap #{self.event_id} (seal #{self.seal_seq})"


class AuditCheckpoint(models.Model):
    """How far ``verify_audit`` has verified the chain: the next run starts after it."""

    seal_seq = models.PositiveBigIntegerField()
    chain = models.CharField(max_length=64)
    highest = models.BigIntegerField(default=0)  # the highest event id sealed through seal_seq
    pending = models.JSONField(default=list)  # ids inside sealed ranges not sealed yet (open gaps)
    events = models.PositiveBigIntegerField(default=0)
    verified_at = models.DateTimeField()

    class Meta:
        ordering = ["-seal_seq"]

    def __str__(self) -> str:
        return f"verified through seal #{self.seal_seq} at {self.verified_at:%Y-%m-%d %H:%M:%S}"
