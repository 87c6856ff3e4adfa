"""The delivery engine: owed deliveries to channel calls, within each channel's rate, with
digests, retries with back-off, and a fallback channel when a channel gives up.

:func:`channel_flush` sends what a channel owes now, in rounds:

1. Under the channel's row lock (one planner per channel at a time, for a few milliseconds):
   drop what an acknowledgement made unnecessary; count this channel's calls in the last minute
   against its rate; when more deliveries are due for the same recipients than one message, they
   become one digest (the merged rows point to it, status MERGED); a channel with no call left
   this minute waits until one is (due_at moves), its deliveries piling up for the next digest.
   The chosen rows are committed SENDING with an attempt row (what the rate counts), before any
   call: a crash never makes a non-idempotent channel (SMS) send twice.
2. Outside any transaction: the calls.
3. Each outcome recorded: SENT; or a failure: retried after a back-off (doubling, jittered) or
   after the pause the service asked for (throttled); failed for good after the channel's
   ``max_attempts``, at once for a refusal that would not change (bad secret, unknown recipient),
   or when a non-idempotent channel may have sent it (a timeout). A delivery failed for good is
   visible in admin and its message goes to the channel's fallback (or another enabled channel).

:func:`deliveries_sweep` (periodic) flushes every channel with something due, and returns
deliveries a crashed worker left SENDING: to PENDING on an idempotent channel, to FAILED (and the
fallback) on one that may have sent it.
"""

from __future__ import annotations

import logging
import random
from collections import defaultdict
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Min, Q

from monitoring.channels import ChannelFailure, Message, plugin_for
from monitoring.channels.base import redact
from monitoring.models import (
    LEVEL_RANK,
    AlertStatus,
    Channel,
    Delivery,
    DeliveryAttempt,
    DeliveryKind,
    DeliveryStatus,
    Level,
)
from monitoring.services import flush_soon
from trading.clock import now
from trading.i18n import bilingual

log = logging.getLogger(__name__)

RATE_WINDOW = timedelta(seconds=60)


def _setting(name: str, default: float) -> float:
    return float(getattr(settings, name, default))


def retry_backoff(attempts: int) -> float:
    """Seconds before attempt ``attempts + 1``: doubling from MONITORING_RETRY_BASE_SECONDS up to
    MONITORING_RETRY_MAX_SECONDS, each drawn between 80% and 120%."""
    base = _setting("MONITORING_RETRY_BASE_SECONDS", 2.0) * (2 ** max(attempts - 1, 0))
    return min(base, _setting("MONITORING_RETRY_MAX_SECONDS", 300.0)) * random.uniform(0.8, 1.2)


def rate_of(channel: Channel) -> int:
    if channel.rate_per_minute:
        return channel.rate_per_minute
    try:
        return plugin_for(channel.kind).default_rate_per_minute
    except ChannelFailure:
        return 0


@dataclass
class Send:
    delivery: Delivery
    attempt: DeliveryAttempt
    message: Message


def _message(delivery: Delivery) -> Message:
    alerts = tuple({"id": a.pk, "account": a.account, "status": a.status, "code": a.code, "level": a.level}
                   for a in delivery.alerts.all())
    recipients = tuple(r.strip() for r in delivery.recipients.split(",") if r.strip())
    return Message(subject=delivery.subject, body=delivery.body, level=delivery.level, recipients=recipients,
                   reference=f"delivery-{delivery.pk}", alerts=alerts)


def _still_wanted(delivery: Delivery) -> bool:
    """A delivery of alerts that are all acknowledged or resolved is not sent (fallbacks of a
    failed channel and alert-less deliveries are)."""
    if delivery.kind == DeliveryKind.FALLBACK:
        return True
    states = [a.status for a in delivery.alerts.all()]
    return not states or AlertStatus.OPEN in states


def _digest(channel: Channel, recipients: str, rows: list[Delivery], at: Any) -> Delivery:
    """One delivery carrying ``rows``' alerts; the rows become MERGED into it."""
    level = max((r.level for r in rows), key=lambda lv: LEVEL_RANK[Level(lv)])
    alerts = {a.pk: a for r in rows for a in r.alerts.all() if a.status == AlertStatus.OPEN or r.kind == DeliveryKind.FALLBACK}
    by_level: dict[str, int] = defaultdict(int)
    for r in rows:
        by_level[r.level] += 1
    counts = ", ".join(f"{lv} {by_level[lv]}" for lv in (Level.CRITICAL, Level.WARNING, Level.INFO) if by_level[lv])
    subject = bilingual("[{level}] {count} alerts ({counts})", level=level, count=len(rows), counts=counts)[:255]
    lines = [f"- {r.subject}" for r in sorted(rows, key=lambda r: (-LEVEL_RANK[Level(r.level)], r.created_at))]
    digest = Delivery.objects.create(channel=channel, kind=DeliveryKind.DIGEST, recipients=recipients, level=level,
                                     subject=subject, body="\n".join(lines), due_at=at, created_at=at)
    digest.alerts.set(list(alerts.values()))
    Delivery.objects.filter(pk__in=[r.pk for r in rows]).update(status=DeliveryStatus.MERGED, merged_into=digest)
    return digest


