"""Fixtures of the alert tests: the local SMTP and webhook sinks, and channels pointing at them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.monitoring.sinks import SmtpSink, WebhookSink

SMTP_PORT = 8831  # this worktree's sink ports are 8831-8839


@pytest.fixture(autouse=True)
def _monitoring_settings(settings: Any) -> Iterator[None]:
    from monitoring.monitors import settings_cache_clear

    settings.MONITORING_FLUSH_IN_THREAD = False  # in-process Celery: a test sees its deliveries made
    settings.MONITORING_HEARTBEAT_PIGGYBACK_SECONDS = 0  # tests look at the heartbeats when they mean to
    settings.MONITORING_CHANNEL_TIMEOUT_SECONDS = 1.0
    settings.MONITORING_RETRY_BASE_SECONDS = 2.0
    settings_cache_clear()
    yield
    settings_cache_clear()


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    with SmtpSink(SMTP_PORT) as sink:
        yield sink


@pytest.fixture
def webhooks() -> Iterator[WebhookSink]:
    with WebhookSink() as sink:
        yield sink


def make_channel(name: str, kind: str, *, options: dict[str, Any] | None = None,
                 secrets: dict[str, Any] | None = None, **fields: Any) -> Any:
    from monitoring.models import Channel

    return Channel.objects.create(name=name, kind=kind, options=options or {}, secrets=secrets or {}, **fields)


def email_channel(name: str = "mail", **fields: Any) -> Any:
    return make_channel(name, "email", options={"host": "127.0.0.1", "port": SMTP_PORT, "from": "alerts@example.com",
                                                "to": "desk@example.com"}, **fields)


def dingtalk_channel(sink: WebhookSink, name: str = "ding", *, secret: str | None = None, **fields: Any) -> Any:
    return make_channel(name, "dingtalk", secrets={"webhook": f"{sink.url}/dingtalk?access_token={sink.dingtalk.key}",
                                                   "secret": sink.dingtalk.secret if secret is None else secret},
                        **fields)


def wecom_channel(sink: WebhookSink, name: str = "wecom", **fields: Any) -> Any:
    return make_channel(name, "wecom", secrets={"webhook": f"{sink.url}/wecom?key={sink.wecom.key}"}, **fields)


def route(name: str, *channels: Any, min_level: str = "INFO", **fields: Any) -> Any:
    from monitoring.models import RoutingRule

    escalation = fields.pop("escalation_channels", [])
    rule = RoutingRule.objects.create(name=name, min_level=min_level, **fields)
    rule.channels.set(channels)
    rule.escalation_channels.set(escalation)
    return rule
