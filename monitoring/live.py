"""Live updates: the domain events of trading/events.py carried to websocket clients.

Each event that a person or a strategy watches (order, fill, position, balance, risk, broker link,
alert, health) is numbered per account (``seq``: 1, 2, 3 ... for each account; the events of no
account, such as the health of a process, are numbered as the account ``SYSTEM``) and sent to that
account's Channels group, ``live.<account>``. The consumers (monitoring/consumers.py) only pass
them on. A client that sees a gap in an account's numbers (it was slow and the channel layer
dropped messages for it, or it reconnected) re-syncs from the snapshot (monitoring/selectors.py),
which says up to which number it is complete.

The receiver runs on the thread that committed the change, in the process that made it (a web
request, a worker's task): it must cost that process next to nothing.

- With the Redis channel layer (``REDIS_URL``) it puts the event on a queue of the process, whose
  thread appends what came within 20 ms to one Redis list (one round trip; the list is capped at
  QUEUE_MAX), and the live relay (``manage.py run_live_relay``, one
  process, which ``run_system`` starts) takes the list in batches, numbers the events with one
  INCRBY per account and sends each account's events of the batch to its group as one message
  (a pass gathers what comes within 10 ms of its first event).
  One relay numbers everything in the order it reached Redis, so a client receives an account's
  events in the order of their numbers.
- With the in-memory layer (the embedded default, one process), the numbers are this process's
  and the event is handed to the event loop where the consumers run; a process where no consumer
  ever connected has nobody to tell.

Numbers are given after commit. A client still tolerates an early number for a moment before it
re-syncs (two relays by mistake, or the in-memory layer's threads).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import queue
import threading
import time
from collections.abc import Iterable
from typing import Any

from django.conf import settings

from trading.events import DomainEvent, EventKind, domain_event
from trading.redis_clients import redis_client

log = logging.getLogger(__name__)

LIVE_KINDS = frozenset({EventKind.ORDER, EventKind.FILL, EventKind.POSITION, EventKind.BALANCE, EventKind.RISK,
                        EventKind.BROKER_LINK, EventKind.ALERT, EventKind.HEALTH})
SYSTEM = "_system"  # the sequence and group of events that concern no one account
GROUP_PREFIX = "live."
MESSAGE_TYPE = "live.event"  # the consumers' handler: live_event
SEQ_KEY = "tbo:live:seq:"  # + account: the last number given (Redis)
QUEUE_KEY = "tbo:live:queue"  # events waiting for the live relay (Redis list, oldest first)
QUEUE_MAX = 100_000  # beyond this (no relay running) the oldest are dropped
BATCH = 500  # events the relay takes per pass
BATCH_SECONDS = 0.01  # how long the relay gathers events after the first of a pass (LIVE_BATCH_SECONDS)


def group_name(account: str) -> str:
    """The Channels group of ``account``'s events ("" = the system's). Account names are slugs."""
    return f"{GROUP_PREFIX}{account or SYSTEM}"


def event_json(event: DomainEvent, seq: int) -> str:
    """The text a client receives for one event (serialised once, for every client)."""
    return json.dumps({"type": "event", "kind": str(event.kind), "account": event.account, "seq": seq,
                       "at": event.at.isoformat(), "data": event.data}, ensure_ascii=False, default=str)


# --------------------------------------------------------------------------- numbering

_local_lock = threading.Lock()
_local_seq: dict[str, int] = {}
def _redis(timeout: float = 0.5) -> Any:
    """This process's Redis client with ``timeout`` (short on the publishers' side: a Redis that does
    not answer must not hold a request)."""
    return redis_client(timeout)


def uses_redis() -> bool:
    backend = str(settings.CHANNEL_LAYERS.get("default", {}).get("BACKEND", ""))
    return bool(settings.REDIS_URL) and "channels_redis" in backend


def seq_current(accounts: Iterable[str]) -> dict[str, int]:
    """The last number given to each of ``accounts`` ("" = the system's): a snapshot read after
    this is complete up to it."""
    names = [account or SYSTEM for account in accounts]
    if uses_redis():
        values = _redis().mget([SEQ_KEY + name for name in names]) if names else []
        return {name: int(value or 0) for name, value in zip(names, values, strict=True)}
    with _local_lock:
        return {name: _local_seq.get(name, 0) for name in names}


def _seq_local(account: str) -> int:
    with _local_lock:
        number = _local_seq.get(account, 0) + 1
        _local_seq[account] = number
        return number


def _seq_redis(events: list[DomainEvent]) -> list[int]:
    """Numbers for ``events`` (in order), one INCRBY per account, in one round trip."""
    counts: dict[str, int] = {}
    for event in events:
        name = event.account or SYSTEM
        counts[name] = counts.get(name, 0) + 1
    pipe = _redis(timeout=5.0).pipeline(transaction=False)
    for name, count in counts.items():
        pipe.incrby(SEQ_KEY + name, count)
    last = dict(zip(counts, pipe.execute(), strict=True))
    next_number = {name: int(last[name]) - counts[name] + 1 for name in counts}
    numbers = []
    for event in events:
        name = event.account or SYSTEM
        numbers.append(next_number[name])
        next_number[name] += 1
    return numbers


# --------------------------------------------------------------------------- sending


async def _send_all(layer: Any, messages: list[tuple[str, str]]) -> None:
    """Send (group, text) pairs: one channel-layer message per group carrying its texts in order
    (under load a pass carries many events for the cost of one send), groups side by side."""
    by_group: dict[str, list[str]] = {}
    for group, text in messages:
        by_group.setdefault(group, []).append(text)
    await asyncio.gather(*(layer.group_send(group, {"type": MESSAGE_TYPE, "group": group, "texts": texts})
                           for group, texts in by_group.items()))


# The loop the consumers of this process run on (in-memory layer): set when one connects.
consumer_loop: asyncio.AbstractEventLoop | None = None
GATHER_SECONDS = 0.02  # how long this process's pusher gathers events before one RPUSH


class _Pusher:
    """This process's thread that appends events to the relay's list: one RPUSH (and a trim) for
    all that came within GATHER_SECONDS, so the committing thread only puts the event on a queue.
    Started on the first event, again in a forked child (a thread does not survive a fork)."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.queue: queue.SimpleQueue[DomainEvent] = queue.SimpleQueue()
        self.failed_until = 0.0
        threading.Thread(target=self._run, name="live-updates-pusher", daemon=True).start()

    def _run(self) -> None:
        while True:
            events = [self.queue.get()]
            time.sleep(GATHER_SECONDS)
            while len(events) < BATCH:
                try:
                    events.append(self.queue.get_nowait())
                except queue.Empty:
                    break
            self._push(events)

    def _push(self, events: list[DomainEvent]) -> None:
        payloads = [json.dumps({"kind": str(e.kind), "account": e.account, "at": e.at.isoformat(), "data": e.data},
                               ensure_ascii=False, default=str) for e in events]
        try:
            pipe = _redis().pipeline(transaction=False)
            pipe.rpush(QUEUE_KEY, *payloads)
            pipe.ltrim(QUEUE_KEY, -QUEUE_MAX, -1)
            pipe.execute()
        except Exception as exc:  # clients re-sync from the snapshot when they reconnect
            if time.monotonic() >= self.failed_until:
                self.failed_until = time.monotonic() + 10.0
                log.warning("live updates: Redis unavailable (%s); %d events dropped", type(exc).__name__, len(events))


_pusher: _Pusher | None = None
_pusher_lock = threading.Lock()


def _pusher_for_process() -> _Pusher:
    global _pusher
    pusher = _pusher
    if pusher is None or pusher.pid != os.getpid():
        with _pusher_lock:
            if _pusher is None or _pusher.pid != os.getpid():
                _pusher = _Pusher()
            pusher = _pusher
    return pusher


def event_received(sender: object, *, event: DomainEvent, **kwargs: object) -> None:
    """The receiver of ``domain_event``: queue a live event for the relay (Redis), or number it and
    hand it to this process's consumers (in-memory layer). Quick; never raises."""
    if event.kind not in LIVE_KINDS:
        return
    if uses_redis():
        _pusher_for_process().queue.put(event)
        return
    loop = consumer_loop
    if loop is None or loop.is_closed():
        return  # no consumer in this process: nobody to tell
    from channels.layers import get_channel_layer

    text = event_json(event, _seq_local(event.account or SYSTEM))
    asyncio.run_coroutine_threadsafe(_send_all(get_channel_layer(), [(group_name(event.account), text)]), loop)


def connect() -> None:
    """Listen to the domain events (monitoring's AppConfig.ready)."""
    domain_event.connect(event_received, dispatch_uid="monitoring.live")


# --------------------------------------------------------------------------- the live relay


def _event_of(payload: bytes) -> DomainEvent:
    from datetime import datetime

    raw = json.loads(payload)
    return DomainEvent(raw["kind"], raw["account"], raw["data"], datetime.fromisoformat(raw["at"]))


def live_relay_once(layer: Any, loop: asyncio.AbstractEventLoop, *, wait: float = 1.0) -> int:
    """One pass of the live relay: wait up to ``wait`` seconds for queued events, take up to BATCH,
    number them and send them. Returns how many were sent."""
    client = _redis(timeout=wait + 5.0)
    first = client.blpop([QUEUE_KEY], timeout=wait)
    if first is None:
        return 0
    # Gather what else comes within the window: every message costs each websocket client one pop
    # from Redis in its server, so under load fewer, fuller messages keep the servers ahead.
    time.sleep(getattr(settings, "LIVE_BATCH_SECONDS", BATCH_SECONDS))
    payloads = [first[1], *(client.lpop(QUEUE_KEY, BATCH - 1) or [])]
    events = []
    for payload in payloads:
        try:
            events.append(_event_of(payload))
        except (ValueError, KeyError, TypeError):
            log.error("live relay: unreadable event dropped: %r", payload[:200])
    if not events:
        return 0
    numbers = _seq_redis(events)
    messages = [(group_name(e.account), event_json(e, n)) for e, n in zip(events, numbers, strict=True)]
    loop.run_until_complete(_send_all(layer, messages))
    return len(events)
