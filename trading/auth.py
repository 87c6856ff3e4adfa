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
from ninja.security import HttpBearer

from audit.services import SYSTEM, Actor, audit_record
from trading import clock
from trading.errors import ErrorCode, Forbidden, InputRule, InvalidOrder, NotFound, TradingError
from trading.i18n import bilingual
from trading.models import Account, ApiKey
from trading.redis_clients import redis_client
from trading.suitability import RISK_DISCLOSURE_VERSION

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
    disclosure_acknowledged: bool = True  # the current risk disclosure (trading.suitability)

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
            raise Forbidden(bilingual("account {account!r} not found or not allowed for this key", account=account))
        if trade and not self.can_trade:
            raise Forbidden(bilingual("this key is read-only"))


def api_client(request: HttpRequest) -> ApiClient:
    """The caller of an API request, as the API's authentication (``ApiKeyAuth``) set it."""
    client: ApiClient = request.auth  # type: ignore[attr-defined]  # django-stubs: HttpRequest has no auth; django-ninja sets it after authenticating
    return client


@transaction.atomic
def api_key_create(*, name: str, accounts: list[str], can_trade: bool = True, market_data: bool = False,
                   actor: Actor = SYSTEM, disclosure_acknowledged_by: str = "") -> tuple[ApiKey, str]:
    """Create a key for ``accounts``; returns the row and the raw key (never stored).

    With ``disclosure_acknowledged_by`` (the key's owner, who read the risk disclosure where the
    key was made, e.g. ``create_api_key --accept-disclosure``) the key is acknowledged at once;
    otherwise it answers 403 ``disclosure_required`` until ``POST /disclosure``."""
    found = list(Account.objects.filter(name__in=accounts))
    missing = sorted(set(accounts) - {a.name for a in found})
    if missing:
        raise NotFound(bilingual("unknown accounts", value=', '.join(missing)))
    prefix = secrets.token_hex(4)
    raw = f"{KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    key = ApiKey.objects.create(name=name, prefix=prefix, key_hash=hash_key(raw), can_trade=can_trade, market_data=market_data)
    key.accounts.set(found)
    audit_record(actor=actor, action="api_key.created", object_type="api_key", object_id=key.pk,
                 after={"name": name, "accounts": sorted(accounts), "can_trade": can_trade, "market_data": market_data})
    if disclosure_acknowledged_by:
        _disclosure_record(key, by=disclosure_acknowledged_by, actor=actor, address="")
    return key, raw


def _disclosure_record(key: ApiKey, *, by: str, actor: Actor, address: str) -> None:
    before = {"disclosure_version": key.disclosure_version,
              "disclosure_acknowledged_at": key.disclosure_acknowledged_at.isoformat() if key.disclosure_acknowledged_at else None}
    key.disclosure_version = RISK_DISCLOSURE_VERSION
    key.disclosure_acknowledged_at = clock.now()
    key.disclosure_acknowledged_by = by[:128]
    key.save(update_fields=["disclosure_version", "disclosure_acknowledged_at", "disclosure_acknowledged_by"])
    audit_record(actor=actor, action="disclosure.acknowledged", object_type="api_key", object_id=key.pk,
                 before=before, after={"disclosure_version": key.disclosure_version, "acknowledged_by": key.disclosure_acknowledged_by,
                                       "disclosure_acknowledged_at": key.disclosure_acknowledged_at.isoformat(), "address": address},
                 reason=f"风险揭示书 v{RISK_DISCLOSURE_VERSION} (risk disclosure)")


@transaction.atomic
def api_key_disclosure_acknowledge(*, key_id: int, version: str, acknowledged_by: str, address: str) -> ApiKey:
    """The key's owner acknowledges the current risk disclosure (``POST /disclosure``), audited
    (``disclosure.acknowledged``, with the client address). 422 for another version than the
    current one: the owner must have read the text being acknowledged."""
    if version != RISK_DISCLOSURE_VERSION:
        raise InvalidOrder.single("version", InputRule.CHOICE, bilingual(
            "the current risk disclosure is version {current}; read it (GET /disclosure) and acknowledge that version; got {version!r}",
            current=RISK_DISCLOSURE_VERSION, version=version))
    if not acknowledged_by.strip():
        raise InvalidOrder.single("acknowledged_by", InputRule.REQUIRED, bilingual("acknowledged_by names the person who read the disclosure"))
    key = ApiKey.objects.select_for_update().get(pk=key_id)
    _disclosure_record(key, by=acknowledged_by.strip(), actor=Actor.api_key(key.name), address=address)
    transaction.on_commit(lambda: api_key_forget(key_id))
    return key


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
        disclosure_acknowledged=key.disclosure_version == RISK_DISCLOSURE_VERSION and key.disclosure_acknowledged_at is not None,
    )
    _cache[raw] = (now + _CACHE_SECONDS, client)
    if _last_used_written.get(key.pk, 0) < now - 60:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=clock.now())
        _last_used_written[key.pk] = now
    return client


