"""API keys: created once and shown once, stored only as a SHA-256 hash.

A key reads ``tbo_<prefix>_<secret>``; the prefix finds the row, the hash of
the whole key is compared in constant time. Keys carry 256 bits of entropy,
so a fast hash is the right tool here (a password hash would only add latency).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from ninja.security import HttpBearer

from audit.services import SYSTEM, Actor, audit_record
from trading.errors import Forbidden, NotFound
from trading.models import Account, ApiKey

KEY_PREFIX = "tbo"


def hash_key(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


@dataclass(frozen=True)
class ApiClient:
    """The authenticated caller of one request."""

    key_id: int
    name: str
    accounts: frozenset[str]
    can_trade: bool
    market_data: bool

    @property
    def actor(self) -> Actor:
        return Actor.api_key(self.name)

    def may_use(self, account: str) -> bool:
        return account in self.accounts

    def require_account(self, account: str, *, trade: bool = False) -> None:
        """403 unless this key may use ``account`` (and trade on it, when ``trade``)."""
        if not self.may_use(account):
            if not Account.objects.filter(name=account).exists():
                raise NotFound(f"账户不存在 (unknown account {account!r})")
            raise Forbidden(f"API密钥无权使用账户 {account} (this key may not use account {account})")
        if trade and not self.can_trade:
            raise Forbidden("只读API密钥不能交易 (this key is read-only)")


@transaction.atomic
def api_key_create(*, name: str, accounts: list[str], can_trade: bool = True, market_data: bool = False,
                   actor: Actor = SYSTEM) -> tuple[ApiKey, str]:
    """Create a key for ``accounts``; returns the row and the raw key (never stored)."""
    found = list(Account.objects.filter(name__in=accounts))
    missing = sorted(set(accounts) - {a.name for a in found})
    if missing:
        raise NotFound(f"账户不存在: {', '.join(missing)} (unknown accounts)")
    prefix = secrets.token_hex(4)
    raw = f"{KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    key = ApiKey.objects.create(name=name, prefix=prefix, key_hash=hash_key(raw), can_trade=can_trade, market_data=market_data)
    key.accounts.set(found)
    audit_record(actor=actor, action="api_key.created", object_type="api_key", object_id=key.pk,
                 after={"name": name, "accounts": sorted(accounts), "can_trade": can_trade, "market_data": market_data})
    return key, raw


# Authenticated keys are remembered briefly so the hot path does not re-read
# them on every request; a revoked key stops working within this many seconds.
_CACHE_SECONDS = 5.0
_cache: dict[str, tuple[float, ApiClient]] = {}
_last_used_written: dict[int, float] = {}


def api_client_for(raw: str) -> ApiClient | None:
    """The client behind a raw key, or None when the key is unknown, wrong or revoked."""
    now = time.monotonic()
    cached = _cache.get(raw)
    if cached and cached[0] > now:
        return cached[1]
    parts = raw.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX:
        return None
    key = ApiKey.objects.filter(prefix=parts[1], is_active=True).first()
    if key is None or not hmac.compare_digest(key.key_hash, hash_key(raw)):
        return None
    client = ApiClient(
        key_id=key.pk,
        name=key.name,
        accounts=frozenset(key.accounts.values_list("name", flat=True)),
        can_trade=key.can_trade,
        market_data=key.market_data,
    )
    _cache[raw] = (now + _CACHE_SECONDS, client)
    if _last_used_written.get(key.pk, 0) < now - 60:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=timezone.now())
        _last_used_written[key.pk] = now
    return client


class ApiKeyAuth(HttpBearer):
    def authenticate(self, request: HttpRequest, token: str) -> ApiClient | None:
        return api_client_for(token)
