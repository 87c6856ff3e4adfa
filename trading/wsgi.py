"""WSGI entry point (benchmarks and plain HTTP deployments)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "trading.settings")
application = get_wsgi_application()

from trading.checks import log_startup_warnings  # noqa: E402

log_startup_warnings()
