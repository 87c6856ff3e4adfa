"""Who must give a one-time password, and whether a request has given one."""

from __future__ import annotations

from typing import Any

from django.conf import settings


def two_factor_required(user: Any) -> bool:
    """True unless 2FA is off, or this is the demo admin while DEMO_MODE is on."""
    if not getattr(settings, "STAFF_REQUIRE_2FA", True):
        return False
    exempt = getattr(settings, "STAFF_2FA_EXEMPT_USERNAMES", ()) if getattr(settings, "DEMO_MODE", False) else ()
    return getattr(user, "username", None) not in exempt


def is_verified(request: Any) -> bool:
    """The request's user passed the second factor this session (or needs none)."""
    user = request.user
    if not two_factor_required(user):
        return True
    verified = getattr(user, "is_verified", None)
    return bool(verified and verified())
