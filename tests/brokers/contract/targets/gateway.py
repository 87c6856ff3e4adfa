"""The broker gateway as a contract target: the ``gateway`` adapter over real HTTP on loopback to
a gateway (a thread, an ephemeral port, a journal file) hosting a client fake of
tests/brokers/fakes/easytrader_clients.py.

The broker side is the easytrader target's (funds, holdings, fills, rejections, refused cancels
and replayed trades go to the fake's books). ``gateway`` hosts the 华泰 client, and its faults
are the gateway's own:

* ``fail_next_place``: the network between the back office and the gateway loses the answer.
  With effect, the gateway passes the order to the client and its answer comes too late; without,
  the request is held and never handled. Either way the adapter's read times out.
* ``disconnect``: the gateway goes away (its port refuses connections); ``reconnect`` starts it
  again on the same port and journal, as a restarted Windows service would.

``gateway-gj`` hosts the 国金 client, which answers without entrust numbers, with that client's
own faults and its process dying (see :class:`GatewayGJVenue`).
"""

from __future__ import annotations

import tempfile
import threading
from pathlib import Path
from typing import Any

from brokers.adapters.gateway import GatewayBroker
from brokers.gateway.server import GatewayApp, Response
from brokers.interface import BrokerInterface
from tests.brokers.contract.targets.easytrader import EasytraderVenue, GJVenue, HTVenue
from tests.brokers.fakes.easytrader_clients import CLIENTS
from tests.brokers.gateway.harness import KEY, LoopbackGateway

#: the adapter's read timeout on loopback; a lost answer costs the test this long
TIMEOUT = 0.5


class LosingNetwork:
    """Stands between the server and the app: the next submit's answer (or request) is lost."""

    def __init__(self, app: GatewayApp) -> None:
        self.app = app
        self.lose_next: str | None = None  # "answer" | "request"
        self._released = threading.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.app, name)

    def handle(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Response:
        if method == "POST" and target.endswith("/submit") and self.lose_next:
            lost, self.lose_next = self.lose_next, None
            response = self.app.handle(method, target, headers, body) if lost == "answer" else Response(504, {})
            self._released.wait(4 * TIMEOUT)  # answer only after the adapter has given up
            return response
        return self.app.handle(method, target, headers, body)

    def release(self) -> None:
        self._released.set()


class OverGateway(EasytraderVenue):
    """An easytrader venue's client, hosted by a gateway on loopback; the adapter is ``gateway``."""

    def __init__(self) -> None:
        super().__init__()
        self._dir = tempfile.TemporaryDirectory(prefix="gateway-contract-")
        client = CLIENTS[self.client_name](self.host)  # logged in by the gateway, as on the Windows host
        login = lambda target: (target.connect if self.settings.get("login") == "connect" else target.prepare)(  # noqa: E731
            **{k: v for k, v in self.settings.items() if k != "login"})
        login(client)
        self.gateway = LoopbackGateway(client, Path(self._dir.name) / "journal.sqlite3", login=login)
        self._start()

    def _start(self) -> None:
        self.gateway.start()
        assert self.gateway.server is not None
        self.network = LosingNetwork(self.gateway.server.app)
        self.gateway.server.app = self.network  # type: ignore[assignment]

    def adapter(self) -> BrokerInterface:
        return GatewayBroker(self.account, {
            "url": self.gateway.url, "key_id": KEY.key_id, "secret": KEY.secret.hex(), "client": self.client_name,
            "timeout": TIMEOUT, "confirm_interval": 0,
        })

    def close(self) -> None:
        self.network.release()
        self.gateway.stop()
        self._dir.cleanup()


class GatewayVenue(OverGateway, HTVenue):
    """华泰 (answers with the entrust number); the network loses answers; the gateway restarts."""

    def fail_next_place(self, *, took_effect: bool) -> None:
        self.network.lose_next = "answer" if took_effect else "request"

    def disconnect(self) -> None:
        self.network.release()
        self.gateway.stop()

    def reconnect(self) -> None:
        self._start()


class GatewayGJVenue(OverGateway, GJVenue):
    """国金 (answers ``{"message": "success"}`` without a number, so the adapter binds its orders to
    their client_refs by what they say); the client's own faults (its window times out after
    entering the order, or reports success for an order never entered); the client process dies
    and comes back, and the gateway logs it in again."""


VENUES = {"gateway": GatewayVenue, "gateway-gj": GatewayGJVenue}
