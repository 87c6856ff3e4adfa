"""DingTalk group robot (自定义机器人), signed.

The webhook (``https://oapi.dingtalk.com/robot/send?access_token=...``) and the signing secret are
secrets. Each call adds ``timestamp`` (ms) and ``sign`` = URL-encoded base64 of
HMAC-SHA256(key=secret, "timestamp\\nsecret"). A robot takes 20 messages a minute; beyond that
it answers errcode 130101 and refuses everything for 10 minutes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import urllib.parse
from typing import Any

from monitoring.channels.base import Message, RobotChannel, register

MAX_TEXT = 18000  # bytes; DingTalk refuses a message above 20,000


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """The ``sign`` parameter for ``timestamp_ms``, URL-encoded."""
    digest = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return urllib.parse.quote_plus(base64.b64encode(digest).decode())


def signed_url(webhook: str, secret: str, timestamp_ms: int) -> str:
    if not secret:
        return webhook
    return f"{webhook}{'&' if '?' in webhook else '?'}timestamp={timestamp_ms}&sign={dingtalk_sign(secret, timestamp_ms)}"


@register
class DingTalkChannel(RobotChannel):
    """secrets: ``webhook`` (with its access_token), ``secret`` (加签). Recipients: mobiles to @."""

    kind = "dingtalk"
    service = "DingTalk"
    default_rate_per_minute = 20
    throttle_seconds = 600.0
    throttled = frozenset({130101})  # send too fast
    refused = frozenset({300001, 310000, 400013})  # unknown token; sign, keyword or IP refused; bad robot

    def url(self, webhook: str) -> str:
        return signed_url(webhook, self.secrets.get("secret") or "", int(time.time() * 1000))

    def payload(self, message: Message) -> dict[str, Any]:
        text = f"### {message.subject}\n\n{message.body}"
        mobiles = [r.lstrip("@") for r in message.recipients if r]
        if mobiles:
            text += "\n\n" + " ".join(f"@{m}" for m in mobiles)
        text = text.encode()[:MAX_TEXT].decode(errors="ignore")
        return {"msgtype": "markdown", "markdown": {"title": message.subject[:64], "text": text},
                "at": {"atMobiles": mobiles, "isAtAll": False}}
