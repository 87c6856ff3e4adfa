"""Alerts: deduplication, grouping, routing, acknowledgement, escalation (across a restart)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection, transaction

from monitoring.alerts import alert_acknowledge, alert_raise, alert_resolve, alerts_escalate
from monitoring.delivery import deliveries_sweep
from monitoring.models import Alert, AlertStatus, Delivery, DeliveryKind, DeliveryStatus
from tests.monitoring.conftest import email_channel, route, wecom_channel
from trading.events import EventKind, publish

pytestmark = pytest.mark.django_db(transaction=True)
ROOT = Path(__file__).resolve().parents[2]


def broker_drops(account: str = "acc1") -> None:
    with transaction.atomic():
        publish(EventKind.BROKER_LINK, account, {"account_id": 1, "state": "DOWN", "error": "session lost"})


def test_a_repeated_condition_is_one_alert_counted_not_a_second_notification(smtp, clock) -> None:
    route("all", email_channel(), renotify_seconds=600)
    broker_drops()
    clock.advance(30)
    broker_drops()
    alert = Alert.objects.get()
    assert alert.occurrences == 2 and alert.status == AlertStatus.OPEN
    assert Delivery.objects.count() == 1
    clock.advance(600)
    broker_drops()  # still down ten minutes later: said again, with the count
    mails = smtp.wait(2)
    assert len(mails) == 2 and "3 time(s)" in mails[1].body
    assert Alert.objects.count() == 1


def test_alerts_within_the_grouping_window_go_out_as_one_message(smtp, clock) -> None:
    route("all", email_channel(), group_seconds=10)
    for account in ("acc1", "acc2", "acc3"):
        broker_drops(account)
        clock.advance(2)
    assert smtp.mails == []  # the window is open
    clock.advance(5)
    deliveries_sweep()
    [mail] = smtp.wait(1)
    assert "3 alerts" in mail.subject and all(a in mail.body for a in ("acc1", "acc2", "acc3"))


def test_routing_by_level_code_and_account(smtp, webhooks, clock) -> None:
    wecom = wecom_channel(webhooks)
    route("critical to wecom", wecom, min_level="CRITICAL")
    route("acc2 broker to email", email_channel(), codes="broker.*", accounts="acc2")
    alert_raise(code="order.rejected", level="WARNING", title="w", account="acc2")  # neither: a warning, not broker
    broker_drops("acc1")  # critical: wecom only
    broker_drops("acc2")  # critical, broker, acc2: both
    assert len(webhooks.accepted("/wecom")) == 2
    [mail] = smtp.wait(1)
    assert "acc2" in mail.subject


def test_no_notification_after_acknowledgement(smtp, clock) -> None:
    route("all", email_channel(), group_seconds=30, escalate_after_seconds=60)
    broker_drops()
    alert = Alert.objects.get()
    alert_acknowledge(alert_id=alert.pk, user="ops1")
    assert Delivery.objects.get().status == DeliveryStatus.CANCELLED  # owed in the window: not sent
    clock.advance(31)
    deliveries_sweep()
    broker_drops()  # the same condition again: counted, not notified
    clock.advance(600)
    alerts_escalate()
    deliveries_sweep()
    assert smtp.mails == []
    alert.refresh_from_db()
    assert (alert.status, alert.occurrences, alert.acknowledged_by, alert.escalations) == ("ACKNOWLEDGED", 2, "ops1", 0)
    from audit.models import AuditEvent

    assert AuditEvent.objects.filter(action="alert.acknowledged", object_id=str(alert.pk), actor="ops1").exists()


def test_an_unacknowledged_critical_alert_escalates_until_acknowledged(smtp, webhooks, clock) -> None:
    route("all", email_channel(), escalate_after_seconds=60, max_escalations=3,
          escalation_channels=[wecom_channel(webhooks)])
    broker_drops()
    clock.advance(59)
    assert alerts_escalate() == 0
    clock.advance(2)
    assert alerts_escalate() == 1
    [escalated] = webhooks.accepted("/wecom")
    assert "Escalated" in escalated.json["text"]["content"]
    clock.advance(61)
    assert alerts_escalate() == 1
    alert_acknowledge(alert_id=Alert.objects.get().pk, user="ops1")
    clock.advance(600)
    assert alerts_escalate() == 0
    assert len(webhooks.accepted("/wecom")) == 2


def test_a_warning_does_not_escalate(webhooks, clock) -> None:
    route("all", wecom_channel(webhooks), escalate_after_seconds=60, escalation_channels=[wecom_channel(webhooks, "w2")])
    alert_raise(code="order.rejected", level="WARNING", title="w", account="acc1")
    clock.advance(3600)
    assert alerts_escalate() == 0


def test_resolving_ends_the_alert_and_the_next_occurrence_is_a_new_one(smtp, clock) -> None:
    route("all", email_channel())
    broker_drops()
    first = Alert.objects.get()
    alert_resolve(alert_id=first.pk, user="ops1")
    broker_drops()
    assert Alert.objects.count() == 2 and len(smtp.wait(2)) == 2


def test_escalation_survives_a_restart(smtp, webhooks, require_postgres) -> None:
    """The alert is raised here; a new process (the embedded scheduler, run once) escalates it:
    nothing of this process's memory is needed."""
    route("all", email_channel(), escalate_after_seconds=1, escalation_channels=[wecom_channel(webhooks)])
    broker_drops()
    assert len(smtp.wait(1)) == 1
    alert = Alert.objects.get()
    assert alert.next_escalation_at is not None
    time.sleep(1.2)
    db = connection.settings_dict
    url = f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    env = {**os.environ, "DATABASE_URL": url, "REDIS_URL": "", "DJANGO_SETTINGS_MODULE": "trading.settings",
           "MONITORING_FLUSH_IN_THREAD": "0"}  # the scheduler sends itself: --once exits right after
    result = subprocess.run([sys.executable, "manage.py", "run_scheduler", "--once"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    [escalated] = webhooks.wait("/wecom", 1)
    assert "Escalated" in escalated.json["text"]["content"]
    alert.refresh_from_db()
    assert alert.escalations == 1
    assert Delivery.objects.filter(kind=DeliveryKind.ESCALATION, status=DeliveryStatus.SENT).count() == 1
