from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    name = "monitoring"
    verbose_name = "监控"

    def ready(self) -> None:
        # Nothing imports monitoring: it listens to the events the lower layers publish after commit.
        from monitoring import monitors
        from trading.events import domain_event

        domain_event.connect(monitors.on_domain_event, dispatch_uid="monitoring.monitors")
