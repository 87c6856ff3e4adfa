"""The scripted test broker as a contract target: the reference the other targets follow."""

from __future__ import annotations

from decimal import Decimal

from brokers.adapters.scripted import BrokerScript, Reply, ScriptedBroker
from brokers.interface import BrokerInterface, BrokerOrderStatus
from tests.brokers.contract.venue import Venue


class ScriptedVenue(Venue):
    def __init__(self) -> None:
        self.book: BrokerScript = ScriptedBroker.open_account(self.account, Decimal("0"))

    def adapter(self) -> BrokerInterface:
        return ScriptedBroker(self.account)

    def fund(self, cash: Decimal) -> None:
        self.book.cash = cash

    def hold(self, symbol: str, quantity: int, avg_cost: Decimal) -> None:
        self.book.holdings[symbol] = (quantity, avg_cost)

    def fill(self, broker_order_id: str, quantity: int, price: Decimal) -> None:
        self.book.fill(broker_order_id, quantity, price)

    def reject(self, broker_order_id: str, message: str) -> None:
        self.book.close(broker_order_id, BrokerOrderStatus.REJECTED, message)

    def fail_next_place(self, *, took_effect: bool) -> None:
        self.book.on_place(Reply.TIMEOUT, reaches_broker=took_effect)

    def refuse_next_cancel(self, message: str) -> None:
        self.book.on_cancel(Reply.REFUSE, message)

    def repeat_trade_reports(self) -> None:
        self.book.repeat_trades = True

    def disconnect(self) -> None:
        self.book.connected = False

    def reconnect(self) -> None:
        self.book.connected = True


VENUES = {"scripted": ScriptedVenue}
