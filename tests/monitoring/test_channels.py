"""Each channel against a real local endpoint that checks what the real service checks."""

from __future__ import annotations

import logging

import pytest
from django.db import connection, transaction

from monitoring.models import Alert, Delivery, DeliveryStatus
from tests.monitoring.conftest import dingtalk_channel, email_channel, make_channel, route, wecom_channel
from trading.events import EventKind, publish

pytestmark = pytest.mark.django_db(transaction=True)


def broker_drops(account: str = "acc1", error: str = "session lost") -> None:
    with transaction.atomic():
        publish(EventKind.BROKER_LINK, account, {"account_id": 1, "state": "DOWN", "error": error})


def test_a_broker_disconnect_arrives_by_email_in_chinese_and_english(smtp, clock) -> None:
    route("all", email_channel())
    broker_drops()
    [mail] = smtp.wait(1)
    assert mail.to == ["desk@example.com"]
    assert mail.subject.startswith("[CRITICAL]") and "acc1" in mail.subject
    assert "acc1 券商连接断开 (Broker connection of acc1 lost)" in mail.subject
    assert "session lost" in mail.body
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.SENT, 1)


def test_the_rule_recipients_receive_the_email(smtp, clock) -> None:
    route("ops", email_channel(), recipients="ops1@example.com, ops2@example.com")
    broker_drops()
    [mail] = smtp.wait(1)
    assert sorted(mail.to) == ["ops1@example.com", "ops2@example.com"]


def test_dingtalk_gets_a_signed_markdown_message_the_robot_accepts(webhooks, clock) -> None:
    route("ding", dingtalk_channel(webhooks), recipients="13800000000")
    broker_drops()
    [request] = webhooks.accepted("/dingtalk")
    payload = request.json
    assert payload["msgtype"] == "markdown" and "acc1" in payload["markdown"]["text"]
    assert payload["at"]["atMobiles"] == ["13800000000"]
    assert Delivery.objects.get().status == DeliveryStatus.SENT


def test_a_wrong_dingtalk_secret_fails_at_once_and_the_alert_goes_by_email(webhooks, smtp, clock) -> None:
    mail = email_channel()
    route("ding", dingtalk_channel(webhooks, secret="SEC-not-the-robots", fallback=mail))
    broker_drops()
    [refused] = webhooks.of("/dingtalk")
    assert refused.answer["errcode"] == 310000  # the robot checked the signature and refused it
    failed = Delivery.objects.get(channel__kind="dingtalk")
    assert failed.status == DeliveryStatus.FAILED and failed.attempts == 1  # a refusal is not retried
    assert "310000" in failed.last_error
    [fallback] = smtp.wait(1)
    assert "ding" in fallback.subject and "Broker connection of acc1 lost" in fallback.subject
    assert "310000" in fallback.body


def test_wecom_gets_a_text_message_within_its_limits(webhooks, clock) -> None:
    route("wecom", wecom_channel(webhooks), recipients="13900000000")
    broker_drops(error="x" * 5000)  # a long detail is cut to what the robot takes
    [request] = webhooks.accepted("/wecom")
    assert request.json["text"]["mentioned_mobile_list"] == ["13900000000"]
    assert "acc1" in request.json["text"]["content"]


def test_aliyun_sms_is_signed_as_aliyun_checks_it(webhooks, clock) -> None:
    channel = make_channel("sms", "sms", options={"provider": "aliyun", "endpoint": f"{webhooks.url}/aliyun",
                                                  "sign_name": "交易后台", "template_code": "SMS_1"},
                           secrets={"access_key_id": webhooks.aliyun.key, "access_key_secret": webhooks.aliyun.secret})
    route("sms", channel, recipients="13800000000")
    broker_drops()
    [request] = webhooks.accepted("/aliyun")
    assert "13800000000" in request.body.decode()
    assert Delivery.objects.get().status == DeliveryStatus.SENT


def test_an_aliyun_refusal_is_not_retried_and_the_alert_goes_elsewhere(webhooks, smtp, clock) -> None:
    webhooks.aliyun.mode = "refuse"
    channel = make_channel("sms", "sms", options={"provider": "aliyun", "endpoint": f"{webhooks.url}/aliyun"},
                           secrets={"access_key_id": webhooks.aliyun.key, "access_key_secret": webhooks.aliyun.secret},
                           fallback=email_channel())
    route("sms", channel, recipients="123")
    broker_drops()
    assert len(webhooks.of("/aliyun")) == 1
    failed = Delivery.objects.get(channel=channel)
    assert failed.status == DeliveryStatus.FAILED and "isv.MOBILE_NUMBER_ILLEGAL" in failed.last_error
    assert smtp.wait(1)


def test_the_http_sms_gateway_gets_the_bearer_token(webhooks, clock) -> None:
    channel = make_channel("sms", "sms", options={"provider": "http"},
                           secrets={"url": f"{webhooks.url}/sms", "token": webhooks.sms.key})
    route("sms", channel, recipients="13800000000")
    broker_drops()
    [request] = webhooks.accepted("/sms")
    assert request.json["to"] == ["13800000000"]


def test_the_dashboard_channel_announces_the_alert_to_the_live_stream(clock) -> None:
    from trading.events import domain_event

    heard = []

    def listen(sender, *, event, **kwargs):
        heard.append(event)

    domain_event.connect(listen, dispatch_uid="test-dashboard")
    try:
        route("dash", make_channel("dashboard", "dashboard"))
        broker_drops()
    finally:
        domain_event.disconnect(dispatch_uid="test-dashboard")
    alert = Alert.objects.get()
    events = [(e.data["event"], e.data.get("alert") or e.data.get("id")) for e in heard if e.kind == EventKind.ALERT]
    assert ("raised", alert.pk) in events and ("notified", alert.pk) in events
    assert Delivery.objects.get().status == DeliveryStatus.SENT


def test_channel_secrets_are_encrypted_at_rest_and_never_logged(webhooks, clock, caplog) -> None:
    webhooks.dingtalk.mode = "500"
    channel = dingtalk_channel(webhooks, max_attempts=1)
    route("ding", channel)
    with caplog.at_level(logging.DEBUG):
        broker_drops()
    with connection.cursor() as cursor:
        cursor.execute("SELECT secrets FROM monitoring_channel WHERE id = %s", [channel.pk])
        [stored] = cursor.fetchone()
    assert webhooks.dingtalk.key not in stored and webhooks.dingtalk.secret not in stored
    failed = Delivery.objects.get()
    assert failed.status == DeliveryStatus.FAILED and "500" in failed.last_error
    everything = caplog.text + failed.last_error + "".join(a.error for a in failed.attempt_rows.all())
    assert webhooks.dingtalk.key not in everything and webhooks.dingtalk.secret not in everything
