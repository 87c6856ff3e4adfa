"""Writes of the operators' side: API keys as operators manage them, and staff preferences.

Each function is one transaction and writes its audit event in it.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import transaction

from audit.services import Actor, audit_record
from staff.models import StaffProfile
from trading.auth import api_key_create
from trading.errors import Conflict, InputRule, InvalidOrder, NotFound
from trading.i18n import bilingual
from trading.models import Account, ApiKey


def _scopes(key: ApiKey) -> dict[str, object]:
    return {
        "accounts": sorted(key.accounts.values_list("name", flat=True)),
        "can_trade": key.can_trade,
        "market_data": key.market_data,
        "rate_limit_per_second": key.rate_limit_per_second,
    }


@transaction.atomic
def api_key_issue(*, name: str, accounts: list[str], can_trade: bool, market_data: bool, rate_limit_per_second: int,
                  actor: Actor, disclosure_acknowledged_by: str = "") -> tuple[ApiKey, str]:
    """Create a key (trading.auth.api_key_create) with its rate limit; returns the row and the
    raw key, which the caller shows once and never stores. ``disclosure_acknowledged_by``: the
    owner acknowledged the risk disclosure with the operator (else through the API, before use)."""
    if ApiKey.objects.filter(name=name).exists():
        raise Conflict(bilingual("an API key named {name!r} exists", name=name))
    if rate_limit_per_second < 0:
        raise InvalidOrder.single("rate_limit_per_second", InputRule.NON_NEGATIVE, bilingual("must be >= 0"))
    key, raw = api_key_create(name=name, accounts=accounts, can_trade=can_trade, market_data=market_data, actor=actor,
                              disclosure_acknowledged_by=disclosure_acknowledged_by.strip())
    if rate_limit_per_second != key.rate_limit_per_second:
        key.rate_limit_per_second = rate_limit_per_second
        key.save(update_fields=["rate_limit_per_second"])
        audit_record(actor=actor, action="api_key.rate_limit_set", object_type="api_key", object_id=key.pk,
                     after={"rate_limit_per_second": rate_limit_per_second})
    return key, raw


@transaction.atomic
def api_key_update(*, key_id: int, accounts: list[str], can_trade: bool, market_data: bool,
                   rate_limit_per_second: int, actor: Actor) -> ApiKey:
    """Change what a key may do. Takes effect within the auth cache's few seconds."""
    key = ApiKey.objects.select_for_update().filter(pk=key_id).first()
    if key is None:
        raise NotFound(bilingual("API key {key_id} not found", key_id=key_id))
    found = list(Account.objects.filter(name__in=accounts))
    missing = sorted(set(accounts) - {a.name for a in found})
    if missing:
        raise NotFound(bilingual("unknown accounts", value=', '.join(missing)))
    before = _scopes(key)
    key.can_trade, key.market_data, key.rate_limit_per_second = can_trade, market_data, rate_limit_per_second
    key.save(update_fields=["can_trade", "market_data", "rate_limit_per_second"])
    key.accounts.set(found)
    after = _scopes(key)
    if after != before:
        audit_record(actor=actor, action="api_key.changed", object_type="api_key", object_id=key.pk, before=before,
                     after=after)
    return key


@transaction.atomic
def api_key_revoke(*, key_id: int, actor: Actor, reason: str = "") -> ApiKey:
    """Revoke a key for good: it stops authenticating within the auth cache's few seconds.
    The row stays, so its history and audit events keep their subject."""
    key = ApiKey.objects.select_for_update().filter(pk=key_id).first()
    if key is None:
        raise NotFound(bilingual("API key {key_id} not found", key_id=key_id))
    if not key.is_active:
        raise Conflict(bilingual("API key {name} is already revoked", name=key.name))
    key.is_active = False
    key.save(update_fields=["is_active"])
    audit_record(actor=actor, action="api_key.revoked", object_type="api_key", object_id=key.pk,
                 before={"is_active": True}, after={"is_active": False}, reason=reason)
    from trading import auth

    auth.api_key_forget(key.pk)
    return key


def staff_language_set(*, user: Any, language: str) -> StaffProfile:
    """Remember a staff member's admin language ('' = site default)."""
    supported = {code for code, _ in settings.LANGUAGES}
    if language and language not in supported:
        raise InvalidOrder.single("language", InputRule.CHOICE, bilingual("unsupported language {language!r}", language=language))
    profile, _ = StaffProfile.objects.update_or_create(user=user, defaults={"language": language})
    return profile


def staff_disclosure_acknowledged(user: Any) -> bool:
    """Whether ``user`` acknowledged the current risk disclosure (one query)."""
    from trading.suitability import RISK_DISCLOSURE_VERSION

    return StaffProfile.objects.filter(user=user, disclosure_version=RISK_DISCLOSURE_VERSION,
                                       disclosure_acknowledged_at__isnull=False).exists()


@transaction.atomic
def staff_disclosure_acknowledge(*, user: Any, version: str, address: str) -> StaffProfile:
    """A staff member acknowledges the current risk disclosure before using the admin; audited
    (``disclosure.acknowledged``, with the client address)."""
    from trading.clock import now
    from trading.suitability import RISK_DISCLOSURE_VERSION

    if version != RISK_DISCLOSURE_VERSION:
        raise Conflict(bilingual("the risk disclosure changed while you read it; read it again"))
    profile, _ = StaffProfile.objects.select_for_update().get_or_create(user=user)
    before = {"disclosure_version": profile.disclosure_version}
    profile.disclosure_version = RISK_DISCLOSURE_VERSION
    profile.disclosure_acknowledged_at = now()
    profile.save(update_fields=["disclosure_version", "disclosure_acknowledged_at", "updated_at"])
    audit_record(actor=Actor.user(user.get_username()), action="disclosure.acknowledged", object_type="staff",
                 object_id=user.pk, before=before,
                 after={"disclosure_version": RISK_DISCLOSURE_VERSION, "address": address,
                        "disclosure_acknowledged_at": profile.disclosure_acknowledged_at.isoformat()},
                 reason=f"风险揭示书 v{RISK_DISCLOSURE_VERSION} (risk disclosure)")
    return profile
