"""The dashboard: the alert is stored (the delivery row) and announced as an ``alert`` domain
event, which the live stream carries to the dashboard's websocket clients."""

from __future__ import annotations

from monitoring.channels.base import ChannelPlugin, Message, register


@register
class DashboardChannel(ChannelPlugin):
    kind = "dashboard"

    def send(self, message: Message) -> str:
        from trading.events import EventKind, publish

        for alert in message.alerts or ({},):
            publish(EventKind.ALERT, str(alert.get("account", "")),
                    {"event": "notified", "level": message.level, "subject": message.subject, "body": message.body,
                     "alert": alert.get("id"), "status": alert.get("status"), "reference": message.reference})
        return message.reference
