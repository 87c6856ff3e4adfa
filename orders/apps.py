from django.apps import AppConfig


class OrdersConfig(AppConfig):
    name = "orders"
    verbose_name = "订单"

    def ready(self) -> None:
        # brokers may not import orders: a broker's pushes and its link's changes reach the order
        # path through these signals (orders/receivers.py).
        from brokers.connection import link_changed
        from brokers.signals import broker_update
        from orders.receivers import poll_on_broker_update, resume_on_broker_link

        broker_update.connect(poll_on_broker_update, dispatch_uid="orders.poll_on_broker_update")
        link_changed.connect(resume_on_broker_link, dispatch_uid="orders.resume_on_broker_link")
