"""gateway: an account traded through our broker gateway on the broker's Windows host
(docs/brokers/gateway.md).

The gateway (``brokers/gateway/``) hosts an easytrader client (a 同花顺 GUI build, or miniqmt)
and serves its API over HMAC-signed HTTP(S). This adapter is the easytrader adapter with
:class:`brokers.gateway.client.GatewayClient` as its client, so every broker dialect is mapped
by the one table in :mod:`brokers.adapters.easytrader`; what the gateway adds:

* the order goes out under our ``client_ref``: the gateway sends a client_ref to the broker at
  most once (its journal survives a restart) and answers a repeat with the first answer, so a
  submission whose answer was lost can be sent again safely;
* the gateway reports, with today's order list, the client_ref each entrust number was
  submitted under, so ``BrokerOrder.client_ref`` is filled and ``capabilities.client_ref`` is
  True. A submission the gateway holds no entrust number for (a client that answers
  ``{"message": "success"}``, or one whose answer was lost) is bound here to its order by what
  the order says, as the easytrader adapter confirms such an order, and the binding is written
  to the gateway's journal: only when exactly one unbound order is like it and it is like no
  other unbound submission; an ambiguous one stays unbound (client_ref empty) until it is not.

Settings: ``url`` (``https://host:port``), ``key_id``, ``secret`` (hex, from the gateway's key
file), ``ca`` (PEM file to verify the gateway's certificate, e.g. the certificate itself) and/or
``fingerprint`` (SHA-256 of the certificate: pinned), ``timeout`` (seconds, 15) and
``connect_timeout`` (5); ``client``: the easytrader client the gateway hosts (``ht_client``,
``gj_client``, ``universal_client``, ``miniqmt``...), which picks the dialect; the easytrader
adapter's ``columns``, ``confirm_reads``, ``confirm_interval`` and ``market_ttype`` apply too.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any, ClassVar

from django.utils.translation import gettext_lazy

from brokers.adapters.easytrader import EasytraderBroker, _is_like
from brokers.gateway.client import (
    GatewayClient,
    GatewayRefused,
    GatewayTimeout,
    GatewayUnavailable,
    RemoteClientError,
)
from brokers.interface import BrokerOrder, Capabilities, OrderAck, OrderRequest
from brokers.registry import register
from trading.errors import BrokerError, BrokerTimeout, BrokerUnavailable

MSG_GATEWAY_DOWN = "券商网关不可达 (the broker gateway cannot be reached)"
MSG_GATEWAY_NO_ANSWER = "券商网关未应答: 结果未知 (no answer from the broker gateway: outcome unknown)"
MSG_GATEWAY_REFUSED = "券商网关拒绝了请求 (the broker gateway refused the request)"
MSG_CLIENT_DOWN = "网关上的券商客户端未连接 (the broker's client on the gateway is not connected)"


class RemoteClient:
    """A :class:`GatewayClient` as the easytrader adapter sees a client: easytrader's API, with
    the gateway's failures as our broker errors and the hosted client's own exceptions passed on
    (so the adapter treats them as it treats a local client's). ``client_ref`` is the order being
    sent; the adapter's caller sets it around each placement."""

    def __init__(self, gateway: GatewayClient, *, client_name: str = "") -> None:
        self.gateway = gateway
        self.client_ref: str | None = None
        self.broker_type = client_name

    def _call(self, work: Any) -> Any:
        try:
            return work()
        except GatewayUnavailable as error:
            raise BrokerUnavailable(f"{MSG_GATEWAY_DOWN}: {error.message}") from error
        except GatewayTimeout as error:
            raise BrokerTimeout(f"{MSG_GATEWAY_NO_ANSWER}: {error.message}") from error
        except GatewayRefused as error:
            if error.status == 401:  # our key or clock is wrong: nothing reached the broker
                raise BrokerUnavailable(f"{MSG_GATEWAY_REFUSED}: {error.message}") from error
            raise BrokerError(f"{MSG_GATEWAY_REFUSED}: {error.message}") from error
        except RemoteClientError as error:
            if error.type_name == "TradeError":  # the client's "提示" dialog refused: the broker's words
                raise BrokerError(error.message) from error
            raise

    # the session ---------------------------------------------------------------------------

    def connect(self, **_settings: Any) -> None:
        """The gateway answers and its client is logged in (the gateway logs it in itself)."""
        health = self._call(self.gateway.health)
        if not health.get("connected"):
            raise BrokerUnavailable(MSG_CLIENT_DOWN)

    prepare = connect

    # easytrader's client API ---------------------------------------------------------------

    @property
    def balance(self) -> Any:
        return self._call(lambda: self.gateway.balance)

    @property
    def position(self) -> Any:
        return self._call(lambda: self.gateway.position)

    @property
    def today_entrusts(self) -> Any:
        return self._call(lambda: self.gateway.today_entrusts)

    @property
    def today_trades(self) -> Any:
        return self._call(lambda: self.gateway.today_trades)

    def buy(self, security: str, price: Any, amount: int, **kwargs: Any) -> Any:
        return self._call(lambda: self.gateway.buy(security, price, amount, client_ref=self.client_ref, **kwargs))

    def sell(self, security: str, price: Any, amount: int, **kwargs: Any) -> Any:
        return self._call(lambda: self.gateway.sell(security, price, amount, client_ref=self.client_ref, **kwargs))

    def market_buy(self, security: str, amount: int, **kwargs: Any) -> Any:
        return self._call(lambda: self.gateway.market_buy(security, amount, client_ref=self.client_ref, **kwargs))

    def market_sell(self, security: str, amount: int, **kwargs: Any) -> Any:
        return self._call(lambda: self.gateway.market_sell(security, amount, client_ref=self.client_ref, **kwargs))

    def cancel_entrust(self, entrust_no: Any) -> Any:
        return self._call(lambda: self.gateway.cancel_entrust(entrust_no))


@register
class GatewayBroker(EasytraderBroker):
    """An easytrader client on the broker's Windows host, through our gateway (module docstring)."""

    kind = "gateway"
    label = gettext_lazy("broker gateway: easytrader / miniQMT on the Windows host")
    capabilities: ClassVar[Capabilities] = Capabilities(market_orders=True, modify=False, history=False, client_ref=True)

    def __init__(self, account_name: str, settings: dict[str, Any] | None = None, *,
                 gateway: GatewayClient | None = None) -> None:
        settings = {**(settings or {}), "login": "connect"}  # the gateway logs its client in itself
        if gateway is None:
            try:
                gateway = GatewayClient(
                    str(settings["url"]), str(settings["key_id"]), str(settings["secret"]),
                    ca=settings.get("ca") or None, fingerprint=settings.get("fingerprint") or None,
                    timeout=float(settings.get("timeout", 15)),
                    connect_timeout=float(settings.get("connect_timeout", 5)),
                )
            except (KeyError, ValueError) as error:
                # the message names the setting, never its value (the secret is one)
                raise BrokerUnavailable(f"{MSG_GATEWAY_DOWN}: settings url, key_id and secret (hex) are required "
                                        f"({type(error).__name__})") from None
        self.remote = RemoteClient(gateway, client_name=str(settings.get("client", "")))
        super().__init__(account_name, settings, client=self.remote)

    def heartbeat(self) -> None:
        """The gateway's health: up, and its client answered within seconds (else the gateway
        probes it with a balance read). Cheaper than our balance read through a GUI client."""
        with self._session.lock:
            self.login()
            try:
                self.remote.connect()
            except BrokerError:
                self._lost()
                raise

    def place_order(self, request: OrderRequest) -> OrderAck:
        """The easytrader adapter's placement, sent under ``request.client_ref``: a repeat after a
        lost answer gets the first answer from the gateway's journal instead of a second order."""
        with self._session.lock:
            self.remote.client_ref = request.client_ref
            try:
                ack = super().place_order(request)
            finally:
                self.remote.client_ref = None
            if ack.broker_order_id not in self.remote.gateway.client_refs:
                # confirmed by what it says (the client gave no number): the gateway learns which it is
                self._bind(request.client_ref, ack.broker_order_id)
            return ack

    def query_orders(self) -> list[BrokerOrder]:
        """Today's orders, each with the client_ref the gateway submitted it under (if it did)."""
        with self._session.lock:
            orders = super().query_orders()
            gateway = self.remote.gateway
            for submission in list(gateway.unbound):
                order = _the_one_like(submission, orders, gateway.client_refs, gateway.unbound)
                if order is not None:
                    self._bind(submission["client_ref"], order.broker_order_id)
            refs = dict(gateway.client_refs)
        return [replace(o, client_ref=refs[o.broker_order_id]) if o.broker_order_id in refs else o for o in orders]

    def _bind(self, client_ref: str, broker_order_id: str) -> None:
        try:
            self.remote._call(lambda: self.remote.gateway.bind(client_ref, broker_order_id))
        except BrokerError:
            pass  # unbound for now (another worker bound it, or the gateway is away): tried again on the next read


def _as_request(submission: dict[str, Any]) -> tuple[OrderRequest, str] | None:
    """The journal's record of a submission as the order request it was, and its 6-digit code."""
    sent = submission.get("request") or {}
    action = str(sent.get("action", ""))
    try:
        request = OrderRequest(
            client_ref=str(submission.get("client_ref")), symbol=str(sent["security"]),
            side="BUY" if action.endswith("buy") else "SELL",
            order_type="MARKET" if action.startswith("market") else "LIMIT", quantity=int(sent["amount"]),
            price=Decimal(str(sent["price"])) if sent.get("price") is not None else None,
        )
    except (KeyError, TypeError, ValueError, ArithmeticError):
        return None
    return request, request.symbol[-6:]


def _the_one_like(submission: dict[str, Any], orders: list[BrokerOrder], refs: dict[str, str],
                  unbound: list[dict[str, Any]]) -> BrokerOrder | None:
    """The order that is ``submission``'s: the only unbound order like it, like no other unbound
    submission. None when there is none, or which is which cannot be told."""
    parsed = _as_request(submission)
    if parsed is None:
        return None
    free = [o for o in orders if o.broker_order_id not in refs]
    candidates = [o for o in free if _is_like(o, *parsed)]
    if len(candidates) != 1:
        return None
    rivals = [u for u in unbound if u is not submission and (other := _as_request(u)) is not None
              and _is_like(candidates[0], *other)]
    return None if rivals else candidates[0]
