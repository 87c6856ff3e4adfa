"""Post-trade protections through the real order path: fills and broker rejections move the account."""

from __future__ import annotations

from decimal import Decimal

import pytest

from brokers.adapters.paper import PaperBroker
from orders.models import OrderStatus
from risk.models import RiskCounter, RiskEvent
from risk.verdicts import RiskAction
from tests.risk.conftest import Env
from trading.errors import BrokerError
from trading.models import TradingState


def publish(symbol: str, **values: str) -> None:
    from brokers.services import quotes_publish

    quotes_publish([{"symbol": symbol, "bid_volume": 1_000_000, "ask_volume": 1_000_000, **values}])


def test_daily_loss_moves_the_account_to_reducing_after_a_fill(live_env: Env) -> None:
    env = live_env
    env.rule("daily_loss_limit", {"max_loss_amount": "1000"})
    publish("600000.SH", last="10.00", prev_close="10.00", bid="9.99", ask="10.00")
    first = env.submit(price="10.00", quantity=10000)
    assert first.status == OrderStatus.FILLED  # the paper broker filled it in-process
    assert env.refresh().trading_state == TradingState.ACTIVE
    publish("600000.SH", last="9.80", bid="9.79", ask="9.80")  # 10,000 shares lose 2,000
    second = env.submit(price="9.80", quantity=100, client_order_id="second")
    assert second.status == OrderStatus.FILLED
    account = env.refresh()
    assert account.trading_state == TradingState.REDUCING and "亏损" in account.trading_state_reason
    event = RiskEvent.objects.get(rule="daily_loss_limit")
    assert event.level == "critical" and Decimal(event.values["loss"]) >= Decimal("2000")
    # Funded today: nothing at the start of the day, the deposit is the capital the loss is measured on.
    row = RiskCounter.objects.get(account=account, key="")
    assert row.start_assets == Decimal("0.00") and event.values["capital_base"] == "1000000.00"
    assert env.submit(price="9.80", quantity=100, client_order_id="third").status == OrderStatus.REJECTED
    # Selling still passes risk control (today's shares are not sellable yet: T+1, so check, don't send).
    assert env.verdict("trading_state", side="SELL", price="9.79", quantity=100).passed


def test_drawdown_with_warn_only_alerts(live_env: Env) -> None:
    env = live_env
    env.rule("max_drawdown", {"max_amount": "500"}, RiskAction.WARN)
    publish("600000.SH", last="10.00", prev_close="10.00", bid="9.99", ask="10.00")
    env.submit(price="10.00", quantity=10000)
    publish("600000.SH", last="9.90", bid="9.89", ask="9.90")
    env.submit(price="9.90", quantity=100, client_order_id="second")
    assert env.refresh().trading_state == TradingState.ACTIVE
    assert RiskEvent.objects.get(rule="max_drawdown").level == "warning"


def test_consecutive_broker_rejections_halt_the_account(live_env: Env, monkeypatch) -> None:
    from risk.models import RiskCounter as Counter

    env = live_env
    env.rule("broker_rejections", {"max_consecutive": 3})
    publish("600000.SH", last="10.00", prev_close="10.00", bid="9.99", ask="10.00")

    def refuse(self, request):
        raise BrokerError("券商拒单: 资金账户状态异常")

    monkeypatch.setattr(PaperBroker, "place_order", refuse)
    for index in range(2):
        assert env.submit(client_order_id=f"r{index}").status == OrderStatus.REJECTED
        assert env.refresh().trading_state == TradingState.ACTIVE
    # A rejected order gives its amount back.
    assert Counter.objects.get(account=env.account, key="").amount == Decimal("0.00")
    env.submit(client_order_id="r2")
    account = env.refresh()
    assert account.trading_state == TradingState.HALTED
    assert RiskEvent.objects.get(rule="broker_rejections").values["consecutive"] == 3
    assert env.submit(client_order_id="r3").risk_verdicts[0]["rule"] == "trading_state"


@pytest.mark.usefixtures("live_env")
def test_without_protections_the_hooks_write_nothing(live_env: Env) -> None:
    publish("600000.SH", last="10.00", prev_close="10.00", bid="9.99", ask="10.00")
    live_env.submit(price="10.00", quantity=1000)
    assert not RiskEvent.objects.exists()
    assert RiskCounter.objects.get(account=live_env.account, key="").start_assets is None
