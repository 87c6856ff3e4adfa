"""Thin Celery tasks of the brokers app."""

from __future__ import annotations

from celery import shared_task


@shared_task(ignore_result=True)
def heartbeat() -> None:
    from brokers.connection import brokers_heartbeat

    brokers_heartbeat()
