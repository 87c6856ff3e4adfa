"""Periodic jobs that apps above ``trading`` add to the embedded scheduler.

``manage.py run_scheduler`` (embedded mode, no Celery beat) runs its own order jobs and then
every job registered here. An app registers in its ``AppConfig.ready()``, so the scheduler never
imports it: monitoring (which nothing may import) adds its delivery sweep, escalations,
heartbeat and periodic monitors this way. With Redis, Celery beat runs the same functions
through the app's tasks (settings.CELERY_BEAT_SCHEDULE).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Job:
    call: Callable[[], object]
    every_seconds: float


JOBS: dict[str, Job] = {}


def register(name: str, call: Callable[[], object], every_seconds: float) -> None:
    """Run ``call`` every ``every_seconds`` in the embedded scheduler (idempotent by ``name``)."""
    JOBS[name] = Job(call, every_seconds)
