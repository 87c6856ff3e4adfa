"""Live updates: the domain events of trading/events.py carried to websocket clients.

Each event that a person or a strategy watches (order, fill, position, balance, risk, broker link,
alert, health) is numbered per account (``seq``: 1, 2, 3 ... for each account; the events of no
account, such as the health of a process, are numbered as the account ``SYSTEM``) and sent to that
account's Channels group, ``live.<account>``. The consumers (monitoring/consumers.py) only pass
them on. A client that sees a gap in an account's numbers (it was slow and the channel layer
dropped messages for it, or it reconnected) re-syncs from the snapshot (monitoring/selectors.py),
which says up to which number it is complete.

The receiver runs on the thread that committed the change, so it only numbers and queues:

- with the Redis channel layer (``REDIS_URL``), a thread of this process (one per process, started
  on the first event, again after a fork) takes the queued events in batches, numbers them with
  one INCRBY per account in Redis (shared by every web and worker process) and sends them to the
  groups in order;
- with the in-memory layer (the embedded default, one process), the numbers are this process's
  and the event is handed to the event loop where the consumers run; a process where no consumer
  ever connected has nobody to tell.

Numbers are given after commit, in the order the events reach Redis: across processes two
events of one account may reach a client in the other order (5 before 4) within a few
milliseconds, which is why a client waits briefly for a missing number before it re-syncs.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import queue
import threading
from collections.abc import Iterable
from typing import Any

from django.conf import settings

from trading.events import DomainEvent, EventKind, domain_event

log = logging.getLogger(__name__)

LIVE_KINDS = frozenset({EventKind.ORDER, EventKind.FILL, EventKind.POSITION, EventKind.BALANCE, EventKind.RISK,
                        EventKind.BROKER_LINK, EventKind.ALERT, EventKind.HEALTH})
SYSTEM = "_system"  # the sequence and group of events that concern no one account
GROUP_PREFIX = "live."
MESSAGE_TYPE = "live.event"  # the consumers' handler: live_event
SEQ_KEY = "tbo:live:seq:"  # + account: the last number given (Redis)
BATCH = 200  # events sent per pass of the sending thread


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
_redis_client: Any = None


def _redis() -> Any:
    global _redis_client
    if _redis_client is None:
        import redis

        _redis_client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
    return _redis_client


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
    pipe = _redis().pipeline(transaction=False)
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
    await asyncio.gather(*(layer.group_send(group, {"type": MESSAGE_TYPE, "texts": texts})
                           for group, texts in by_group.items()))


class _Sender:
    """This process's sending thread (Redis channel layer)."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.queue: queue.SimpleQueue[DomainEvent] = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._run, name="live-updates", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        from channels.layers import get_channel_layer

        loop = asyncio.new_event_loop()
        layer = get_channel_layer()
        while True:
            events = [self.queue.get()]
            while len(events) < BATCH:
                try:
                    events.append(self.queue.get_nowait())
                except queue.Empty:
                    break
            try:
                numbers = _seq_redis(events)
                messages = [(group_name(e.account), event_json(e, n)) for e, n in zip(events, numbers, strict=True)]
                loop.run_until_complete(_send_all(layer, messages))
            except Exception:  # a client re-syncs from the snapshot when numbers are missing
                log.exception("live updates: %d events not sent", len(events))


_sender: _Sender | None = None
_sender_lock = threading.Lock()
# The loop the consumers of this process run on (in-memory layer): set when one connects.
consumer_loop: asyncio.AbstractEventLoop | None = None


def _sender_for_process() -> _Sender:
    global _sender
    sender = _sender
    if sender is None or sender.pid != os.getpid():  # none yet, or inherited across a fork (no thread there)
        with _sender_lock:
            if _sender is None or _sender.pid != os.getpid():
                _sender = _Sender()
            sender = _sender
    return sender


def event_received(sender: object, *, event: DomainEvent, **kwargs: object) -> None:
    """The receiver of ``domain_event``: number and queue a live event (quick; never raises)."""
    if event.kind not in LIVE_KINDS:
        return
    if uses_redis():
        _sender_for_process().queue.put(event)
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
