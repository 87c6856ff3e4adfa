"""ASGI entry point: HTTP through Django, websockets through Channels."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "trading.settings")
# Requests run on threads of their own here: database connections come from a bounded pool
# (trading/settings.py, DB_POOL_MAX_SIZE), not one persistent connection per thread.
os.environ.setdefault("DB_POOL", "1")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter  # noqa: E402

application = ProtocolTypeRouter({"http": django_asgi_app})
