"""The broker gateway as a contract target: the ``gateway`` adapter over real HTTP on loopback to
a gateway (a thread, an ephemeral port, a journal file) hosting a client fake of
tests/brokers/fakes/easytrader_clients.py.

The broker side is the easytrader target's (funds, holdings, fills, rejections, refused cancels
and replayed trades go to the fake's books). ``gateway`` hosts the 华泰 client, and its faults
are the gateway's own:

* ``fail_next_place``: the connection between the back office and the gateway drops. With
  effect, after the gateway passed the order to the client and before its answer went out;
  without, before the request was handled. Either way the adapter gets no answer.
* ``disconnect``: the gateway goes away (its port refuses connections); ``reconnect`` starts it
  again on the same port and journal, as a restarted Windows service would.

``gateway-gj`` hosts the 国金 client, which answers without entrust numbers, with that client's
own faults and its process dying (see :class:`GatewayGJVenue`).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from brokers.adapters.gateway import GatewayBroker
from brokers.gateway.server import GatewayRequestHandler, GatewayServer, Response
from brokers.interface import BrokerInterface
from tests.brokers.contract.targets.easytrader import EasytraderVenue, GJVenue, HTVenue
from tests.brokers.fakes.easytrader_clients import CLIENTS
from tests.brokers.gateway.harness import KEY, LoopbackGateway


class LossyNetwork:
    """What the network between the back office and the gateway does to the next submit."""

    lose_next: str | None = None  # "answer": handled, the answer lost; "request": never handled


class LossyHandler(GatewayRequestHandler):
    network = LossyNetwork()  # replaced per venue, in a subclass

    def respond(self, body: bytes) -> Response | None:
        lose = self.network.lose_next
        if self.command == "POST" and self.path.endswith("/submit") and lose:
            self.network.lose_next = None
            if lose == "answer":
                super().respond(body)
            return None  # the connection drops: the adapter gets no answer
        return super().respond(body)


class OverGateway(EasytraderVenue):
    """An easytrader venue's client, hosted by a gateway on loopback; the adapter is ``gateway``."""

    def __init__(self) -> None:
        super().__init__()
        self._dir = tempfile.TemporaryDirectory(prefix="gateway-contract-")
        client = CLIENTS[self.client_name](self.host)  # logged in by the gateway, as on the Windows host
        settings = dict(self.settings)
        mode = settings.pop("login", "prepare")

        def login(target: Any) -> None:
            getattr(target, mode)(**settings)

        login(client)
        self.network = LossyNetwork()
        handler = type("Handler", (LossyHandler,), {"network": self.network})
        server_class = type("Server", (GatewayServer,), {"handler_class": handler})
        self.gateway = LoopbackGateway(client, Path(self._dir.name) / "journal.sqlite3", login=login,
                                       server_class=server_class)
        self.gateway.start()

    def adapter(self) -> BrokerInterface:
        return GatewayBroker(self.account, {
            "url": self.gateway.url, "key_id": KEY.key_id, "secret": KEY.secret.hex(), "client": self.client_name,
            "timeout": 10, "confirm_interval": 0,
        })

    def close(self) -> None:
        self.gateway.stop()
        self._dir.cleanup()


class GatewayVenue(OverGateway, HTVenue):
    """华泰 (answers with the entrust number); the network loses answers; the gateway restarts."""

    def fail_next_place(self, *, took_effect: bool) -> None:
        self.network.lose_next = "answer" if took_effect else "request"

    def disconnect(self) -> None:
        self.gateway.stop()

    def reconnect(self) -> None:
        self.gateway.start()


class GatewayGJVenue(OverGateway, GJVenue):
    """国金 (answers ``{"message": "success"}`` without a number, so the adapter binds its orders to
    their client_refs by what they say); the client's own faults (its window times out after
    entering the order, or reports success for an order never entered); the client process dies
    and comes back, and the gateway logs it in again."""


VENUES = {"gateway": GatewayVenue, "gateway-gj": GatewayGJVenue}
