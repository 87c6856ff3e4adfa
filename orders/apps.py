from typing import Any

from django.apps import AppConfig


class OrdersConfig(AppConfig):
    name = "orders"
    verbose_name = "订单"

    def ready(self) -> None:
        from brokers.connection import link_changed

        link_changed.connect(_broker_link_changed, dispatch_uid="orders.broker_link_changed")


def _broker_link_changed(sender: Any, *, account_id: int, state: str, **kwargs: Any) -> None:
    """An account's broker is reachable again: poll it first (unknown outcomes are queried, never
    sent again), then offer the orders that waited."""
    from brokers.models import LinkState
    from orders.services import broker_back

    if state == LinkState.UP:
        broker_back(account_id=account_id)
