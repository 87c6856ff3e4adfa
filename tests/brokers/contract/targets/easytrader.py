"""easytrader's clients as contract targets: the adapter over faithful fakes of three broker
builds (tests/brokers/fakes/easytrader_clients.py), each failing as the real one does.

* ``easytrader-ht``: 华泰 (ht_client), logs in with ``prepare``; a lost answer is the window
  timing out before or after the order was entered.
* ``easytrader-gj``: 国金 (gj_client), answers ``{"message": "success"}`` without an entrust number;
  an order lost on the way is the known lie (success reported, nothing entered).
* ``easytrader-ths``: 通用同花顺 (universal_client), attaches to a logged-in client with ``connect``.

miniqmt through easytrader is no target: its ``cancel_entrust`` answers ``{"success": False,
"message": "failed"}`` and the broker's reason only reaches a callback easytrader logs, so the
refused-cancel test cannot see the broker's words (unit tests cover the rest of its dialect).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from brokers.adapters.easytrader import EasytraderBroker
from brokers.interface import BrokerInterface
from tests.brokers.contract.venue import Venue
from tests.brokers.fakes.easytrader_clients import CLIENTS, BrokerHost


class EasytraderVenue(Venue):
    client_name = ""
    settings: dict[str, Any] = {}
    #: the faults standing for "no answer": (took effect, did not)
    lost_with_effect = "lost_after"
    lost_without_effect = "lost_before"

    def __init__(self) -> None:
        self.host = BrokerHost()

    def adapter(self) -> BrokerInterface:
        return EasytraderBroker(self.account, {"client": self.client_name, "confirm_interval": 0, **self.settings},
                                client=CLIENTS[self.client_name](self.host))

    def fund(self, cash: Decimal) -> None:
        self.host.cash = cash

    def hold(self, symbol: str, quantity: int, avg_cost: Decimal) -> None:
        self.host.holdings[symbol.split(".")[0]] = (quantity, avg_cost)

    def fill(self, broker_order_id: str, quantity: int, price: Decimal) -> None:
        self.host.fill(broker_order_id, quantity, price)

    def reject(self, broker_order_id: str, message: str) -> None:
        self.host.reject(broker_order_id, message)

    def fail_next_place(self, *, took_effect: bool) -> None:
        self.host.place_faults.append(self.lost_with_effect if took_effect else self.lost_without_effect)

    def refuse_next_cancel(self, message: str) -> None:
        self.host.cancel_refusals.append(message)

    def repeat_trade_reports(self) -> None:
        self.host.replay_trades = True

    def disconnect(self) -> None:
        self.host.disconnect()

    def reconnect(self) -> None:
        self.host.reconnect()


class HTVenue(EasytraderVenue):
    client_name = "ht_client"
    settings = {"user": "666600001234", "password": "secret", "comm_password": "comm", "exe_path": r"C:\htzqzyb2\xiadan.exe"}


class GJVenue(EasytraderVenue):
    client_name = "gj_client"
    settings = {"user": "8880001234", "password": "secret", "exe_path": r"C:\全能行证券交易终端\xiadan.exe"}
    lost_without_effect = "phantom"


class THSVenue(EasytraderVenue):
    client_name = "universal_client"
    settings = {"login": "connect", "exe_path": r"C:\ths\xiadan.exe"}


VENUES = {"easytrader-ht": HTVenue, "easytrader-gj": GJVenue, "easytrader-ths": THSVenue}
