"""System checks for deployment: two-factor login and demo mode must be off-limits in production."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import checks


def two_factor_deploy_check(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    problems: list[checks.CheckMessage] = []
    if not getattr(settings, "STAFF_REQUIRE_2FA", True):
        problems.append(checks.Warning("STAFF_REQUIRE_2FA is off: staff log in without a one-time password.",
                                       hint="Unset STAFF_REQUIRE_2FA in production.", id="staff.W001"))
    if getattr(settings, "DEMO_MODE", False):
        problems.append(checks.Warning("DEMO_MODE is on: the demo admin logs in without a one-time password.",
                                       hint="DEMO_MODE is for `make run` on a workstation only.", id="staff.W002"))
    if not getattr(settings, "AXES_ENABLED", False) or "axes" not in settings.INSTALLED_APPS:
        problems.append(checks.Warning("Login lockout (django-axes) is disabled.", id="staff.W003"))
    return problems


def register() -> None:
    checks.register(two_factor_deploy_check, checks.Tags.security, deploy=True)
