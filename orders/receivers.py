"""Receivers of the lower layers' signals (connected in ``orders/apps.py``)."""

from __future__ import annotations

from functools import partial

from django.db import transaction

from orders.services.reconcile import accounts_poll_later


def poll_on_broker_update(sender: object, *, account_name: str, **kwargs: object) -> None:
    """A broker pushed news of ``account_name``'s orders (``brokers.signals.broker_update``):
    poll the account (``orders.tasks.poll_account``) once the sender's transaction, if any,
    commits. Sent from the broker client's callback thread: with Celery workers this only
    enqueues; with in-process tasks the poll runs here."""
    transaction.on_commit(partial(accounts_poll_later, [account_name]))


def resume_on_broker_link(sender: object, *, account_id: int, state: str, **kwargs: object) -> None:
    """An account's broker is reachable again (``brokers.connection.link_changed``): poll it first
    (unknown outcomes are queried, never sent again), then offer the orders that waited."""
    from brokers.models import LinkState
    from orders.services import broker_back

    if state == LinkState.UP:
        broker_back(account_id=account_id)
