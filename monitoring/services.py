"""What the monitoring app enqueues: flushing a channel's owed deliveries on a worker.

The alert services (``monitoring/alerts.py``) and the delivery engine (``monitoring/delivery.py``)
owe deliveries in their transaction and call :func:`flush_soon`; the flush runs after commit, on a
Celery worker with Redis, in-process without it. The periodic sweep (``deliveries_sweep``) sends
whatever a lost task left owed.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable

from django.db import transaction

from monitoring import tasks


def flush_soon(channel_ids: Iterable[int]) -> None:
    """Flush each channel once the current transaction commits (at once outside one)."""
    for channel_id in sorted(set(channel_ids)):
        transaction.on_commit(functools.partial(_enqueue, channel_id))


def _enqueue(channel_id: int) -> None:
    import logging

    try:
        tasks.flush_channel.delay(channel_id)
    except Exception:  # the queue is down: the sweep sends it; the alert itself is stored
        logging.getLogger(__name__).exception("could not enqueue the flush of channel %s", channel_id)
