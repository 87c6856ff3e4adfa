from django.apps import AppConfig


class OrdersConfig(AppConfig):
    name = "orders"
    verbose_name = "订单"

    def ready(self) -> None:
        # brokers may not import orders: a broker's pushes reach the order path through this signal.
        from brokers.signals import broker_update
        from orders.receivers import poll_on_broker_update

        broker_update.connect(poll_on_broker_update, dispatch_uid="orders.poll_on_broker_update")