def _plan(channel_id: int, limit: int) -> tuple[Channel | None, list[Send], bool]:
    """Claim this round's sends (see the module docstring, step 1). Returns the channel, the
    sends, and whether more may be due."""
    at = now()
    with transaction.atomic():
        channel = Channel.objects.select_for_update().filter(pk=channel_id).first()
        if channel is None:
            return None, [], False
        due = list(Delivery.objects.select_for_update(skip_locked=True)
                   .filter(channel=channel, status=DeliveryStatus.PENDING, due_at__lte=at)
                   .prefetch_related("alerts").order_by("due_at", "pk")[:limit])
        if not due:
            return channel, [], False
        wanted = []
        for delivery in due:
            if _still_wanted(delivery):
                wanted.append(delivery)
            else:
                delivery.status = DeliveryStatus.CANCELLED
                delivery.last_error = bilingual("alert acknowledged or resolved before sending")
                delivery.save(update_fields=["status", "last_error"])
        if not channel.enabled:
            for delivery in wanted:
                _fail(delivery, channel, bilingual("channel {name} is disabled", name=channel.name))
            return channel, [], False
        if channel.paused_until and channel.paused_until > at:
            Delivery.objects.filter(pk__in=[d.pk for d in wanted]).update(due_at=channel.paused_until)
            return channel, [], False
        rate = rate_of(channel)
        budget = len(wanted)
        if rate:
            window = DeliveryAttempt.objects.filter(channel=channel, started_at__gt=at - RATE_WINDOW)
            stats = window.aggregate(n=Count("pk"), first=Min("started_at"))
            budget = rate - stats["n"]
            if budget <= 0:  # no call left this minute: wait for the oldest to leave the window
                free_at = (stats["first"] or at) + RATE_WINDOW
                Delivery.objects.filter(pk__in=[d.pk for d in wanted]).update(due_at=free_at)
                return channel, [], False
        groups: dict[str, list[Delivery]] = defaultdict(list)
        for delivery in wanted:
            groups[delivery.recipients].append(delivery)
        chosen: list[Delivery] = []
        for recipients, rows in groups.items():
            if len(chosen) >= budget:
                break
            chosen.append(rows[0] if len(rows) == 1 else _digest(channel, recipients, rows, at))
        sends = []
        claim = timedelta(seconds=_setting("MONITORING_CHANNEL_TIMEOUT_SECONDS", 5.0) * 3)
        for delivery in chosen:
            delivery.status, delivery.claimed_until = DeliveryStatus.SENDING, at + claim
            delivery.attempts += 1
            delivery.save(update_fields=["status", "claimed_until", "attempts"])
            attempt = DeliveryAttempt.objects.create(delivery=delivery, channel=channel, started_at=at)
            sends.append(Send(delivery, attempt, _message(delivery)))
        return channel, sends, len(due) >= limit


def channel_flush(channel_id: int, *, rounds: int = 5, limit: int = 200) -> int:
    """Send what channel ``channel_id`` owes now. Returns how many calls succeeded."""
    sent = 0
    for _ in range(rounds):
        channel, sends, more = _plan(channel_id, limit)
        if channel is None or not sends:
            return sent
        cls = plugin_for(channel.kind)
        plugin = cls(options=channel.options or {}, secrets=channel.secrets or {},
                     timeout=_setting("MONITORING_CHANNEL_TIMEOUT_SECONDS", 5.0))
        for send in sends:
            try:
                plugin.send(send.message)
            except ChannelFailure as failure:
                _record_failure(send, channel, failure, idempotent=cls.idempotent)
            except Exception as exc:  # a plug-in's bug is a failed call, never a lost delivery
                # No traceback: an exception's text may carry the webhook URL; redact() masks its secrets.
                log.error("channel %s (%s) failed unexpectedly: %s", channel.name, channel.kind, redact(repr(exc)))
                _record_failure(send, channel, ChannelFailure(f"{exc.__class__.__name__}: {exc}"),
                                idempotent=cls.idempotent)
            else:
                _record_success(send)
                sent += 1
        if not more:
            # What a concurrent raise owed while we sent: one more round picks it up.
            if not Delivery.objects.filter(channel_id=channel_id, status=DeliveryStatus.PENDING, due_at__lte=now()).exists():
                return sent
    return sent


def _record_success(send: Send) -> None:
    at = now()
    with transaction.atomic():
        Delivery.objects.filter(pk=send.delivery.pk).update(status=DeliveryStatus.SENT, sent_at=at, last_error="",
                                                            claimed_until=None)
        DeliveryAttempt.objects.filter(pk=send.attempt.pk).update(finished_at=at, ok=True)


