"""The delivery engine against failing, stalling and throttling endpoints: retries with back-off,
a visible failed delivery and the alert on another channel, digests under a storm."""

from __future__ import annotations

import pytest
from django.db import transaction

from monitoring.delivery import deliveries_sweep
from monitoring.models import Delivery, DeliveryAttempt, DeliveryKind, DeliveryStatus
from tests.monitoring.conftest import dingtalk_channel, email_channel, make_channel, route
from trading.events import EventKind, publish

pytestmark = pytest.mark.django_db(transaction=True)


def broker_drops(account: str = "acc1") -> None:
    with transaction.atomic():
        publish(EventKind.BROKER_LINK, account, {"account_id": 1, "state": "DOWN", "error": "session lost"})


def risk_warns(account: str, rule: str = "max_order_amount") -> None:
    with transaction.atomic():
        publish(EventKind.RISK, account, {"rule": rule, "action": "WARN", "message": "near the limit", "order": 1})


def test_a_failing_channel_is_retried_with_backoff_then_fails_visibly_and_the_alert_goes_by_email(
        webhooks, smtp, clock) -> None:
    webhooks.dingtalk.mode = "500"
    route("ding", dingtalk_channel(webhooks, max_attempts=3, fallback=email_channel()))
    broker_drops()
    delivery = Delivery.objects.get(channel__kind="dingtalk")
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.PENDING, 1)
    first_wait = (delivery.due_at - clock.at).total_seconds()
    assert 1.6 <= first_wait <= 2.4  # the first back-off: 2 s, jittered
    assert deliveries_sweep() == 0 and len(webhooks.of("/dingtalk")) == 1  # not due yet: not called
    clock.advance(first_wait)
    deliveries_sweep()
    delivery.refresh_from_db()
    assert delivery.attempts == 2 and 3.2 <= (delivery.due_at - clock.at).total_seconds() <= 4.8  # doubled
    clock.advance(5)
    deliveries_sweep()
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.FAILED, 3)
    assert "HTTP 500" in delivery.last_error
    assert len(webhooks.of("/dingtalk")) == 3
    assert list(DeliveryAttempt.objects.filter(delivery=delivery).values_list("ok", flat=True)) == [False] * 3
    [mail] = smtp.wait(1)
    assert "Broker connection of acc1 lost" in mail.subject and "HTTP 500" in mail.body
    fallback = Delivery.objects.get(kind=DeliveryKind.FALLBACK)
    assert fallback.status == DeliveryStatus.SENT and list(fallback.alerts.all()) == list(delivery.alerts.all())


def test_a_channel_that_comes_back_delivers_on_the_next_attempt(webhooks, clock) -> None:
    webhooks.dingtalk.mode = "500"
    route("ding", dingtalk_channel(webhooks))
    broker_drops()
    webhooks.dingtalk.mode = "ok"
    clock.advance(3)
    deliveries_sweep()
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.SENT, 2)
    assert len(webhooks.accepted("/dingtalk")) == 1


def test_a_webhook_that_times_out_is_retried(webhooks, clock) -> None:
    webhooks.dingtalk.mode, webhooks.dingtalk.stall_seconds = "stall", 1.5  # the channel waits 1 s
    route("ding", dingtalk_channel(webhooks))
    broker_drops()
    delivery = Delivery.objects.get()
    assert delivery.status == DeliveryStatus.PENDING and "no answer within 1 s" in delivery.last_error
    webhooks.dingtalk.mode = "ok"
    clock.advance(3)
    deliveries_sweep()
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SENT


def test_an_sms_whose_answer_is_lost_is_not_sent_again_and_the_alert_goes_by_email(webhooks, smtp, clock) -> None:
    webhooks.sms.mode, webhooks.sms.stall_seconds = "stall", 1.5
    sms = make_channel("sms", "sms", options={"provider": "http"},
                       secrets={"url": f"{webhooks.url}/sms", "token": webhooks.sms.key}, fallback=email_channel())
    route("sms", sms, recipients="13800000000")
    broker_drops()
    webhooks.wait("/sms", 1)
    delivery = Delivery.objects.get(channel=sms)
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.FAILED, 1)
    assert "not idempotent" in delivery.last_error
    clock.advance(600)
    deliveries_sweep()
    assert len(webhooks.of("/sms")) == 1  # one SMS, however long we wait
    assert smtp.wait(1)


