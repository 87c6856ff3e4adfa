"""A gateway on loopback for tests: a real HTTP(S) server in a thread, on an ephemeral port
(kept across a restart), with its journal in a file so a restart keeps it."""

from __future__ import annotations

import ssl
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from brokers.gateway import signing
from brokers.gateway.client import GatewayClient
from brokers.gateway.journal import Journal
from brokers.gateway.server import ClientHost, GatewayApp, GatewayServer

KEY = signing.Key("backoffice-1", bytes.fromhex("5e" * 32))


class LoopbackGateway:
    def __init__(self, client: Any, journal_path: str | Path, *, keys: dict[str, signing.Key] | None = None,
                 tls: ssl.SSLContext | None = None, login: Callable[[Any], None] | None = None,
                 server_class: type[GatewayServer] = GatewayServer) -> None:
        self.client = client
        self.server_class = server_class
        self.login = login
        self.journal_path = str(journal_path)
        self.keys = keys or {KEY.key_id: KEY}
        self.tls = tls
        self.port = 0
        self.server: GatewayServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def start(self) -> LoopbackGateway:
        app = GatewayApp(ClientHost(self.client, login=self.login), Journal(self.journal_path), self.keys)
        self.server = self.server_class(("127.0.0.1", self.port), app, tls=self.tls)
        self.port = self.server.port
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True, name=f"gateway-{self.port}")
        self._thread.start()
        return self

    def stop(self) -> None:
        """The gateway process goes away (its port refuses connections; its journal stays on disk)."""
        if self.server is None:
            return
        self.server.shutdown()
        self.server.server_close()
        self.server.app.journal.close()
        assert self._thread is not None
        self._thread.join(5)
        self.server = None

    def restart(self) -> LoopbackGateway:
        self.stop()
        return self.start()

    def connect(self, key: signing.Key = KEY, **kwargs: Any) -> GatewayClient:
        kwargs.setdefault("timeout", 5.0)
        return GatewayClient(self.url, key.key_id, key.secret, **kwargs)
