"""Thin Celery tasks: take ids, call one service, own the retry policy.

Each task imports its service inside its body: the services import this module to enqueue
(``orders.services.outbox.enqueue``), so a module-level import would make the two a loop.
"""

from __future__ import annotations

from celery import shared_task
from celery.signals import worker_ready


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def submit_order(order_id: int) -> None:
    from orders import services

    services.order_send_to_broker(order_id=order_id)


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def cancel_order(order_id: int) -> None:
    from orders import services

    services.order_cancel_at_broker(order_id=order_id)


@shared_task(ignore_result=True)
def poll_account(account_id: int) -> None:
    from orders import services

    services.account_poll_or_wait(account_id=account_id)  # a broker away: the periodic poll asks again


@shared_task(ignore_result=True)
def poll_open_orders() -> None:
    from orders import services

    services.accounts_poll_all()


@shared_task(ignore_result=True)
def outbox_sweep() -> None:
    from orders import services

    services.outbox_sweep()


@shared_task(ignore_result=True)
def expire_day_orders() -> None:
    from orders import services

    services.orders_expire_day()


@shared_task(ignore_result=True)
def reconcile_accounts() -> None:
    """Periodic and start-up reconciliation of every active account (orders.services.discrepancies)."""
    from orders import services

    services.accounts_reconcile_all()


@worker_ready.connect
def reconcile_on_worker_start(sender: object = None, **kwargs: object) -> None:
    """A worker that starts reconciles every account once: whatever happened while the workers
    were down (fills, lost answers, orders placed by hand) is found before the next periodic run."""
    reconcile_accounts.delay()
