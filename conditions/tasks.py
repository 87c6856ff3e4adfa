"""Celery tasks of conditional orders: thin, each calls one service (beat: settings.CELERY_BEAT_SCHEDULE)."""

from __future__ import annotations

from celery import shared_task


@shared_task(ignore_result=True)
def clock() -> None:
    """Time triggers and expiry (every second)."""
    from conditions.services import conditions_evaluate_clock

    conditions_evaluate_clock()


@shared_task(ignore_result=True)
def sweep() -> None:
    """What the push paths may have missed (every few seconds)."""
    from conditions.services import conditions_sweep

    conditions_sweep()
