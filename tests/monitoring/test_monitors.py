"""Monitors: events published after commit (as the services publish them) and periodic checks
turned into alerts at their configured levels."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import transaction

from monitoring.models import Alert, AlertStatus, Heartbeat, MonitorSetting
from monitoring.monitors import (
    calendar_horizon,
    heartbeat_beat,
    heartbeats_check,
    outbox_backlog,
    settings_cache_clear,
)
from tests.monitoring.conftest import email_channel, route
from trading.events import EventKind, publish

pytestmark = pytest.mark.django_db(transaction=True)


def event(kind: str, account: str, **data) -> None:
    with transaction.atomic():
        publish(kind, account, data)


def open_alerts(code: str) -> list[Alert]:
    return list(Alert.objects.filter(code=code).exclude(status=AlertStatus.RESOLVED))


def test_a_broker_that_drops_is_critical_and_its_return_resolves_it_with_info(script, smtp, clock) -> None:
    from brokers.registry import broker_for
    from trading.errors import BrokerUnavailable
    from trading.models import Account

    route("all", email_channel())
    account = Account.objects.get(name="acc1")
    script.connected = False
    with pytest.raises(BrokerUnavailable):
        broker_for(account).query_orders()
    [down] = open_alerts("broker.disconnected")
    assert down.level == "CRITICAL" and down.account == "acc1"
    script.connected = True
    clock.advance(120)  # past the back-off: the next call probes and gets through
    broker_for(account).query_orders()
    down.refresh_from_db()
    assert down.status == AlertStatus.RESOLVED and down.resolved_by == "system"
    [up] = Alert.objects.filter(code="broker.reconnected")
    assert up.level == "INFO"
    subjects = [m.subject for m in smtp.wait(2)]
    assert subjects[0].startswith("[CRITICAL]") and subjects[1].startswith("[INFO]")
    assert "restored" in subjects[1]


def test_the_level_of_a_monitor_is_what_the_operator_set(clock) -> None:
    MonitorSetting.objects.create(code="broker.disconnected", level="WARNING")
    settings_cache_clear()
    event(EventKind.BROKER_LINK, "acc1", state="DOWN", error="x")
    assert Alert.objects.get().level == "WARNING"


def test_a_disabled_monitor_raises_nothing(clock) -> None:
    MonitorSetting.objects.create(code="risk.warn", level="WARNING", enabled=False)
    settings_cache_clear()
    event(EventKind.RISK, "acc1", rule="max_order_amount", action="WARN", message="m", order=1)
    assert not Alert.objects.exists()


def test_a_broker_rejection_is_an_alert_a_risk_rejection_of_the_order_is_not_an_order_failure(clock) -> None:
    event(EventKind.ORDER, "acc1", id=7, status="REJECTED", event="BROKER_REJECTED", reason="委托价格超出价格笼子范围")
    event(EventKind.ORDER, "acc1", id=8, status="REJECTED", event="RISK_REJECTED", reason="limit")
    [alert] = open_alerts("order.rejected")
    assert alert.level == "WARNING" and "价格笼子" in alert.detail and "7" in alert.detail


def test_an_order_whose_answer_was_lost_is_an_alert(clock) -> None:
    event(EventKind.ORDER, "acc1", id=9, status="UNKNOWN", event="BROKER_TIMED_OUT", reason="timeout")
    assert open_alerts("order.unknown")


def test_repeated_broker_rejections_are_critical(script, clock) -> None:
    from audit.services import Actor
    from brokers.adapters.scripted import Reply
    from orders.services import OrderInput, order_submit
    from tests import factories

    MonitorSetting.objects.create(code="order.repeated_rejections", level="CRITICAL", threshold=3, window_seconds=300)
    settings_cache_clear()
    for n in range(3):
        script.on_place(Reply.REFUSE, "资金不足")
        order = order_submit(OrderInput(**factories.order_body(client_order_id=f"r-{n}")),
                             actor=Actor.api_key("t")).order
        order.refresh_from_db()
        assert order.status == "REJECTED"
        # what the order services publish with the change (the live stream's part of issue 11)
        event(EventKind.ORDER, "acc1", id=order.pk, status="REJECTED", event="BROKER_REJECTED", reason="资金不足")
        assert bool(open_alerts("order.repeated_rejections")) == (n == 2)
    [alert] = open_alerts("order.repeated_rejections")
    assert alert.level == "CRITICAL" and alert.data["count"] == 3


def test_a_risk_rule_with_action_warn_raises_a_warning_per_rule(clock) -> None:
    event(EventKind.RISK, "acc1", rule="max_order_amount", action="WARN", message="单笔金额接近上限", order=1)
    event(EventKind.RISK, "acc1", rule="max_order_amount", action="WARN", message="again", order=2)
    event(EventKind.RISK, "acc1", rule="daily_order_count", action="WARN", message="m", order=3)
    event(EventKind.RISK, "acc1", rule="price_band", action="REVIEW", message="held", order=4)
    alerts = open_alerts("risk.warn")
    assert sorted((a.data["rule"], a.occurrences) for a in alerts) == [("daily_order_count", 1), ("max_order_amount", 2)]


def test_a_cash_change_beyond_the_threshold_is_a_warning(clock, settings) -> None:
    settings.MONITORING_MONITORS = {"balance.cash_change": {"threshold": "100000"}}
    settings_cache_clear()
    event(EventKind.BALANCE, "acc1", cash="1000000.00", available="1000000.00", frozen="0.00")
    event(EventKind.BALANCE, "acc1", cash="950000.00", available="950000.00", frozen="0.00")
    assert not Alert.objects.exists()
    event(EventKind.BALANCE, "acc1", cash="700000.00", available="700000.00", frozen="0.00")
    [alert] = open_alerts("balance.cash_change")
    assert "-250,000.00" in alert.title


def test_a_missing_heartbeat_is_critical_and_a_new_beat_resolves_it(clock, settings) -> None:
    settings.MONITORING_HEARTBEATS = ["worker", "scheduler"]
    heartbeat_beat("worker")
    heartbeat_beat("scheduler")
    assert heartbeats_check() == []
    clock.advance(45)
    heartbeat_beat("scheduler")
    clock.advance(30)  # worker silent for 75 s, the limit is 60
    assert heartbeats_check() == ["worker"]
    [alert] = open_alerts("system.heartbeat")
    assert alert.level == "CRITICAL" and "worker" in alert.title
    heartbeat_beat("worker")
    assert heartbeats_check() == []
    alert.refresh_from_db()
    assert alert.status == AlertStatus.RESOLVED


def test_a_process_that_never_beat_is_missing(clock, settings) -> None:
    settings.MONITORING_HEARTBEATS = ["worker"]
    assert heartbeats_check() == ["worker"] and not Heartbeat.objects.exists()


def test_the_beat_task_and_the_scheduler_write_their_heartbeats(clock) -> None:
    from monitoring.tasks import heartbeat
    from trading import periodic

    heartbeat.delay()
    periodic.JOBS["monitoring.heartbeat"].call()  # what run_scheduler runs
    assert set(Heartbeat.objects.values_list("name", flat=True)) == {"worker", "scheduler"}


def test_an_outbox_backlog_is_a_warning_unless_the_broker_is_down(script, clock, settings) -> None:
    from django.utils import timezone

    from audit.services import Actor
    from orders.models import Order
    from orders.services import OrderInput, order_submit
    from tests import factories

    settings.ORDERS_DISPATCH = "relay"  # nothing dispatches the order in this test: it stays owed
    order = order_submit(OrderInput(**factories.order_body(client_order_id="owed-1")), actor=Actor.api_key("t")).order
    assert Order.objects.get(pk=order.pk).status == "NEW"
    assert outbox_backlog() == 0  # within its window
    Order.objects.filter(pk=order.pk).update(updated_at=timezone.now() - timedelta(seconds=60))
    assert outbox_backlog() == 1
    [alert] = open_alerts("orders.outbox_backlog")
    Order.objects.filter(pk=order.pk).update(status="SUBMITTED")
    outbox_backlog()
    alert.refresh_from_db()
    assert alert.status == AlertStatus.RESOLVED


def test_the_calendar_horizon_warns_60_days_ahead(clock) -> None:
    from trading.calendar import coverage

    last = coverage()[1]
    clock.at = clock.at.replace(year=last.year, month=10, day=1)
    assert calendar_horizon() > 60 and not Alert.objects.exists()
    clock.at = clock.at.replace(month=11, day=23)
    assert calendar_horizon() == (last - date(last.year, 11, 23)).days
    [alert] = open_alerts("calendar.horizon")
    assert alert.level == "WARNING" and last.isoformat() in alert.title
    assert "add_holidays" in alert.detail and "trading day" in alert.detail


def test_add_holidays_extends_the_calendar_and_says_what_it_does_not_know(tmp_path: Path) -> None:
    from trading import calendar

    path = tmp_path / "holidays.csv"
    path.write_text(calendar.DEFAULT_HOLIDAYS_PATH.read_text())
    last = calendar.coverage()[1]
    year = last.year + 1
    days = [d for d in (date(year, 1, 1), date(year, 2, 15), date(year, 2, 16), date(year, 2, 17), date(year, 2, 18),
                        date(year, 10, 1), date(year, 10, 4)) if d.weekday() < 5]
    with pytest.raises(Exception, match="--year"):  # a new year is the whole list, said explicitly
        _run("add_holidays", days[0].isoformat(), "--path", str(path))
    with pytest.raises(Exception, match="only 1"):
        _run("add_holidays", days[0].isoformat(), "--year", str(year), "--path", str(path))
    out = _run("add_holidays", *[f"{d}:春节" for d in days], "--year", str(year), "--path", str(path))
    assert f"+ {days[0]}" in out and f"covering up to {year}-12-31" in out
    rows = calendar.read_holidays_csv(path)
    assert all(rows[d] == "春节" for d in days)
    saturday = next(date(year, 1, n) for n in range(1, 8) if date(year, 1, n).weekday() == 5)
    with pytest.raises(Exception, match="weekend"):
        _run("add_holidays", saturday.isoformat(), "--path", str(path))


def _run(*args: str) -> str:
    from io import StringIO

    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_thresholds_in_admin_rows_override_settings(clock, settings) -> None:
    settings.MONITORING_MONITORS = {"balance.cash_change": {"threshold": "100"}}
    MonitorSetting.objects.create(code="balance.cash_change", level="CRITICAL", threshold=Decimal("1000"))
    settings_cache_clear()
    event(EventKind.BALANCE, "acc1", cash="10000.00")
    event(EventKind.BALANCE, "acc1", cash="9500.00")
    assert not Alert.objects.exists()
    event(EventKind.BALANCE, "acc1", cash="8000.00")
    assert Alert.objects.get().level == "CRITICAL"


def test_the_days_loss_crossing_the_warning_then_the_stop_line(script, clock) -> None:
    from audit.services import Actor
    from brokers.services import opening_positions_load
    from monitoring.monitors import pnl_lines_all
    from tests import factories

    opening_positions_load(account_name="acc1", actor=Actor.system("test"), rows=[
        {"symbol": "600000.SH", "quantity": "300000", "avg_cost": "10.00", "acquired": "2020-01-02"}])
    # start of day: 1,000,000 cash + 300,000 shares at the previous close 10.00 = 4,000,000
    factories.quote("600000.SH", last="9.70", prev_close="10.00")  # -90,000: 2.25%
    event(EventKind.POSITION, "acc1", symbol="600000.SH", quantity=300000)
    assert not Alert.objects.exists()
    factories.quote("600000.SH", last="9.60", prev_close="10.00")  # -120,000: 3%
    pnl_lines_all()  # prices move without events: the periodic check
    [warning] = open_alerts("pnl.warning_line")
    assert warning.level == "WARNING" and warning.data["loss_percent"] == "3.00"
    factories.quote("600000.SH", last="9.30", prev_close="10.00")  # -210,000: 5.25%
    pnl_lines_all()
    [stop] = open_alerts("pnl.stop_line")
    assert stop.level == "CRITICAL" and "5.25%" in stop.title
    assert open_alerts("pnl.warning_line")[0].occurrences == 2  # one alert a day per line, counted


def test_a_process_publishing_events_notices_a_worker_that_stopped_beating(clock, settings) -> None:
    from monitoring import monitors

    settings.MONITORING_HEARTBEATS = ["worker"]
    settings.MONITORING_HEARTBEAT_PIGGYBACK_SECONDS = 30
    monitors._heartbeat_checked[0] = 0.0
    event(EventKind.ORDER, "acc1", id=1, status="NEW")
    assert not Alert.objects.exists()  # never beat here: not this process's business
    heartbeat_beat("worker")
    clock.advance(120)
    monitors._heartbeat_checked[0] = 0.0
    event(EventKind.ORDER, "acc1", id=1, status="SUBMITTED")
    [alert] = open_alerts("system.heartbeat")
    assert "worker" in alert.title


def test_an_order_rate_spike_and_a_high_cancel_ratio(script, clock) -> None:
    from audit.services import Actor
    from monitoring.monitors import order_activity
    from orders.models import Order
    from orders.services import OrderInput, order_submit
    from tests import factories

    MonitorSetting.objects.create(code="orders.rate_spike", level="WARNING", threshold=15, window_seconds=60)
    settings_cache_clear()
    for n in range(20):
        order_submit(OrderInput(**factories.order_body(client_order_id=f"s-{n}", quantity=100)),
                     actor=Actor.api_key("t"))
    order_activity()
    [spike] = open_alerts("orders.rate_spike")
    assert spike.account == "acc1" and spike.data["count"] == 20
    assert not open_alerts("orders.cancel_ratio")
    Order.objects.filter(pk__in=list(Order.objects.values_list("pk", flat=True)[:17])).update(status="CANCELLED")
    order_activity()
    [ratio] = open_alerts("orders.cancel_ratio")
    assert ratio.data == {"count": 20, "cancelled": 17}


def test_a_part_reported_down_is_an_alert_until_it_is_up_again(clock) -> None:
    event(EventKind.HEALTH, "", part="redis", state="DOWN", detail="connection refused")
    event(EventKind.HEALTH, "", part="redis", state="DOWN", detail="connection refused")
    [alert] = open_alerts("system.health")
    assert alert.occurrences == 2 and "redis" in alert.title
    event(EventKind.HEALTH, "", part="redis", state="UP")
    alert.refresh_from_db()
    assert alert.status == AlertStatus.RESOLVED
