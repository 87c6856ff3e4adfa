from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    name = "monitoring"
    verbose_name = "监控"

    def ready(self) -> None:
        # Listeners (trading/events.py, brokers/signals.py): nothing in the order path imports them.
        from monitoring import metrics

        metrics.connect()
