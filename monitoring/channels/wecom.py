"""WeCom (企业微信) group robot.

The webhook (``https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=...``) is the secret. A robot
takes 20 messages a minute; beyond that it answers errcode 45009.
"""

from __future__ import annotations

from typing import Any

from monitoring.channels.base import Message, RobotChannel, register

MAX_TEXT = 2000  # bytes; a text message holds at most 2,048


@register
class WeComChannel(RobotChannel):
    """secrets: ``webhook`` (with its key). Recipients: mobiles to mention."""

    kind = "wecom"
    service = "WeCom"
    default_rate_per_minute = 20
    throttle_seconds = 60.0
    throttled = frozenset({45009})
    refused = frozenset({93000, 40008, 40058})  # bad webhook key; bad message type; bad parameter

    def payload(self, message: Message) -> dict[str, Any]:
        content = f"{message.subject}\n{message.body}".encode()[:MAX_TEXT].decode(errors="ignore")
        return {"msgtype": "text", "text": {"content": content,
                                            "mentioned_mobile_list": [r.lstrip("@") for r in message.recipients if r]}}
