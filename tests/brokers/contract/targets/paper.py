"""The paper broker (brokers/adapters/paper.py) as a contract target.

Its books are database rows, so this venue controls the broker the way the simulated market and
an operator would: ``fill`` moves the quote to the order's price with just the volume to fill
(``quotes_publish``, which runs the paper broker's matcher), ``reject`` is the exchange rejecting
an accepted order (``paper_order_reject``), ``hold`` sets a position in its books, and the network
faults (a lost answer, a refused cancel, a disconnect, a replay of trade reports) are the paper
broker's own ``faults`` settings (see its module docstring). The venue keeps that settings
mapping and the adapters share it, as every adapter of an account reads the account's settings:
a change applies to their next call.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from brokers.adapters.paper import PaperBroker
from brokers.interface import BrokerInterface
from brokers.models import PaperAccount, PaperOrder, PaperPosition
from brokers.services import account_create, paper_order_reject, quotes_publish
from tests import factories
from tests.brokers.contract.venue import Venue

PREV_CLOSE, BID, ASK = "10.00", "9.99", "10.00"  # limits 9.00 - 11.00; a buy at 9.90 rests


class PaperVenue(Venue):
    def __init__(self) -> None:
        for symbol in (self.symbol, "600036.SH"):
            factories.instrument(symbol)
        quotes_publish([{"symbol": self.symbol, "prev_close": PREV_CLOSE, "last": ASK, "bid": BID, "ask": ASK,
                         "bid_volume": 0, "ask_volume": 0}])
        self.faults: dict[str, Any] = {"next": {}}
        account_create(name=self.account, broker_kind="paper", broker_settings={})

    def adapter(self) -> BrokerInterface:
        return PaperBroker(self.account, {"faults": self.faults})

    def fund(self, cash: Decimal) -> None:
        PaperAccount.objects.filter(account_name=self.account).update(cash=cash)

    def hold(self, symbol: str, quantity: int, avg_cost: Decimal) -> None:
        PaperPosition.objects.update_or_create(account_name=self.account, symbol=symbol,
                                               defaults={"quantity": quantity, "cost_amount": avg_cost * quantity})

    def fill(self, broker_order_id: str, quantity: int, price: Decimal) -> None:
        order = PaperOrder.objects.get(account_name=self.account, broker_order_id=broker_order_id)
        tick = Decimal("0.01")
        if order.side == "BUY":  # offered at the order's price, just this volume
            quote = {"bid": price - tick, "ask": price, "bid_volume": 0, "ask_volume": quantity}
        else:
            quote = {"bid": price, "ask": price + tick, "bid_volume": quantity, "ask_volume": 0}
        quotes_publish([{"symbol": order.symbol, "last": price, **quote}])

    def reject(self, broker_order_id: str, message: str) -> None:
        paper_order_reject(account_name=self.account, broker_order_id=broker_order_id, message=message)

    def _next(self, call: str, fault: str) -> None:
        self.faults["next"].setdefault(call, []).append(fault)

    def fail_next_place(self, *, took_effect: bool) -> None:
        self._next("place", "timeout_after" if took_effect else "timeout_before")

    def refuse_next_cancel(self, message: str) -> None:
        self._next("cancel", f"error:{message}")

    def repeat_trade_reports(self) -> None:
        self.faults.update(calls=["query"], kinds={"duplicate": 1.0})

    def disconnect(self) -> None:
        self.faults["disconnected"] = True

    def reconnect(self) -> None:
        self.faults["disconnected"] = False


VENUES = {"paper": PaperVenue}
