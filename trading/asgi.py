"""ASGI entry point: HTTP through Django, websockets through Channels."""

import os
from typing import Any

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "trading.settings")
# Requests run on threads of their own here: database connections come from a bounded pool
# (trading/settings.py, DB_POOL_MAX_SIZE), not one persistent connection per thread.
os.environ.setdefault("DB_POOL", "1")
django_asgi_app = get_asgi_application()

from trading.checks import log_startup_warnings  # noqa: E402

log_startup_warnings()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import re_path  # noqa: E402
from django.utils.module_loading import import_string  # noqa: E402

# Named, not imported, like the apps' urls in trading/urls.py: nothing below monitoring imports it.
websocket_urlpatterns = import_string("monitoring.routing.websocket_urlpatterns")

# Close code for a websocket path without a consumer (4000-4999 are the application's; 4404 = not found).
NO_CONSUMER = 4404


async def websocket_refused(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Refuse a websocket on a path that has no consumer: closed before the handshake completes
    (the server answers the upgrade with 403), instead of a server error."""
    while True:
        message = await receive()
        if message["type"] == "websocket.connect":
            await send({"type": "websocket.close", "code": NO_CONSUMER})
            return
        if message["type"] == "websocket.disconnect":
            return


# The session and user of the admin's login reach the consumers (monitoring/consumers.py checks them).
application = ProtocolTypeRouter({
    "http": django_asgi_app,
    "websocket": AuthMiddlewareStack(URLRouter([*websocket_urlpatterns, re_path(r"", websocket_refused)])),  # type: ignore[arg-type]  # django-stubs: re_path takes a view; Channels routes ASGI apps with it
})
