"""Template tags of the live pages, for templates of other apps (the order desk) that load them by
name: ``{% load live %}{% live_labels as labels %}``. Nothing imports monitoring for them."""

from __future__ import annotations

from typing import Any

from django import template

register = template.Library()


@register.simple_tag(takes_context=True)
def live_labels(context: dict[str, Any]) -> dict[str, Any] | None:
    """The live pages' words in the request's language; None for a user whose role may not watch."""
    from monitoring.labels import VIEW_PERMISSION
    from monitoring.labels import live_labels as labels

    request = context.get("request")
    if request is None or not request.user.has_perm(VIEW_PERMISSION):
        return None
    return labels()


@register.simple_tag
def live_ws_port() -> str:
    """The port of the websocket server when it is not the page's own (``LIVE_WEBSOCKET_PORT``:
    `make run` serves pages with gunicorn, which speaks no websocket, and /ws/ with daphne on the
    next port); "" when the page's server answers /ws/ itself."""
    from django.conf import settings

    return str(settings.LIVE_WEBSOCKET_PORT or "")


@register.simple_tag
def live_status_styles() -> dict[str, str]:
    """The order desk's badge style of each status (staff/admin_tools.py)."""
    from staff.admin_tools import STATUS_STYLE

    return dict(STATUS_STYLE)
