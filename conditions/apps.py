from django.apps import AppConfig


class ConditionsConfig(AppConfig):
    name = "conditions"
    verbose_name = "条件单"

    def ready(self) -> None:
        # Lower layers may not import conditions: quotes reach it through brokers' signal, order
        # changes (an entry's fill, a child's end) through the domain events published after commit,
        # the clock through the embedded scheduler's registry (Celery beat runs conditions.tasks).
        from brokers.signals import quotes_published
        from conditions.receivers import evaluate_on_quotes, follow_order_event, observe_algo_quotes, register_periodic
        from trading.events import domain_event

        quotes_published.connect(evaluate_on_quotes, dispatch_uid="conditions.evaluate_on_quotes")
        quotes_published.connect(observe_algo_quotes, dispatch_uid="conditions.observe_algo_quotes")
        domain_event.connect(follow_order_event, dispatch_uid="conditions.follow_order_event")
        register_periodic()
