"""easytrader's own remote server, for users who already run it (docs/brokers/easytrader.md).

easytrader ships a small Flask app (``easytrader/server.py``, ``server.run(port=1430)``) that a
user starts on the Windows host beside the broker's client, and a client for it
(``easytrader.remoteclient.RemoteClient``). This adapter is :class:`EasytraderBroker` with a
``RemoteClient`` as its client object, so the dialect tables, the order-list confirmation and
the error rules are the same. What the wire changes:

* The server has no authentication and no TLS: anyone who reaches its port can trade the
  account. Bind it to a private network or tunnel it; for anything else use our gateway
  (``brokers/gateway/``, the ``gateway`` adapter), which signs every request.
* Routes: ``/prepare``, ``/balance``, ``/position``, ``/today_entrusts``, ``/today_trades``,
  ``/cancel_entrusts``, ``/buy``, ``/sell``, ``/cancel_entrust``, ``/auto_ipo``, ``/exit``. There is
  no market-order route and no cancel-all route: ``capabilities.market_orders`` is False and a
  market order is refused here (:class:`BrokerError`) before anything is sent.
* An error on the server comes back as HTTP 400 ``{"error": "<class '...'>: message"}``, which
  ``RemoteClient`` raises as a bare ``Exception``: a ``TradeError`` is recognised by its class
  name in that text and becomes :class:`BrokerError` with the broker's words; a connection that
  was refused or never opened is :class:`BrokerUnavailable`; any other failure while sending
  (a read timeout, a dropped connection, another error on the server) is :class:`BrokerTimeout`.
* ``RemoteClient`` sets no timeout; this adapter gives its session one (``timeout``, 15 s).
* Log-in: with ``user`` set (or ``login: prepare``) the adapter posts ``/prepare``, which makes the
  server build a new client with ``easytrader.use(client)`` and log it in (credentials travel in
  clear). Without, it uses whatever client the server already holds (``login: none``): a client
  that dies on the server side cannot then be brought back from here.

Settings: ``host``, ``port`` (1430), ``client`` (the easytrader client name the server uses, also
choosing the dialect), ``timeout``, and the :class:`EasytraderBroker` settings.
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.utils.translation import gettext_lazy

from brokers.adapters.easytrader import MSG_NOT_CONNECTED, EasytraderBroker
from brokers.interface import Capabilities
from brokers.registry import register
from trading.errors import BrokerUnavailable

_TRADE_ERROR = "TradeError'>: "


@register
class EasytraderRemoteBroker(EasytraderBroker):
    """An account behind easytrader's own server (see the module docstring)."""

    kind = "easytrader_remote"
    label = gettext_lazy("easytrader remote server (easytrader.server)")
    capabilities: ClassVar[Capabilities] = Capabilities(market_orders=False, modify=False, history=False, client_ref=False)

    def _new_client(self) -> Any:
        if self._factory is not None:
            return self._factory()
        host = self.settings.get("host")
        if not host:
            raise BrokerUnavailable(f"{MSG_NOT_CONNECTED}: easytrader_remote needs the setting 'host'")
        try:
            import requests
            from easytrader import remoteclient
        except Exception as exc:
            raise BrokerUnavailable(f"{MSG_NOT_CONNECTED}: {exc}") from exc
        timeout = float(self.settings.get("timeout", 15))

        class TimeoutSession(requests.Session):
            def request(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
                kwargs.setdefault("timeout", timeout)
                return super().request(*args, **kwargs)

        client = remoteclient.use(self.client_name, host=host, port=int(self.settings.get("port", 1430)))
        client._s = TimeoutSession()  # RemoteClient's own session waits for ever
        return client

    def _login_mode(self, client: Any) -> str:
        mode = str(self.settings.get("login") or "")
        return mode or ("prepare" if self.settings.get("user") or self.settings.get("config_path") else "none")

    def _refusal(self, exc: Exception) -> str | None:
        refusal = super()._refusal(exc)
        if refusal is not None:
            return refusal
        text = str(exc)
        return text.split(_TRADE_ERROR, 1)[1] if _TRADE_ERROR in text else None

    def _unreached(self, exc: Exception) -> bool:
        import requests

        if isinstance(exc, requests.ConnectTimeout):
            return True
        # refused or unresolvable: urllib3 never opened the connection, so nothing was sent
        return isinstance(exc, requests.ConnectionError) and any(
            word in str(exc) for word in ("NewConnectionError", "Connection refused", "Failed to resolve"))
