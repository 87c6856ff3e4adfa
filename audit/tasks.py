"""Thin Celery tasks of the audit app."""

from __future__ import annotations

from celery import shared_task


@shared_task(ignore_result=True)
def seal() -> None:
    from audit.sealing import audit_seal

    while audit_seal():  # catch up in passes of a bounded size
        pass


@shared_task(ignore_result=True)
def digest_daily() -> None:
    from audit.sealing import audit_digest_daily

    audit_digest_daily()
