"""Notification channels: one plug-in class each, registered by name (its ``kind``).

A plug-in turns a :class:`~monitoring.channels.base.Message` into one call to its service and
raises :class:`~monitoring.channels.base.ChannelFailure` when the call did not deliver; the
delivery engine (``monitoring/delivery.py``) owns retries, rate limits, digests and fallbacks.
"""

from monitoring.channels.base import REGISTRY, ChannelFailure, ChannelPlugin, Message, plugin_for, register

__all__ = ["REGISTRY", "ChannelFailure", "ChannelPlugin", "Message", "plugin_for", "register"]


def _load_builtin() -> None:
    from monitoring.channels import dashboard, dingtalk, email, sms, wecom  # noqa: F401  (registers)


_load_builtin()
