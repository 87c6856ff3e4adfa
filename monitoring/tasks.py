"""Thin Celery tasks of the monitoring app (each imports its service inside its body)."""

from __future__ import annotations

import os
import socket

from celery import shared_task


@shared_task(ignore_result=True)
def flush_channel(channel_id: int) -> None:
    """Send what one channel owes now (enqueued after an alert commits)."""
    from monitoring.delivery import channel_flush

    channel_flush(channel_id)


@shared_task(ignore_result=True)
def deliveries_sweep() -> None:
    """Periodic: deliveries due again (retries, digests after a rate window), stuck ones."""
    from monitoring.delivery import deliveries_sweep as sweep

    sweep()


@shared_task(ignore_result=True)
def escalate() -> None:
    """Periodic: CRITICAL alerts not acknowledged in time go to their escalation channels."""
    from monitoring.alerts import alerts_escalate

    alerts_escalate()


@shared_task(ignore_result=True)
def heartbeat() -> None:
    """Periodic (Celery beat): a worker ran this, so beat and a worker are alive."""
    from monitoring.monitors import heartbeat_beat

    heartbeat_beat("worker", f"{socket.gethostname()}:{os.getpid()}")


@shared_task(ignore_result=True)
def check() -> None:
    """Periodic: heartbeats, outbox backlog, order activity, the calendar's horizon."""
    from monitoring.monitors import monitors_check

    monitors_check()
