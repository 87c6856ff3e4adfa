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

from monitoring.channels.base import ChannelFailure, ChannelPlugin, Message, http_status_failure, post_json, register

THROTTLED = {130101}  # send too fast
REFUSED = {300001, 310000, 400013}  # unknown token; sign, keyword or IP refused; bad robot


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """The ``sign`` parameter for ``timestamp_ms``, URL-encoded."""
    digest = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return urllib.parse.quote_plus(base64.b64encode(digest).decode())


def signed_url(webhook: str, secret: str, timestamp_ms: int) -> str:
    if not secret:
        return webhook
    return f"{webhook}{'&' if '?' in webhook else '?'}timestamp={timestamp_ms}&sign={dingtalk_sign(secret, timestamp_ms)}"


MAX_TEXT = 18000  # bytes; DingTalk refuses a message above 20,000


@register
class DingTalkChannel(ChannelPlugin):
    """secrets: ``webhook`` (with its access_token), ``secret`` (加签). Recipients: mobiles to @."""

    kind = "dingtalk"
    default_rate_per_minute = 20
    throttle_seconds = 600.0

    def send(self, message: Message) -> str:
        webhook = self.secrets.get("webhook") or ""
        if not webhook:
            raise ChannelFailure("no webhook configured", retry=False)
        text = f"### {message.subject}\n\n{message.body}"
        mobiles = [r.lstrip("@") for r in message.recipients if r]
        if mobiles:
            text += "\n\n" + " ".join(f"@{m}" for m in mobiles)
        text = text.encode()[:MAX_TEXT].decode(errors="ignore")
        payload = {"msgtype": "markdown", "markdown": {"title": message.subject[:64], "text": text},
                   "at": {"atMobiles": mobiles, "isAtAll": False}}
        url = signed_url(webhook, self.secrets.get("secret") or "", int(time.time() * 1000))
        status, answer = post_json(url, payload, timeout=self.timeout)
        if status != 200:
            raise http_status_failure(status, "DingTalk")
        code = answer.get("errcode")
        if code == 0:
            return ""
        errmsg = str(answer.get("errmsg", ""))[:200]
        if code in THROTTLED:
            raise ChannelFailure(f"DingTalk throttled: {code} {errmsg}", pause_seconds=self.throttle_seconds)
        raise ChannelFailure(f"DingTalk refused: {code} {errmsg}", retry=code not in REFUSED)
