"""The compliance pages' admin entry: a proxy of the audit log (no table of its own)."""

from __future__ import annotations

from audit.models import AuditEvent


class ComplianceLog(AuditEvent):
    """The audit log as compliance staff search it (compliance/admin.py)."""

    class Meta:
        proxy = True
        verbose_name = "合规查询"
        verbose_name_plural = "合规查询"
        default_permissions = ("view",)