def api_key_forget(key_id: int) -> None:
    """Drop a key from this process's cache at once (revocation; other processes follow
    within _CACHE_SECONDS)."""
    for raw, (_, client) in list(_cache.items()):
        if client.key_id == key_id:
            _cache.pop(raw, None)


# --------------------------------------------------------------------------- rate limits
#
# Token buckets: a key's bucket holds one second's worth of requests
# (rate_limit_per_second) and refills continuously, so no window edge lets two
# seconds' worth through at once. A request costs one token and is admitted
# while the bucket holds one; a batch of N orders costs N (the batch endpoint
# calls rate_limit_charge): it is admitted on one token, and the bucket then
# goes into debt, so the key waits until it has paid for every item. Failed
# authentications are limited per client address (REMOTE_ADDR): after
# API_AUTH_FAILURE_LIMIT failures within API_AUTH_FAILURE_WINDOW_SECONDS the
# address gets 429 before any key is looked up in the database.
#
# With REDIS_URL the buckets live in Redis (one Lua script call, atomic, on
# Redis's clock) and every process shares them; without it, or while Redis
# does not answer, each process keeps its own.


class RateLimited(TradingError):
    """Too many requests (429 with Retry-After): a key over its rate, or an address over its failed logins."""

    status_code = 429
    code = ErrorCode.RATE_LIMITED

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


TAKE, FORCE, PEEK = "take", "force", "peek"
_MAX_LOCAL_BUCKETS = 50_000
_buckets: dict[str, list[float]] = {}  # name -> [tokens, last refill (monotonic)]
_buckets_lock = threading.Lock()
_redis_script: Any = None
_redis_failed_until = 0.0

# KEYS[1] bucket; ARGV rate per second, capacity, cost, mode. Returns the seconds to wait (0: admitted) as a string
# (a Lua number would come back truncated to an integer).
_BUCKET_LUA = """
local rate, capacity, cost, mode = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or capacity
local at = tonumber(state[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - at) * rate)
local wait = 0
if mode == 'force' then
  tokens = tokens - cost
elseif tokens >= 1 then
  if mode == 'take' then tokens = tokens - cost end
else
  wait = (1 - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(((capacity - tokens) / rate + 1) * 1000))
return tostring(wait)
"""


def _bucket_local(name: str, rate: float, capacity: float, cost: float, mode: str) -> float:
    """The in-process bucket ``name``: 0 when admitted (and charged), else the seconds until a token is back."""
    now = time.monotonic()
    with _buckets_lock:
        bucket = _buckets.get(name)
        if bucket is None:
            if len(_buckets) >= _MAX_LOCAL_BUCKETS:  # many addresses: forget the full (idle) buckets
                for stale in [k for k, (tokens, at) in _buckets.items() if tokens + (now - at) * rate >= capacity]:
                    del _buckets[stale]
            bucket = _buckets[name] = [capacity, now]
        tokens = min(capacity, bucket[0] + (now - bucket[1]) * rate)
        bucket[1] = now
        wait = 0.0
        if mode == FORCE:
            tokens -= cost
        elif tokens >= 1.0:
            if mode == TAKE:
                tokens -= cost
        else:
            wait = (1.0 - tokens) / rate
        bucket[0] = tokens
        return wait


def _redis() -> Any:
    return redis_client(timeout=0.2)


def _bucket_shared(name: str, rate: float, capacity: float, cost: float, mode: str) -> float:
    """The bucket ``name`` in Redis, shared by every process (one round trip)."""
    global _redis_script
    client = _redis()
    if _redis_script is None or _redis_script.registered_client is not client:
        _redis_script = client.register_script(_BUCKET_LUA)
    return float(_redis_script(keys=[f"tbo:bucket:{name}"], args=[rate, capacity, cost, mode]))


def _bucket(name: str, rate: float, capacity: float, cost: float = 1, mode: str = TAKE) -> float:
    """Charge (or, with PEEK, look at) a bucket: in Redis when configured and answering, else in-process."""
    global _redis_failed_until
    if settings.REDIS_URL and time.monotonic() >= _redis_failed_until:
        try:
            return _bucket_shared(name, rate, capacity, cost, mode)
        except Exception as exc:  # the limiter must not take the API down with Redis
            _redis_failed_until = time.monotonic() + 5.0
            log.warning("rate limit: Redis unavailable (%s); limiting in-process for 5 s", type(exc).__name__)
    return _bucket_local(name, rate, capacity, cost, mode)


