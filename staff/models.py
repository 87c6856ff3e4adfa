"""An operator's own settings. Roles are Django groups (staff/roles.py)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class StaffProfile(models.Model):
    """Per-user preferences of a staff member: for now the admin's language."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="staff_profile",
                                verbose_name=_("user"))
    language = models.CharField(_("language"), max_length=10, choices=settings.LANGUAGES, blank=True,
                                help_text=_("Empty: the site default (Simplified Chinese)."))
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)
    # The risk disclosure the staff member acknowledged before first use of the admin (staff.views).
    disclosure_version = models.CharField(_("risk disclosure acknowledged"), max_length=16, blank=True)
    disclosure_acknowledged_at = models.DateTimeField(_("risk disclosure acknowledged at"), null=True, blank=True)

    class Meta:
        verbose_name = _("staff profile")
        verbose_name_plural = _("staff profiles")

    def __str__(self) -> str:
        return f"{self.user} ({self.language or '-'})"
