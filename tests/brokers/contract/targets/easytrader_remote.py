"""easytrader's own server as a contract target: ``easytrader.server``'s Flask app served on
loopback in a thread (werkzeug ``make_server``), a fake 华泰 client injected as its global user,
and our ``easytrader_remote`` adapter talking to it through easytrader's ``RemoteClient``.

The broker side is the 华泰 fake (tests/brokers/fakes/easytrader_clients.py); ``disconnect`` is
the network to the Windows host going away (the server stops, connections are refused) and
``reconnect`` the server back on the same port with the same client.
"""

from __future__ import annotations

import threading
from typing import Any

from brokers.adapters.easytrader_remote import EasytraderRemoteBroker
from brokers.interface import BrokerInterface
from tests.brokers.contract.targets.easytrader import EasytraderVenue
from tests.brokers.fakes.easytrader_clients import HTClient


class EasytraderServer:
    """easytrader.server's app on 127.0.0.1 in a thread, serving ``user``."""

    def __init__(self, user: Any, port: int = 0) -> None:
        from easytrader import server

        self.module = server
        server.global_store["user"] = user
        self.port = port
        self._server: Any = None
        self.start()

    def start(self) -> None:
        from werkzeug.serving import make_server

        self._server = make_server("127.0.0.1", self.port, self.module.app, threaded=True)
        self.port = self._server.server_port
        server = self._server
        threading.Thread(target=lambda: server.serve_forever(poll_interval=0.05), name="easytrader-server", daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def close(self) -> None:
        self.stop()
        self.module.global_store.pop("user", None)


class RemoteVenue(EasytraderVenue):
    """The 华泰 venue's broker side, reached through easytrader's server."""

    def __init__(self) -> None:
        super().__init__()
        user = HTClient(self.host)
        user.prepare(user="666600001234", password="secret", comm_password="comm")  # logged in on the host
        self.server = EasytraderServer(user)

    def adapter(self) -> BrokerInterface:
        return EasytraderRemoteBroker(self.account, {"client": "ht_client", "host": "127.0.0.1", "port": self.server.port,
                                                     "timeout": 5, "confirm_interval": 0})

    def disconnect(self) -> None:
        self.server.stop()

    def reconnect(self) -> None:
        self.server.start()

    def close(self) -> None:
        self.server.close()


VENUES = {"easytrader-remote": RemoteVenue}
