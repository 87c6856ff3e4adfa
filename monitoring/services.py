"""What the monitoring app enqueues: flushing a channel's owed deliveries.

The alert services (``monitoring/alerts.py``) and the delivery engine (``monitoring/delivery.py``)
owe deliveries in their transaction and call :func:`flush_soon`; the flush runs after commit:

* with Redis, on a Celery worker (``monitoring.tasks.flush_channel``);
* in the embedded mode (``MONITORING_FLUSH_IN_THREAD``, on when REDIS_URL is unset), on one
  background thread of the process, so that an SMTP server or a webhook that takes seconds
  never holds up the request or the broker call that published the event.

Either way the periodic sweep (``deliveries_sweep``) sends whatever a lost task left owed.
"""

from __future__ import annotations

import functools
import logging
import queue
import threading
from collections.abc import Iterable

from django.conf import settings
from django.db import transaction

from monitoring import tasks

log = logging.getLogger(__name__)


def flush_soon(channel_ids: Iterable[int]) -> None:
    """Flush each channel once the current transaction commits (at once outside one)."""
    for channel_id in sorted(set(channel_ids)):
        transaction.on_commit(functools.partial(_enqueue, channel_id))


def _enqueue(channel_id: int) -> None:
    if getattr(settings, "MONITORING_FLUSH_IN_THREAD", False):
        _background().put(channel_id)
        return
    try:
        tasks.flush_channel.delay(channel_id)
    except Exception:  # the queue is down: the sweep sends it; the alert itself is stored
        log.exception("could not enqueue the flush of channel %s", channel_id)


_queue: queue.SimpleQueue[int] | None = None
_queue_lock = threading.Lock()


def _background() -> queue.SimpleQueue[int]:
    global _queue
    with _queue_lock:
        if _queue is None:
            _queue = queue.SimpleQueue()
            threading.Thread(target=_flusher, args=(_queue,), name="alert-deliveries", daemon=True).start()
        return _queue


def _flusher(channels: queue.SimpleQueue[int]) -> None:
    from django.db import connections

    from monitoring.delivery import channel_flush

    while True:
        channel_id = channels.get()
        try:
            channel_flush(channel_id)
        except Exception:
            log.exception("flushing channel %s failed; the sweep will send what it owes", channel_id)
        finally:
            connections.close_all()  # this thread's own: it may sleep for hours before the next alert
