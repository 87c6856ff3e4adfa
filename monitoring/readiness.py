"""Readiness (``/readyz``): may a load balancer send traffic to this web process?

``/healthz`` (trading/urls.py) says the process is alive. ``/readyz`` checks what serving needs:

* ``database``: a ``SELECT 1``;
* ``redis``: a PING, when ``REDIS_URL`` is set (Celery's queue, Channels, shared rate limits);
* ``workers``: with Redis, a Celery ``ping`` that at least one worker answers; without Redis tasks
  run in-process and there is no worker to ask;
* ``brokers``: no active account's broker link is DOWN (``brokers.models.BrokerLink``).

Every part is reported; those in ``settings.READYZ_CHECKS`` (all but ``brokers`` by default) make the answer
503 when they fail, and ``failing`` names them. A part that depends on one already failing
(workers on Redis, brokers on the database) is not asked and reported as failing with it. Each
check gives up after ``READYZ_TIMEOUT_SECONDS``. Errors are named by their type only: the probe is
unauthenticated, so host names and addresses stay in the log.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings

from trading.redis_clients import redis_client as shared_redis_client

log = logging.getLogger(__name__)

def redis_client() -> Any:
    """This process's Redis client for probes and metrics (READYZ_TIMEOUT_SECONDS)."""
    return shared_redis_client(settings.READYZ_TIMEOUT_SECONDS)


def check_database() -> dict[str, Any]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return {"ok": True}


def check_redis() -> dict[str, Any]:
    if not settings.REDIS_URL:
        return {"ok": True, "configured": False}
    redis_client().ping()
    return {"ok": True}


def check_workers() -> dict[str, Any]:
    if not settings.REDIS_URL:
        return {"ok": True, "mode": "in-process"}
    from trading.celery import app

    replies = app.control.ping(timeout=settings.READYZ_TIMEOUT_SECONDS, limit=1)
    return {"ok": bool(replies), "replies": len(replies)}


def check_brokers() -> dict[str, Any]:
    from brokers.models import BrokerLink, LinkState
    from trading.models import Account

    down = sorted(BrokerLink.objects.filter(state=LinkState.DOWN, account__status=Account.Status.ACTIVE)
                  .values_list("account__name", flat=True))
    return {"ok": not down, "down": down}


# name -> (check, the part it cannot answer without)
CHECKS: dict[str, tuple[Callable[[], dict[str, Any]], str | None]] = {
    "database": (check_database, None),
    "redis": (check_redis, None),
    "workers": (check_workers, "redis"),
    "brokers": (check_brokers, "database"),
}


def readiness() -> dict[str, Any]:
    """Run every check; ``{"status": "ok" | "unavailable", "failing": [...], "checks": {...}}``."""
    results: dict[str, dict[str, Any]] = {}
    for name, (check, needs) in CHECKS.items():
        started = time.perf_counter()
        if needs is not None and not results[needs]["ok"]:
            result = {"ok": False, "error": f"{needs} unavailable"}
        else:
            try:
                result = check()
            except Exception as exc:
                log.warning("readiness: %s failed: %r", name, exc)
                result = {"ok": False, "error": type(exc).__name__}
        result["ms"] = round((time.perf_counter() - started) * 1000, 1)
        result["required"] = name in settings.READYZ_CHECKS
        results[name] = result
    failing = [name for name, result in results.items() if result["required"] and not result["ok"]]
    return {"status": "unavailable" if failing else "ok", "failing": failing, "checks": results}
