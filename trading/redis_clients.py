"""This process's Redis clients, one per timeout, on ``settings.REDIS_URL`` (None without Redis).

Each caller says how long it may wait: the order path and the API's rate limits a fraction of a
second (a Redis that does not answer must not hold a request), the live relay its blocking pop.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

_clients: dict[tuple[str, float], Any] = {}


def redis_client(timeout: float = 0.5) -> Any:
    """The client for ``settings.REDIS_URL`` whose socket waits at most ``timeout`` seconds
    (connecting too). Precondition: REDIS_URL is set."""
    key = (settings.REDIS_URL, timeout)
    client = _clients.get(key)
    if client is None:
        import redis

        client = _clients[key] = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=timeout,
                                                      socket_connect_timeout=timeout)
    return client
