from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    name = "monitoring"
    verbose_name = "监控"

    def ready(self) -> None:
        # Nothing imports monitoring: it listens to the events the lower layers publish after commit
        # (trading/events.py, brokers/signals.py).
        from monitoring import live, metrics, monitors
        from trading.events import domain_event

        live.connect()
        metrics.connect()
        domain_event.connect(monitors.on_domain_event, dispatch_uid="monitoring.monitors")
        # The embedded scheduler's share of the alert jobs (Celery beat runs them as monitoring.tasks).
        from monitoring.alerts import alerts_escalate
        from monitoring.delivery import deliveries_sweep
        from trading import periodic

        periodic.register("monitoring.heartbeat", monitors.scheduler_heartbeat, 10.0)
        periodic.register("monitoring.escalate", alerts_escalate, 5.0)
        periodic.register("monitoring.check", monitors.monitors_check, 15.0)
        periodic.register("monitoring.deliveries", deliveries_sweep, 1.0)  # last: sends what the others owe
