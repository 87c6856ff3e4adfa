from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    name = "monitoring"
    verbose_name = "监控"

    def ready(self) -> None:
        # Listeners of the domain events (trading/events.py): nothing in the order path imports them.
        from monitoring import live

        live.connect()
