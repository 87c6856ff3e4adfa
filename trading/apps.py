from django.apps import AppConfig


class TradingConfig(AppConfig):
    name = "trading"
    verbose_name = "交易核心"

    def ready(self) -> None:
        from trading import checks, failures

        checks.register()
        failures.connect()
