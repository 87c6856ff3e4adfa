"""The back office's side of the gateway: easytrader's client API over signed HTTP (stdlib only).

:class:`GatewayClient` has the attributes and methods of an easytrader client (``balance``,
``position``, ``today_entrusts``, ``today_trades``, ``buy``, ``sell``, ``market_buy``,
``market_sell``, ``cancel_entrust``) and answers with what the client hosted on the gateway
returned, decoded from JSON, so the easytrader adapter maps its broker dialect as if the client
were local. On top of that API:

* ``buy``/``sell``/``market_*`` take ``client_ref`` (our order id): the gateway sends a client_ref
  to the broker at most once and answers a second submit of it with the first answer;
* ``client_refs``: after ``today_entrusts``, the entrust numbers submitted through the gateway
  today and the client_ref of each; ``unbound``: today's submissions whose entrust number the
  gateway does not know (answered without one, or not answered), which ``bind`` completes;
* ``health()``, ``events(since)``, ``submission(client_ref)``.

Failures are the exceptions below, by what is known of the request's fate:
:class:`GatewayUnavailable` (it certainly did not reach the hosted client), :class:`GatewayTimeout`
(sent, no answer or a gateway error: it may have taken effect), :class:`GatewayRefused` (the
gateway refused it; the hosted client was not called) and :class:`RemoteClientError` (the hosted client raised).

TLS: an ``https://`` url is verified against ``ca`` (a PEM file, e.g. the gateway's own
self-signed certificate) or the system's roots, and, with ``fingerprint`` (SHA-256 of the
certificate, hex, colons allowed), pinned to that one certificate.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import ssl
import time
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from brokers.gateway import signing


class GatewayError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class GatewayUnavailable(GatewayError):
    """The request certainly did not reach the hosted client (no connection, TLS or pin failure)."""


class GatewayTimeout(GatewayError):
    """The request was sent and no answer came back: it may or may not have taken effect."""


class GatewayRefused(GatewayError):
    """The gateway refused the request (401 signature, 400 input, 409 conflict...); the hosted
    client was not called."""

    def __init__(self, status: int, kind: str, message: str) -> None:
        super().__init__(f"{status} {kind}: {message}")
        self.status = status
        self.kind = kind
        self.reason = message


class RemoteClientError(GatewayError):
    """The hosted client raised ``type_name`` (from ``module``) with ``message``."""

    def __init__(self, type_name: str, module: str, message: str) -> None:
        super().__init__(message)
        self.type_name = type_name
        self.module = module


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)  # easytrader's clients take prices as numbers
    raise TypeError(f"{type(value).__name__} is not JSON")


def normalise_fingerprint(text: str) -> str:
    return text.replace(":", "").replace(" ", "").lower()


class GatewayClient:
    """One gateway; a connection per request (see the module docstring)."""

    def __init__(self, url: str, key_id: str, secret: str | bytes, *, ca: str | None = None,
                 fingerprint: str | None = None, timeout: float = 15.0, connect_timeout: float = 5.0,
                 clock: Callable[[], float] = time.time) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"gateway url must be http(s)://host:port, not {url!r}")
        self.url = url
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port or (443 if self._https else 80)
        self._prefix = parts.path.rstrip("/")
        self._key = signing.Key(key_id, secret if isinstance(secret, bytes) else bytes.fromhex(secret))
        self._fingerprint = normalise_fingerprint(fingerprint) if fingerprint else None
        self._tls = self._context(ca) if self._https else None
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.clock = clock
        self.client_refs: dict[str, str] = {}
        self.unbound: list[dict[str, Any]] = []

    def __repr__(self) -> str:
        return f"GatewayClient({self.url!r}, key_id={self._key.key_id!r})"

    def _context(self, ca: str | None) -> ssl.SSLContext:
        if ca:
            context = ssl.create_default_context(cafile=ca)
        elif self._fingerprint:
            # Pinned to one certificate: trust is the fingerprint, checked after the handshake.
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        else:
            context = ssl.create_default_context()
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        return context

    # easytrader's client API --------------------------------------------------------------

    @property
    def balance(self) -> Any:
        return self._call("GET", "/balance")["result"]

    @property
    def position(self) -> Any:
        return self._call("GET", "/position")["result"]

    @property
    def today_entrusts(self) -> Any:
        answer = self._call("GET", "/today_entrusts")
        self.client_refs = dict(answer.get("client_refs") or {})
        self.unbound = list(answer.get("unbound") or [])
        return answer["result"]

    @property
    def today_trades(self) -> Any:
        return self._call("GET", "/today_trades")["result"]

    def buy(self, security: str, price: Any, amount: int, *, client_ref: str | None = None, **kwargs: Any) -> Any:
        return self.submit("buy", security, amount, price=price, client_ref=client_ref, **kwargs)

    def sell(self, security: str, price: Any, amount: int, *, client_ref: str | None = None, **kwargs: Any) -> Any:
        return self.submit("sell", security, amount, price=price, client_ref=client_ref, **kwargs)

    def market_buy(self, security: str, amount: int, ttype: str | None = None, *, client_ref: str | None = None,
                   **kwargs: Any) -> Any:
        return self.submit("market_buy", security, amount, ttype=ttype, client_ref=client_ref, **kwargs)

    def market_sell(self, security: str, amount: int, ttype: str | None = None, *, client_ref: str | None = None,
                    **kwargs: Any) -> Any:
        return self.submit("market_sell", security, amount, ttype=ttype, client_ref=client_ref, **kwargs)

    def cancel_entrust(self, entrust_no: str | int) -> Any:
        return self._call("POST", "/cancel_entrust", {"entrust_no": entrust_no})["result"]

    # the gateway's own --------------------------------------------------------------------

    def submit(self, action: str, security: str, amount: int, *, client_ref: str | None = None,
               price: Any = None, ttype: str | None = None, limit_price: Any = None) -> Any:
        """Send an order once under ``client_ref`` (a random one when None, which gives up the
        idempotency); the hosted client's answer, or the first answer when it was sent before."""
        body = {"client_ref": client_ref or uuid.uuid4().hex, "action": action, "security": security,
                "amount": amount, "price": price, "ttype": ttype, "limit_price": limit_price}
        return self._call("POST", "/submit", {k: v for k, v in body.items() if v is not None})["result"]

    def bind(self, client_ref: str, entrust_no: str) -> None:
        """Tell the gateway that the order ``entrust_no`` is the submission ``client_ref``."""
        self._call("POST", "/bind", {"client_ref": client_ref, "entrust_no": entrust_no})
        self.client_refs[entrust_no] = client_ref
        self.unbound = [u for u in self.unbound if u.get("client_ref") != client_ref]

    def health(self) -> dict[str, Any]:
        return self._call("GET", "/health")

    def events(self, since: int = 0, limit: int = 500) -> dict[str, Any]:
        return self._call("GET", "/events?" + urlencode({"since": since, "limit": limit}))

    def submission(self, client_ref: str) -> dict[str, Any] | None:
        try:
            return self._call("GET", "/submissions/" + quote(client_ref, safe=""))
        except GatewayRefused as refusal:
            if refusal.status == 404:
                return None
            raise

    # transport ----------------------------------------------------------------------------

    def _call(self, method: str, path: str, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        body = b"" if payload is None else json.dumps(payload, default=_json_default).encode("utf-8")
        target = self._prefix + path
        headers = signing.sign(self._key, method, target, body, timestamp=int(self.clock()))
        headers["Content-Type"] = "application/json"
        headers["Connection"] = "close"
        connection = self._connect()
        try:
            try:
                connection.request(method, target, body=body, headers=headers)
            except OSError as error:
                # The request did not go out whole; the gateway refuses a truncated one (its
                # signature covers the body), so it never reached the client.
                raise GatewayUnavailable(f"gateway {self._host}:{self._port}: sending failed: {error}") from None
            try:
                response = connection.getresponse()
                data = response.read()
            except (OSError, http.client.HTTPException) as error:
                raise GatewayTimeout(f"gateway {self._host}:{self._port}: no answer: {error}") from None
        finally:
            connection.close()
        try:
            answer = json.loads(data)
        except ValueError:
            raise GatewayTimeout(f"gateway answered {response.status} without JSON") from None
        if response.status == 200:
            return answer
        problem = answer.get("error") or {}
        kind, message = str(problem.get("type", "")), str(problem.get("message", ""))
        if response.status == 502:
            raise RemoteClientError(kind, str(problem.get("module", "")), message)
        if response.status == 409 and kind == "outcome_unknown" or response.status >= 500:
            # a gateway error (500: say the journal could not record the client's answer) may
            # come after the client was called: the outcome is unknown, not refused
            raise GatewayTimeout(f"{response.status} {kind}: {message}")
        raise GatewayRefused(response.status, kind, message)

    def _connect(self) -> http.client.HTTPConnection:
        connection: http.client.HTTPConnection
        if self._tls is not None:
            connection = http.client.HTTPSConnection(self._host, self._port, timeout=self.connect_timeout,
                                                     context=self._tls)
        else:
            connection = http.client.HTTPConnection(self._host, self._port, timeout=self.connect_timeout)
        try:
            connection.connect()
        except (OSError, ssl.SSLError) as error:
            connection.close()
            raise GatewayUnavailable(f"gateway {self._host}:{self._port} unreachable: {error}") from None
        assert connection.sock is not None
        if self._fingerprint:
            assert isinstance(connection.sock, ssl.SSLSocket)
            certificate = connection.sock.getpeercert(binary_form=True) or b""
            if hashlib.sha256(certificate).hexdigest() != self._fingerprint:
                connection.close()
                raise GatewayUnavailable(f"gateway {self._host}:{self._port}: certificate does not match the pin")
        connection.sock.settimeout(self.timeout)
        return connection