def _refuse_key(client: ApiClient, wait: float) -> RateLimited:
    rate = client.rate_limit_per_second
    return RateLimited(
        bilingual("rate limit of {rate} requests per second exceeded for key {name}", rate=rate, name=client.name),
        retry_after=max(1, math.ceil(wait)),
    )


def _key_bucket(client: ApiClient) -> str:
    return f"key:{client.prefix or client.key_id}"


def rate_limit_check(client: ApiClient, cost: int = 1) -> None:
    """Raise RateLimited when ``client`` has no token left; otherwise charge ``cost`` tokens."""
    rate = client.rate_limit_per_second
    if rate <= 0:
        return
    wait = _bucket(_key_bucket(client), rate, rate, cost, TAKE)
    if wait > 0:
        raise _refuse_key(client, wait)


def rate_limit_charge(request: HttpRequest, items: int) -> None:
    """A batch of ``items`` orders costs ``items`` requests: charge the ``items - 1`` its request did not pay.

    The batch was admitted with one token; the rest is owed (the bucket goes into debt), so the key's
    next requests wait until it is paid. Call once per batch, before submitting its items.
    """
    client = getattr(request, "auth", None)
    if not isinstance(client, ApiClient) or client.rate_limit_per_second <= 0 or items <= 1:
        return
    rate = client.rate_limit_per_second
    _bucket(_key_bucket(client), rate, rate, items - 1, FORCE)


def client_address(request: HttpRequest) -> str:
    return str(request.META.get("REMOTE_ADDR") or "unknown")


def _failure_bucket(request: HttpRequest) -> tuple[str, float, float]:
    limit = float(settings.API_AUTH_FAILURE_LIMIT)
    return f"authfail:{client_address(request)}", limit / float(settings.API_AUTH_FAILURE_WINDOW_SECONDS), limit


def auth_failures_check(request: HttpRequest) -> None:
    """429 when the client's address is over its failed authentications (no charge, no database)."""
    if settings.API_AUTH_FAILURE_LIMIT <= 0:
        return
    name, rate, capacity = _failure_bucket(request)
    wait = _bucket(name, rate, capacity, 1, PEEK)
    if wait > 0:
        raise RateLimited(
            bilingual("too many failed authentications from this address; try again later"),
            retry_after=max(1, math.ceil(wait)),
        )


def auth_failure_record(request: HttpRequest, token: str = "") -> None:
    """Count one failed authentication against the client's address, and audit it
    (``api.auth_failed``: the address, the path and the key's public prefix if it has one, never
    the key). The count comes first: an address over the limit is refused before it gets here, so
    the audit rows of one address are bounded by API_AUTH_FAILURE_LIMIT a window."""
    if settings.API_AUTH_FAILURE_LIMIT > 0:
        name, rate, capacity = _failure_bucket(request)
        _bucket(name, rate, capacity, 1, FORCE)
    parts = token.split("_", 2)
    prefix = parts[1][:12] if len(parts) == 3 and parts[0] == KEY_PREFIX else ""
    try:
        with transaction.atomic():
            audit_record(actor=Actor.api_key(f"tbo_{prefix}_…" if prefix else "(unknown)"), action="api.auth_failed",
                         object_type="api_key", object_id=prefix,
                         after={"address": client_address(request), "path": request.path[:200], "prefix": prefix})
    except Exception:
        log.exception("could not record a failed API authentication")


class DisclosureRequired(Forbidden):
    """403 for a key whose owner has not acknowledged the current risk disclosure."""

    code = ErrorCode.DISCLOSURE_REQUIRED


class ApiKeyAuth(HttpBearer):
    """``Authorization: Bearer <key>``. Unlike ninja's HttpBearer, a header with another scheme
    (``Token tbo_...``, ``Basic ...``) is refused without logging its value: it is often a key.

    A key whose owner has not acknowledged the current risk disclosure gets 403
    ``disclosure_required`` on every endpoint but the disclosure's own (``require_disclosure=False``)."""

    def __init__(self, *, require_disclosure: bool = True) -> None:
        super().__init__()
        self.require_disclosure = require_disclosure

    def __call__(self, request: HttpRequest) -> ApiClient | None:
        header = request.headers.get(self.header, "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != self.openapi_scheme or not token:
            if header:  # a key in the wrong place is a failed authentication too
                auth_failures_check(request)
                auth_failure_record(request)
            return None
        return self.authenticate(request, token)

    def authenticate(self, request: HttpRequest, token: str) -> ApiClient | None:
        auth_failures_check(request)  # before any lookup: wrong keys from one address cannot cost the database
        client = api_client_for(token)
        if client is None:
            auth_failure_record(request, token)
            return None
        rate_limit_check(client)
        if self.require_disclosure and not client.disclosure_acknowledged:
            raise DisclosureRequired(bilingual(
                "this key's owner has not acknowledged the risk disclosure: read GET /disclosure, then POST /disclosure"))
        return client
