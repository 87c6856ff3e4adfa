"""gunicorn settings of the back office's web server: `manage.py run_system` passes this file
(``-c deploy/gunicorn.conf.py``); pass it too when starting gunicorn yourself.

Metrics (docs/metrics.md): every worker writes its counters to PROMETHEUS_MULTIPROC_DIR. The master
takes the directory from the Django settings before it forks, so that its workers and this hook
agree, and tells prometheus_client when a worker exits, so that the worker's live gauges stop
counting (its counters stay: they count what happened).
"""

from __future__ import annotations

import os
from typing import Any


def on_starting(server: Any) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "trading.settings")
    from django.conf import settings

    os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", settings.PROMETHEUS_MULTIPROC_DIR)
    os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)


def child_exit(server: Any, worker: Any) -> None:
    from prometheus_client import multiprocess

    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if path:
        multiprocess.mark_process_dead(worker.pid, path)
