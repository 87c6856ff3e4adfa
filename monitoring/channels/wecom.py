"""WeCom (企业微信) group robot.

The webhook (``https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=...``) is the secret. A robot
takes 20 messages a minute; beyond that it answers errcode 45009.
"""

from __future__ import annotations

from monitoring.channels.base import ChannelFailure, ChannelPlugin, Message, http_status_failure, post_json, register

THROTTLED = {45009}
REFUSED = {93000, 40008, 40058}  # bad webhook key; bad message type; bad parameter

MAX_TEXT = 2000  # bytes; a text message holds at most 2,048


@register
class WeComChannel(ChannelPlugin):
    """secrets: ``webhook`` (with its key). Recipients: mobiles to mention."""

    kind = "wecom"
    default_rate_per_minute = 20
    throttle_seconds = 60.0

    def send(self, message: Message) -> str:
        webhook = self.secrets.get("webhook") or ""
        if not webhook:
            raise ChannelFailure("no webhook configured", retry=False)
        content = f"{message.subject}\n{message.body}".encode()[:MAX_TEXT].decode(errors="ignore")
        payload = {"msgtype": "text", "text": {"content": content,
                                               "mentioned_mobile_list": [r.lstrip("@") for r in message.recipients if r]}}
        status, answer = post_json(webhook, payload, timeout=self.timeout)
        if status != 200:
            raise http_status_failure(status, "WeCom")
        code = answer.get("errcode")
        if code == 0:
            return ""
        errmsg = str(answer.get("errmsg", ""))[:200]
        if code in THROTTLED:
            raise ChannelFailure(f"WeCom throttled: {code} {errmsg}", pause_seconds=self.throttle_seconds)
        raise ChannelFailure(f"WeCom refused: {code} {errmsg}", retry=code not in REFUSED)