def _record_failure(send: Send, channel: Channel, failure: ChannelFailure, *, idempotent: bool) -> None:
    at = now()
    error = redact(failure.message)[:2000]
    log.warning("delivery %s on channel %s failed (attempt %s): %s", send.delivery.pk, channel.name,
                send.delivery.attempts, error)
    with transaction.atomic():
        DeliveryAttempt.objects.filter(pk=send.attempt.pk).update(finished_at=at, ok=False, error=error)
        delivery = Delivery.objects.select_for_update().get(pk=send.delivery.pk)
        resume = at
        if failure.pause_seconds:
            resume = at + timedelta(seconds=failure.pause_seconds)
            Channel.objects.filter(pk=channel.pk).update(paused_until=resume)
        final = (not failure.retry or delivery.attempts >= channel.max_attempts
                 or (failure.maybe_sent and not idempotent))
        if final:
            if failure.maybe_sent and not idempotent:
                error = bilingual("outcome unknown, not sent again (the channel is not idempotent)") + f": {error}"
            _fail(delivery, channel, error)
            return
        delivery.status, delivery.claimed_until, delivery.last_error = DeliveryStatus.PENDING, None, error
        delivery.due_at = max(resume, at + timedelta(seconds=retry_backoff(delivery.attempts)))
        delivery.save(update_fields=["status", "claimed_until", "last_error", "due_at"])


def _fail(delivery: Delivery, channel: Channel, error: str) -> None:
    """``delivery`` failed for good (caller holds its row in a transaction): visible as FAILED, and
    its message owed to the fallback channel, so the alert is not lost."""
    delivery.status, delivery.claimed_until, delivery.last_error = DeliveryStatus.FAILED, None, error[:2000]
    delivery.save(update_fields=["status", "claimed_until", "last_error"])
    log.error("delivery %s on channel %s failed for good: %s", delivery.pk, channel.name, error)
    if delivery.kind == DeliveryKind.FALLBACK:
        return  # one hop: a fallback of a fallback would chase a failure around the channels
    fallback = channel.fallback if channel.fallback_id and channel.fallback_id != channel.pk else None
    if fallback is None or not fallback.enabled:
        fallback = Channel.objects.filter(enabled=True).exclude(pk=channel.pk).exclude(kind=channel.kind).order_by("pk").first()
    if fallback is None:
        log.error("no fallback channel for the failed delivery %s of channel %s", delivery.pk, channel.name)
        return
    at = now()
    subject = bilingual("Channel {name} failed: {subject}", name=channel.name, subject=delivery.subject)[:255]
    body = (f"{delivery.body}\n\n" + bilingual("Not delivered on {name} ({kind}) after {attempts} attempt(s): {error}",
                                               name=channel.name, kind=channel.kind, attempts=delivery.attempts,
                                               error=error[:500]))
    fallback_row, created = Delivery.objects.get_or_create(key=f"fallback:{delivery.pk}", defaults={
        "channel": fallback, "kind": DeliveryKind.FALLBACK, "recipients": "", "level": delivery.level,
        "subject": subject, "body": body, "due_at": at, "created_at": at})
    if created:
        fallback_row.alerts.set(list(delivery.alerts.all()))
        flush_soon([fallback.pk])


def deliveries_sweep() -> int:
    """Return what crashed workers left SENDING; flush every channel with something due.
    Returns how many calls succeeded."""
    at = now()
    with transaction.atomic():
        stale = list(Delivery.objects.select_for_update(skip_locked=True).select_related("channel")
                     .filter(status=DeliveryStatus.SENDING, claimed_until__lt=at))
        for delivery in stale:
            try:
                idempotent = plugin_for(delivery.channel.kind).idempotent
            except ChannelFailure:
                idempotent = True
            if idempotent:
                delivery.status, delivery.claimed_until, delivery.due_at = DeliveryStatus.PENDING, None, at
                delivery.last_error = bilingual("the worker sending it stopped; sending again")
                delivery.save(update_fields=["status", "claimed_until", "due_at", "last_error"])
            else:
                _fail(delivery, delivery.channel,
                      bilingual("the worker sending it stopped; outcome unknown, not sent again (the channel is not idempotent)"))
    channels = (Delivery.objects.filter(status=DeliveryStatus.PENDING, due_at__lte=at)
                .filter(Q(channel__paused_until__isnull=True) | Q(channel__paused_until__lte=at))
                .values_list("channel_id", flat=True).distinct())
    return sum(channel_flush(channel_id) for channel_id in sorted(set(channels)))


def delivery_retry(*, delivery_id: int, user: str) -> bool:
    """An operator owes a failed delivery again (its attempts start over). Audited."""
    from audit.services import Actor, audit_record

    with transaction.atomic():
        delivery = Delivery.objects.select_for_update().filter(pk=delivery_id, status=DeliveryStatus.FAILED).first()
        if delivery is None:
            return False
        delivery.status, delivery.attempts, delivery.due_at = DeliveryStatus.PENDING, 0, now()
        delivery.save(update_fields=["status", "attempts", "due_at"])
        audit_record(actor=Actor.user(user), action="alert.delivery_retried", object_type="delivery",
                     object_id=delivery.pk, before={"status": DeliveryStatus.FAILED},
                     after={"status": DeliveryStatus.PENDING}, reason=delivery.last_error[:500])
        flush_soon([delivery.channel_id])
    return True
