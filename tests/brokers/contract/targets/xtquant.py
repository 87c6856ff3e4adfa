"""miniQMT through XtQuant as a contract target: our adapter over a fake miniQMT whose trader
answers and pushes with xtquant's real ``xttype`` objects (tests/brokers/fakes/xtquant_trader.py).

Pushes run on the fake's own callback thread, as xttrader's do; each control waits for the pushes
it caused (``settle``), as a test of a real broker would wait for the broker to tell.
"""

from __future__ import annotations

import uuid
from decimal import Decimal

from brokers.adapters import xtquant
from brokers.adapters.xtquant import XtQuantBroker
from brokers.interface import BrokerInterface
from tests.brokers.contract.venue import Venue
from tests.brokers.fakes.xtquant_trader import FakeMiniQmt

SESSION_ID = 8812


class XtQuantVenue(Venue):
    def __init__(self) -> None:
        self.qmt = FakeMiniQmt()
        self.qmt.open_account(self.account)
        self.path = f"C:\\miniQMT-{uuid.uuid4().hex[:8]}\\userdata_mini"
        self._previous = xtquant.set_trader_factory(self.qmt.trader)

    def adapter(self) -> BrokerInterface:
        return XtQuantBroker(self.account, {
            "path": self.path, "session_id": SESSION_ID, "account_id": self.account, "account_type": "STOCK",
            "call_timeout": 0.5, "cancel_wait": 3, "error_wait": 1, "reconnect_seconds": 0,
        })

    def fund(self, cash: Decimal) -> None:
        self.qmt.fund(self.account, float(cash))

    def hold(self, symbol: str, quantity: int, avg_cost: Decimal) -> None:
        self.qmt.hold(self.account, symbol, quantity, float(avg_cost))

    def fill(self, broker_order_id: str, quantity: int, price: Decimal) -> None:
        self.qmt.settle()  # the counter's 已报 first
        self.qmt.fill(int(broker_order_id), quantity, float(price))
        self.qmt.settle()

    def reject(self, broker_order_id: str, message: str) -> None:
        self.qmt.settle()
        self.qmt.reject(int(broker_order_id), message)
        self.qmt.settle()

    def fail_next_place(self, *, took_effect: bool) -> None:
        self.qmt.hang_next_order(took_effect=took_effect)

    def refuse_next_cancel(self, message: str) -> None:
        self.qmt.refuse_next_cancel(message)

    def repeat_trade_reports(self) -> None:
        self.qmt.repeat_trades = True

    def disconnect(self) -> None:
        self.qmt.go_down()
        self.qmt.settle()

    def reconnect(self) -> None:
        self.qmt.come_up()

    def close(self) -> None:
        self.qmt.close()
        xtquant.set_trader_factory(self._previous)
        xtquant.sessions_close(self.path)


VENUES = {"xtquant": XtQuantVenue}
