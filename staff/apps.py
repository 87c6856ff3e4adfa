"""The operators' side of the back office: roles, two-factor login, lockout, language."""

from __future__ import annotations

from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


class StaffConfig(AppConfig):
    default = True
    name = "staff"
    verbose_name = _("Operators and security")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from staff import audit_signals, checks, i18n, roles, totp

        checks.register()
        audit_signals.connect()
        totp.encrypt_keys_at_rest()
        i18n.translate_model_labels()
        post_migrate.connect(roles.roles_sync_after_migrate, dispatch_uid="staff.roles_sync")


class StaffAdminConfig(admin_apps.AdminConfig):
    """django.contrib.admin with the back office's own site (OTP login, queue badge, language switch)."""

    default = False
    default_site = "staff.sites.TradingAdminSite"
