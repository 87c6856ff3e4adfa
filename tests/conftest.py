"""Shared fixtures. Factories live in tests/factories.py."""

from __future__ import annotations

import os

import pytest

REQUIRE_SERVICES = os.environ.get("REQUIRE_SERVICES") == "1"


def _using_postgres() -> bool:
    from django.conf import settings

    return settings.DATABASES["default"]["ENGINE"].endswith("postgresql")


@pytest.fixture
def require_postgres() -> None:
    """Skip (or fail under REQUIRE_SERVICES=1) unless the tests run on PostgreSQL."""
    if not _using_postgres():
        if REQUIRE_SERVICES:
            pytest.fail("this test needs PostgreSQL: set DATABASE_URL")
        pytest.skip("needs PostgreSQL (set DATABASE_URL)")


@pytest.fixture
def require_redis() -> str:
    """The Redis URL, or skip (fail under REQUIRE_SERVICES=1) when there is none."""
    from django.conf import settings

    url = settings.REDIS_URL
    if not url:
        if REQUIRE_SERVICES:
            pytest.fail("this test needs Redis: set REDIS_URL")
        pytest.skip("needs Redis (set REDIS_URL)")
    import redis

    try:
        redis.Redis.from_url(url).ping()
    except redis.RedisError as exc:
        if REQUIRE_SERVICES:
            pytest.fail(f"Redis at {url} is not reachable: {exc}")
        pytest.skip(f"Redis not reachable: {exc}")
    return url