def test_a_delivery_left_sending_by_a_dead_worker_is_sent_again_only_where_that_is_safe(webhooks, smtp, clock) -> None:
    ding = dingtalk_channel(webhooks)
    sms = make_channel("sms", "sms", options={"provider": "http"},
                       secrets={"url": f"{webhooks.url}/sms", "token": webhooks.sms.key}, fallback=email_channel())
    for channel in (ding, sms):
        Delivery.objects.create(channel=channel, recipients="13800000000", level="CRITICAL", subject="s", body="b",
                                status=DeliveryStatus.SENDING, attempts=1, due_at=clock.at, created_at=clock.at,
                                claimed_until=clock.at)
    clock.advance(1)
    deliveries_sweep()
    assert Delivery.objects.get(channel=ding).status == DeliveryStatus.SENT
    assert Delivery.objects.get(channel=sms).status == DeliveryStatus.FAILED
    assert webhooks.of("/sms") == []  # may have gone out before the crash: not sent twice
    assert smtp.wait(1)


def test_an_alert_storm_becomes_digests_within_the_robots_rate_and_nothing_is_lost(webhooks, clock) -> None:
    route("ding", dingtalk_channel(webhooks))
    accounts = [f"acc{n:03d}" for n in range(100)]
    for account in accounts:
        risk_warns(account)
    assert len(webhooks.accepted("/dingtalk")) == 20  # the robot's minute
    clock.advance(61)
    deliveries_sweep()
    requests = webhooks.of("/dingtalk")
    assert all(r.answer["errcode"] == 0 for r in requests)  # never throttled: never refused for 10 minutes
    assert len(requests) == 21  # 20 alerts one by one, then one digest of the 80 others
    text = "\n".join(r.json["markdown"]["text"] for r in requests)
    assert all(account in text for account in accounts)
    digest = Delivery.objects.get(kind=DeliveryKind.DIGEST)
    assert digest.status == DeliveryStatus.SENT and digest.alerts.count() == 80
    assert Delivery.objects.filter(status=DeliveryStatus.MERGED, merged_into=digest).count() == 80
    assert not Delivery.objects.filter(status__in=[DeliveryStatus.PENDING, DeliveryStatus.FAILED]).exists()


def test_a_throttling_robot_pauses_the_channel_and_what_waited_goes_out_as_a_digest(webhooks, clock) -> None:
    webhooks.dingtalk.per_minute = 2  # the robot takes fewer than the channel was told
    channel = dingtalk_channel(webhooks)
    route("ding", channel)
    for account in ("a1", "a2", "a3", "a4", "a5"):
        risk_warns(account)
    channel.refresh_from_db()
    throttled = [r for r in webhooks.of("/dingtalk") if r.answer["errcode"] == 130101]
    assert len(throttled) == 1  # one refusal, then the channel waits instead of knocking
    assert (channel.paused_until - clock.at).total_seconds() == 600
    clock.advance(300)
    deliveries_sweep()
    assert len(webhooks.of("/dingtalk")) == 3
    clock.advance(301)
    deliveries_sweep()
    text = "\n".join(r.json["markdown"]["text"] for r in webhooks.accepted("/dingtalk"))
    assert all(account in text for account in ("a1", "a2", "a3", "a4", "a5"))
    assert not Delivery.objects.filter(status__in=[DeliveryStatus.PENDING, DeliveryStatus.FAILED]).exists()


def test_without_redis_a_slow_channel_never_holds_up_the_publisher(webhooks, settings, require_postgres) -> None:
    import time

    settings.MONITORING_FLUSH_IN_THREAD = True  # the embedded mode's default
    webhooks.dingtalk.mode, webhooks.dingtalk.stall_seconds = "stall", 0.8
    route("ding", dingtalk_channel(webhooks))
    started = time.monotonic()
    broker_drops()
    assert time.monotonic() - started < 0.5  # the alert is stored; the call goes out on another thread
    webhooks.wait("/dingtalk", 1, timeout=10)
    for _ in range(50):
        if Delivery.objects.get().status == DeliveryStatus.SENT:
            break
        time.sleep(0.1)
    assert Delivery.objects.get().status == DeliveryStatus.SENT
