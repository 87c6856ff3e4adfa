"""Thin Celery tasks of risk control: they call one service each.

Beat entry (trading/settings.py CELERY_BEAT_SCHEDULE):
    "risk-expire-reviews": {"task": "risk.tasks.expire_reviews", "schedule": 30.0},
"""

from __future__ import annotations

from celery import shared_task


@shared_task(ignore_result=True)
def expire_reviews() -> int:
    """Expire orders held for review longer than RISK_REVIEW_TIMEOUT_SECONDS."""
    from orders.review import orders_expire_reviews

    return orders_expire_reviews()
