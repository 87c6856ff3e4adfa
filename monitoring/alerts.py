"""Alert services: raise (deduplicated, routed), acknowledge, resolve, escalate.

* :func:`alert_raise`: one condition is one alert row while it is open (its ``dedup_key``); a
  repeat counts on it and notifies again only after the routing rule's ``renotify_seconds`` and
  never once it is acknowledged. A new alert gets one delivery per channel and recipients of
  every routing rule that matches it, due after the rule's grouping window.
* :func:`alert_acknowledge` / :func:`alert_resolve`: by an operator (admin), audited; what was
  still owed for the alert is cancelled: no notification after acknowledgement.
* :func:`alerts_escalate`: run periodically (Celery beat, the embedded scheduler); a CRITICAL
  alert still open at its ``next_escalation_at`` goes to the escalation channels. The time is in
  the alert row, so a restarted worker carries on where the last one stopped.

Every change is announced as an ``alert`` domain event after commit (the dashboard's stream).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q

from audit.services import Actor, audit_record
from monitoring.models import (
    LEVEL_RANK,
    Alert,
    AlertStatus,
    Channel,
    Delivery,
    DeliveryKind,
    DeliveryStatus,
    Level,
    RoutingRule,
)
from trading.clock import now
from trading.events import EventKind, publish
from trading.i18n import bilingual

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Route:
    channel: Channel
    recipients: str
    group_seconds: int


def _listed(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def rule_matches(rule: RoutingRule, alert: Alert) -> bool:
    """Whether ``rule`` routes ``alert``: its level at or above the rule's, its code listed (a
    trailing ``*`` is a prefix) or no code listed, its account listed or no account listed."""
    if LEVEL_RANK[Level(alert.level)] < LEVEL_RANK[Level(rule.min_level)]:
        return False
    codes = _listed(rule.codes)
    if codes and not any(alert.code == c or (c.endswith("*") and alert.code.startswith(c[:-1])) for c in codes):
        return False
    accounts = _listed(rule.accounts)
    return not accounts or alert.account in accounts


def rules_for(alert: Alert) -> list[RoutingRule]:
    rules = RoutingRule.objects.filter(enabled=True).prefetch_related("channels", "escalation_channels")
    return [rule for rule in rules if rule_matches(rule, alert)]


def _routes(rules: list[RoutingRule], *, escalation: bool = False) -> list[Route]:
    """One route per (channel, recipients): two rules naming the same ones send once."""
    seen: dict[tuple[int, str], Route] = {}
    for rule in rules:
        channels = rule.escalation_channels.all() if escalation else rule.channels.all()
        recipients = rule.escalation_recipients if escalation else rule.recipients
        for channel in channels:
            if not channel.enabled:
                continue
            key = (channel.pk, ",".join(sorted(_listed(recipients))))
            if key not in seen:
                seen[key] = Route(channel, key[1], 0 if escalation else rule.group_seconds)
    return list(seen.values())


def alert_text(alert: Alert) -> tuple[str, str]:
    """The subject and body a channel sends for one alert."""
    subject = f"[{alert.level}] {alert.title}"
    lines = [alert.title]
    if alert.detail:
        lines.append(alert.detail)
    if alert.account:
        lines.append(bilingual("Account: {account}", account=alert.account))
    lines.append(bilingual("First seen {first}, last seen {last}, {count} time(s)",
                           first=f"{alert.first_seen_at.astimezone():%Y-%m-%d %H:%M:%S}",
                           last=f"{alert.last_seen_at.astimezone():%H:%M:%S}", count=alert.occurrences))
    lines.append(f"#{alert.pk} {alert.code}")
    return subject[:255], "\n".join(lines)


def _owe(alert: Alert, routes: list[Route], *, kind: str, stage: str) -> list[int]:
    """Deliveries of ``alert`` to ``routes`` (one each, keyed so a stage is never owed twice).
    Returns the channels to flush."""
    subject, body = alert_text(alert)
    at = now()
    channels = []
    for route in routes:
        key = f"a{alert.pk}:{stage}:c{route.channel.pk}:{route.recipients}"[:255]
        if kind == DeliveryKind.ESCALATION:
            subject = bilingual("Escalated: {subject}", subject=subject)[:255]
        due = at + timedelta(seconds=route.group_seconds)
        if route.group_seconds:  # a window already open for these recipients: this alert joins it
            opened = (Delivery.objects.filter(channel=route.channel, recipients=route.recipients,
                                              status=DeliveryStatus.PENDING, due_at__gt=at, attempts=0)
                      .order_by("due_at").values_list("due_at", flat=True).first())
            due = min(due, opened) if opened else due
        delivery, created = Delivery.objects.get_or_create(key=key, defaults={
            "channel": route.channel, "kind": kind, "recipients": route.recipients, "level": alert.level,
            "subject": subject, "body": body, "due_at": due, "created_at": at})
        if created:
            delivery.alerts.add(alert)
            channels.append(route.channel.pk)
    return channels


def alert_payload(alert: Alert, event: str) -> dict[str, Any]:
    return {"event": event, "id": alert.pk, "code": alert.code, "level": alert.level, "status": alert.status,
            "title": alert.title, "detail": alert.detail, "occurrences": alert.occurrences,
            "acknowledged_by": alert.acknowledged_by, "at": alert.last_seen_at.isoformat()}


def alert_raise(*, code: str, level: str, title: str, detail: str = "", account: str = "", event_kind: str = "",
                data: dict[str, Any] | None = None, dedup_key: str = "") -> Alert:
    """Raise (or count again) the alert ``code`` of ``account``; route and owe its deliveries.

    ``title`` and ``detail`` are user-facing text, already rendered by ``bilingual``. The same
    ``dedup_key`` (default: code and account) while an alert is open or acknowledged is the same
    alert. Runs in its own transaction; deliveries are flushed after commit."""
    key = (dedup_key or f"{code}:{account}")[:255]
    for _ in range(3):
        try:
            with transaction.atomic():
                alert, channels = _raise_locked(key, code=code, level=level, title=title, detail=detail,
                                                account=account, event_kind=event_kind, data=data or {})
            break
        except IntegrityError:  # another process opened the same alert first: count on it
            continue
    else:
        raise RuntimeError(f"could not raise alert {key}")
    from monitoring.services import flush_soon

    flush_soon(channels)
    return alert


def _raise_locked(key: str, **fields: Any) -> tuple[Alert, list[int]]:
    at = now()
    existing = Alert.objects.select_for_update().filter(dedup_key=key).exclude(status=AlertStatus.RESOLVED).first()
    if existing is not None:
        existing.occurrences += 1
        existing.last_seen_at = at
        existing.detail = fields["detail"] or existing.detail
        existing.data = fields["data"] or existing.data
        raised = LEVEL_RANK[Level(fields["level"])] > LEVEL_RANK[Level(existing.level)]
        if raised:
            existing.level = fields["level"]
        existing.save(update_fields=["occurrences", "last_seen_at", "detail", "data", "level"])
        channels: list[int] = []
        if existing.status == AlertStatus.OPEN:
            rules = rules_for(existing)
            quiet = min((r.renotify_seconds for r in rules), default=0)
            last = existing.last_notified_at or existing.first_seen_at
            if raised or at - last >= timedelta(seconds=quiet):
                existing.last_notified_at = at
                existing.save(update_fields=["last_notified_at"])
                channels = _owe(existing, _routes(rules), kind=DeliveryKind.ALERT, stage=f"n{existing.occurrences}")
                _schedule_escalation(existing, rules)
        publish(EventKind.ALERT, existing.account, alert_payload(existing, "repeated"))
        return existing, channels
    with transaction.atomic():  # a savepoint: a concurrent insert fails this one alone
        alert = Alert.objects.create(dedup_key=key, first_seen_at=at, last_seen_at=at, last_notified_at=at, **fields)
    rules = rules_for(alert)
    channels = _owe(alert, _routes(rules), kind=DeliveryKind.ALERT, stage="n1")
    _schedule_escalation(alert, rules)
    publish(EventKind.ALERT, alert.account, alert_payload(alert, "raised"))
    return alert, channels


def _schedule_escalation(alert: Alert, rules: list[RoutingRule]) -> None:
    if alert.level != Level.CRITICAL or alert.next_escalation_at is not None:
        return
    waits = [r.escalate_after_seconds for r in rules if r.escalate_after_seconds and r.max_escalations > alert.escalations]
    if waits:
        alert.next_escalation_at = alert.last_seen_at + timedelta(seconds=min(waits))
        alert.save(update_fields=["next_escalation_at"])


def _cancel_owed(alert: Alert) -> int:
    """Cancel what is still owed for ``alert`` alone (a digest that carries other open alerts
    still goes, without it)."""
    owed = Delivery.objects.select_for_update(skip_locked=True).filter(alerts=alert, status=DeliveryStatus.PENDING)
    cancelled = 0
    for delivery in owed:
        if delivery.alerts.filter(status=AlertStatus.OPEN).exclude(pk=alert.pk).exists():
            continue
        delivery.status = DeliveryStatus.CANCELLED
        delivery.last_error = bilingual("alert acknowledged or resolved before sending")
        delivery.save(update_fields=["status", "last_error"])
        cancelled += 1
    return cancelled


def alert_acknowledge(*, alert_id: int, user: str, note: str = "") -> Alert:
    """An operator has seen the alert: no more notifications or escalations for it."""
    with transaction.atomic():
        alert = Alert.objects.select_for_update().get(pk=alert_id)
        if alert.status != AlertStatus.OPEN:
            return alert
        alert.status, alert.acknowledged_by, alert.acknowledged_at = AlertStatus.ACKNOWLEDGED, user, now()
        alert.next_escalation_at = None
        alert.save(update_fields=["status", "acknowledged_by", "acknowledged_at", "next_escalation_at"])
        _cancel_owed(alert)
        audit_record(actor=Actor.user(user), action="alert.acknowledged", object_type="alert", object_id=alert.pk,
                     account=alert.account, before={"status": AlertStatus.OPEN}, after={"status": alert.status},
                     reason=note)
        publish(EventKind.ALERT, alert.account, alert_payload(alert, "acknowledged"))
    return alert


def alert_resolve(*, alert_id: int, user: str = "", note: str = "") -> Alert:
    """The condition is over (an operator says so, or its monitor saw it end: ``user`` empty)."""
    with transaction.atomic():
        alert = Alert.objects.select_for_update().get(pk=alert_id)
        if alert.status == AlertStatus.RESOLVED:
            return alert
        before = alert.status
        alert.status, alert.resolved_by, alert.resolved_at = AlertStatus.RESOLVED, user or "system", now()
        alert.next_escalation_at = None
        alert.save(update_fields=["status", "resolved_by", "resolved_at", "next_escalation_at"])
        _cancel_owed(alert)
        audit_record(actor=Actor.user(user) if user else Actor.system("monitoring"), action="alert.resolved",
                     object_type="alert", object_id=alert.pk, account=alert.account, before={"status": before},
                     after={"status": alert.status}, reason=note)
        publish(EventKind.ALERT, alert.account, alert_payload(alert, "resolved"))
    return alert


def alerts_resolve_key(dedup_key: str, *, note: str = "") -> list[Alert]:
    """Resolve the open alert of ``dedup_key`` (its condition ended), if there is one."""
    ids = list(Alert.objects.filter(dedup_key=dedup_key).exclude(status=AlertStatus.RESOLVED).values_list("pk", flat=True))
    return [alert_resolve(alert_id=pk, note=note) for pk in ids]


def alerts_escalate(limit: int = 100) -> int:
    """Escalate the CRITICAL alerts still open past their ``next_escalation_at``. Returns how many.
    Rows are claimed with SKIP LOCKED: several schedulers never escalate one alert twice."""
    at = now()
    channels: list[int] = []
    done = 0
    with transaction.atomic():
        due = list(Alert.objects.select_for_update(skip_locked=True)
                   .filter(status=AlertStatus.OPEN, next_escalation_at__lte=at).order_by("next_escalation_at")[:limit])
        for alert in due:
            rules = [r for r in rules_for(alert) if r.escalate_after_seconds]
            alert.escalations += 1
            channels += _owe(alert, _routes(rules, escalation=True), kind=DeliveryKind.ESCALATION,
                             stage=f"e{alert.escalations}")
            more = [r.escalate_after_seconds for r in rules if r.max_escalations > alert.escalations]
            alert.next_escalation_at = at + timedelta(seconds=min(more)) if more else None
            alert.save(update_fields=["escalations", "next_escalation_at"])
            audit_record(actor=Actor.system("monitoring"), action="alert.escalated", object_type="alert",
                         object_id=alert.pk, account=alert.account, after={"escalations": alert.escalations})
            publish(EventKind.ALERT, alert.account, alert_payload(alert, "escalated"))
            done += 1
    from monitoring.services import flush_soon

    flush_soon(channels)
    return done


def open_alerts(level: str | None = None) -> Any:
    """Alerts not resolved, newest first (a selector for the dashboard)."""
    query = Alert.objects.filter(~Q(status=AlertStatus.RESOLVED))
    return query.filter(level=level) if level else query
