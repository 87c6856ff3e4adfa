"""SMS through a provider: Aliyun (阿里云短信) or a generic HTTP gateway.

Sending an SMS is not idempotent (Aliyun's SendSms sends again on every call, and bills it), so
the channel says so (``idempotent = False``): the delivery engine commits a delivery as SENDING
before the call and never calls again for it when the outcome is unknown (a timeout, a crash);
that delivery fails visibly and the alert goes to the fallback channel instead. Deliveries carry
a unique key, so one alert is one SMS per recipient per stage.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import urllib.parse
import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar

from monitoring.channels.base import (
    ChannelFailure,
    ChannelPlugin,
    Message,
    http_status_failure,
    post,
    post_json,
    register,
)


class SmsProvider:
    """Sends one text to some phone numbers. Raises ChannelFailure."""

    name: ClassVar[str] = ""

    def __init__(self, options: dict[str, Any], secrets: dict[str, Any], timeout: float) -> None:
        self.options, self.secrets, self.timeout = options, secrets, timeout

    def send(self, phones: list[str], message: Message) -> str:
        raise NotImplementedError


PROVIDERS: dict[str, type[SmsProvider]] = {}


def provider(cls: type[SmsProvider]) -> type[SmsProvider]:
    PROVIDERS[cls.name] = cls
    return cls


def _percent(value: str) -> str:
    return urllib.parse.quote(value, safe="~")


def aliyun_signature(params: dict[str, str], secret: str, method: str = "POST") -> str:
    """Aliyun RPC signature (version 1.0, HMAC-SHA1) of ``params``."""
    canonical = "&".join(f"{_percent(k)}={_percent(v)}" for k, v in sorted(params.items()))
    to_sign = f"{method}&{_percent('/')}&{_percent(canonical)}"
    digest = hmac.new(f"{secret}&".encode(), to_sign.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


ALIYUN_THROTTLED = {"isv.BUSINESS_LIMIT_CONTROL", "Throttling.User", "Throttling"}
ALIYUN_RETRY = {"isp.RAM_PERMISSION_DENY", "isp.SYSTEM_ERROR", "ServiceUnavailable", "InternalError"}


@provider
class AliyunSms(SmsProvider):
    """options: ``endpoint`` (default https://dysmsapi.aliyuncs.com/), ``sign_name``,
    ``template_code`` (a template with ${level} and ${title}), ``region``;
    secrets: ``access_key_id``, ``access_key_secret``."""

    name = "aliyun"

    def send(self, phones: list[str], message: Message) -> str:
        key_id, key_secret = self.secrets.get("access_key_id") or "", self.secrets.get("access_key_secret") or ""
        if not key_id or not key_secret:
            raise ChannelFailure("Aliyun SMS access key missing", retry=False)
        limit = int(self.options.get("param_max", 35))  # a template variable holds at most 35 characters
        params = {
            "AccessKeyId": key_id, "Action": "SendSms", "Format": "JSON",
            "PhoneNumbers": ",".join(phones), "RegionId": self.options.get("region", "cn-hangzhou"),
            "SignName": self.options.get("sign_name", ""), "TemplateCode": self.options.get("template_code", ""),
            "TemplateParam": json.dumps({"level": message.level, "title": message.subject[:limit]}, ensure_ascii=False),
            "OutId": message.reference[:64],
            "SignatureMethod": "HMAC-SHA1", "SignatureNonce": uuid.uuid4().hex, "SignatureVersion": "1.0",
            "Timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), "Version": "2017-05-25",
        }
        params["Signature"] = aliyun_signature(params, key_secret)
        endpoint = self.options.get("endpoint") or "https://dysmsapi.aliyuncs.com/"
        status, raw = post(endpoint, urllib.parse.urlencode(params).encode(),
                           content_type="application/x-www-form-urlencoded", timeout=self.timeout)
        try:
            answer = json.loads(raw or b"{}")
        except ValueError:
            answer = {}
        code = str(answer.get("Code", "")) if isinstance(answer, dict) else ""
        if code == "OK":
            return str(answer.get("BizId", ""))
        if not code:
            raise http_status_failure(status, "Aliyun SMS")
        text = f"Aliyun SMS {code}: {str(answer.get('Message', ''))[:200]}"
        if code in ALIYUN_THROTTLED:
            raise ChannelFailure(text, pause_seconds=60.0)
        # Every other code is a refusal of this request (bad number, signature, template, key): the
        # SMS was not sent, and the same request would be refused again.
        raise ChannelFailure(text, retry=code in ALIYUN_RETRY or status >= 500)


@provider
class HttpSms(SmsProvider):
    """A generic gateway: POST {"to": [...], "text": ..., "reference": ...} as JSON to ``url``,
    with ``Authorization: Bearer <token>`` when the secret ``token`` is set; any 2xx is sent."""

    name = "http"

    def send(self, phones: list[str], message: Message) -> str:
        url = self.secrets.get("url") or self.options.get("url") or ""
        if not url:
            raise ChannelFailure("no SMS gateway URL configured", retry=False)
        token = self.secrets.get("token") or ""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        status, answer = post_json(url, {"to": phones, "text": f"{message.subject}\n{message.body}"[:500],
                                         "reference": message.reference}, timeout=self.timeout, headers=headers)
        if 200 <= status < 300:
            return str(answer.get("id", ""))
        raise http_status_failure(status, "SMS gateway")


@register
class SmsChannel(ChannelPlugin):
    """options: ``provider`` (aliyun or http) and the provider's options. Recipients: phone numbers."""

    kind = "sms"
    idempotent = False

    def send(self, message: Message) -> str:
        phones = [r for r in message.recipients if r] or [
            p.strip() for p in str(self.options.get("to", "")).split(",") if p.strip()]
        if not phones:
            raise ChannelFailure("no phone number", retry=False)
        name = self.options.get("provider", "aliyun")
        cls = PROVIDERS.get(name)
        if cls is None:
            raise ChannelFailure(f"unknown SMS provider {name!r}", retry=False)
        return cls(self.options, self.secrets, self.timeout).send(phones, message)
