"""API keys: created once and shown once, stored only as a SHA-256 hash.

A key reads ``tbo_<prefix>_<secret>``; the prefix finds the row, the hash of
the whole key is compared in constant time. Keys carry 256 bits of entropy,
so a fast hash is the right tool here (a password hash would only add latency).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from ninja.security import HttpBearer

from audit.services import SYSTEM, Actor, audit_record
from trading.errors import Forbidden, NotFound, TradingError
from trading.models import Account, ApiKey

KEY_PREFIX = "tbo"
log = logging.getLogger(__name__)


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
    rate_limit_per_second: int = 0  # 0: no limit
    prefix: str = ""

    @property
    def actor(self) -> Actor:
        return Actor.api_key(self.name)

    def may_use(self, account: str) -> bool:
        return account in self.accounts

    def require_account(self, account: str, *, trade: bool = False) -> None:
        """403 unless this key may use ``account`` (and trade on it, when ``trade``).

        A missing account gets the same 403 and message as another key's account, so a caller
        cannot tell which account names exist (API.md: "an account the key may not use gets 403").
        """
        if not self.may_use(account):
            raise Forbidden(f"账户不存在或无权使用 (account {account!r} not found or not allowed for this key)")
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
        rate_limit_per_second=key.rate_limit_per_second,
        prefix=key.prefix,
    )
    _cache[raw] = (now + _CACHE_SECONDS, client)
    if _last_used_written.get(key.pk, 0) < now - 60:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=timezone.now())
        _last_used_written[key.pk] = now
    return client


def api_key_forget(key_id: int) -> None:
    """Drop a key from this process's cache at once (revocation; other processes follow
    within _CACHE_SECONDS)."""
    for raw, (_, client) in list(_cache.items()):
        if client.key_id == key_id:
            _cache.pop(raw, None)


# --------------------------------------------------------------------------- rate limit


class RateLimited(TradingError):
    """A key sent more requests than its rate_limit_per_second (429 with Retry-After)."""

    status_code = 429
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


# In-process token buckets (prefix -> [tokens, last refill]): a burst of one
# second's worth, refilled continuously. Per process: with several web
# processes and no Redis, each enforces the limit on its own.
_buckets: dict[str, list[float]] = {}
_buckets_lock = threading.Lock()
_redis_client: Any = None
_redis_failed_until = 0.0


def _wait_local(prefix: str, rate: int) -> float:
    """0 when the request may go now, else the seconds until a token is back."""
    now = time.monotonic()
    with _buckets_lock:
        bucket = _buckets.get(prefix)
        if bucket is None:
            bucket = _buckets[prefix] = [float(rate), now]
        tokens = min(float(rate), bucket[0] + (now - bucket[1]) * rate)
        bucket[1] = now
        if tokens >= 1.0:
            bucket[0] = tokens - 1.0
            return 0.0
        bucket[0] = tokens
        return (1.0 - tokens) / rate


def _redis() -> Any:
    global _redis_client
    if _redis_client is None:
        import redis

        _redis_client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=0.2, socket_connect_timeout=0.2)
    return _redis_client


def _wait_shared(prefix: str, rate: int) -> float:
    """Shared by every process through Redis: one counter per key and second (one round trip)."""
    now = time.time()
    window = int(now)
    pipe = _redis().pipeline(transaction=False)
    name = f"tbo:rate:{prefix}:{window}"
    pipe.incr(name)
    pipe.expire(name, 2)
    count = pipe.execute()[0]
    if count <= rate:
        return 0.0
    return window + 1 - now


def rate_limit_check(client: ApiClient) -> None:
    """Raise RateLimited when ``client`` is over its requests-per-second limit.

    With REDIS_URL the limit is shared by all processes; without it (or while
    Redis does not answer) each process keeps its own token bucket.
    """
    global _redis_failed_until
    rate = client.rate_limit_per_second
    if rate <= 0:
        return
    wait: float | None = None
    if settings.REDIS_URL and time.monotonic() >= _redis_failed_until:
        try:
            wait = _wait_shared(client.prefix or str(client.key_id), rate)
        except Exception as exc:  # the limiter must not take the API down with Redis
            _redis_failed_until = time.monotonic() + 5.0
            log.warning("rate limit: Redis unavailable (%s); limiting in-process for 5 s", exc)
    if wait is None:
        wait = _wait_local(client.prefix or str(client.key_id), rate)
    if wait > 0:
        raise RateLimited(
            f"请求过于频繁, 每秒最多 {rate} 次 (rate limit of {rate} requests per second exceeded for key {client.name})",
            retry_after=max(1, math.ceil(wait)),
        )


class ApiKeyAuth(HttpBearer):
    """``Authorization: Bearer <key>``. Unlike ninja's HttpBearer, a header with another scheme
    (``Token tbo_...``, ``Basic ...``) is refused without logging its value: it is often a key."""

    def __call__(self, request: HttpRequest) -> ApiClient | None:
        scheme, _, token = request.headers.get(self.header, "").partition(" ")
        if scheme.lower() != self.openapi_scheme or not token:
            return None
        return self.authenticate(request, token)

    def authenticate(self, request: HttpRequest, token: str) -> ApiClient | None:
        client = api_client_for(token)
        if client is not None:
            rate_limit_check(client)
        return client
