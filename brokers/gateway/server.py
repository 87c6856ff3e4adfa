"""The gateway's HTTP service: an easytrader-API client object behind a signed JSON API.

Routes (every one signed, see :mod:`brokers.gateway.signing`; answers are JSON objects):

========================  =====================================================================
``GET /health``           ``{"connected": bool, "client": ...}`` (reads ``balance`` to probe
                          when no call succeeded in the last ``probe_after`` seconds)
``GET /balance``          ``{"result": client.balance}`` as the client returned it
``GET /position``         ``{"result": client.position}``
``GET /today_entrusts``   ``{"result": client.today_entrusts, "client_refs": {entrust_no: ref},
                          "unbound": [...]}``: today's submissions with no entrust number yet
``POST /bind``            ``{"client_ref", "entrust_no"}``: the back office found the order of a
                          submission answered without a number (or not answered)
``GET /today_trades``     ``{"result": client.today_trades}``
``POST /submit``          ``{"client_ref", "action": buy|sell|market_buy|market_sell, "security",
                          "amount", "price"?, "ttype"?, "limit_price"?}``: the client's answer,
                          journalled; the same client_ref again returns the first answer
                          (``"replayed": true``) and never reaches the client twice
``GET /submissions/REF``  what the journal holds for one client_ref
``POST /cancel_entrust``  ``{"entrust_no"}``: ``{"result": client.cancel_entrust(entrust_no)}``
``GET /events?since=N``   ``{"events": [...], "last": seq}``: journal events after N
========================  =====================================================================

Failures: 401 ``{"error": {"type": "unauthorized", "message": reason}}`` for any signing
problem (the hosted client is never reached); 400/404/409/413 for bad requests; 502 with the
client's exception type and message when the hosted client raised; 409 ``outcome_unknown`` for a
client_ref whose earlier submission has no recorded answer (in flight, or the gateway died during
it). This module imports nothing of Django or of the back office.
"""

from __future__ import annotations

import hmac
import json
import logging
import math
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from brokers.gateway import signing
from brokers.gateway.journal import Journal

logger = logging.getLogger("brokers.gateway")

MAX_BODY = 64 * 1024
ACTIONS = ("buy", "sell", "market_buy", "market_sell")
_REF = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


@dataclass
class Response:
    status: int
    body: dict[str, Any]


def _error(status: int, kind: str, message: str, **extra: Any) -> Response:
    return Response(status, {"error": {"type": kind, "message": message, **extra}})


class Unauthorized(Exception):
    """A request whose signature does not hold; ``str`` is the reason sent back."""


class ClientHost:
    """The hosted easytrader-API object. GUI clients drive one window, so calls run one at a time.

    ``login`` (the client's ``prepare`` or ``connect`` with its settings) runs again before the
    next call once a call failed other than by the client's refusal (``TradeError``): the client
    process may have died and come back (a watchdog restarting it), and a window handle or an
    xtquant session from before is stale.
    """

    def __init__(self, client: Any, *, name: str = "", login: Callable[[Any], None] | None = None,
                 clock: Callable[[], float] = time.time, probe_after: float = 10.0) -> None:
        self.client = client
        self.name = name or type(client).__name__
        self.login = login
        self.clock = clock
        self.probe_after = probe_after
        self._lock = threading.Lock()
        self._last_ok: float | None = None
        self._stale = False

    def read(self, attribute: str) -> Any:
        """A property of the client (``balance``, ``position``, ``today_entrusts``, ...)."""
        return self._run(lambda: getattr(self.client, attribute))

    def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return self._run(lambda: getattr(self.client, method)(*args, **kwargs))

    def _run(self, work: Callable[[], Any]) -> Any:
        with self._lock:
            try:
                if self._stale and self.login is not None:
                    logger.info("logging the client in again")
                    self.login(self.client)
                self._stale = False
                result = work()
            except Exception as error:
                # A refusal leaves the session up; anything else may not have: the next health
                # check probes instead of trusting the last success, the next call logs in again.
                self._last_ok = None
                if not _is_refusal(error):
                    self._stale = True
                raise
            self._last_ok = self.clock()
            return result

    def health(self) -> bool:
        """Connected: a call succeeded within ``probe_after`` seconds, or a probe read succeeds
        now (a second one after logging in again, when the first failed: a read is safe to repeat)."""
        if self._last_ok is not None and self.clock() - self._last_ok < self.probe_after:
            return True
        for attempt in range(2 if self.login is not None else 1):
            try:
                self.read("balance")
                return True
            except Exception as error:  # noqa: BLE001 - any failure means not connected
                logger.warning("health probe %s failed: %s: %s", attempt + 1, type(error).__name__, error)
        return False


def _is_refusal(error: BaseException) -> bool:
    """easytrader.exceptions.TradeError (by name: the gateway does not need easytrader to run)."""
    return any(cls.__name__ == "TradeError" for cls in type(error).__mro__)


@dataclass
class GatewayApp:
    """Authentication, idempotent submission and the routes (see the module docstring)."""

    host: ClientHost
    journal: Journal
    keys: dict[str, signing.Key]
    window: float = signing.DEFAULT_WINDOW
    clock: Callable[[], float] = time.time
    _routes: dict[tuple[str, str], Callable[[dict[str, Any], dict[str, list[str]]], Response]] = field(
        init=False, repr=False)

    def __post_init__(self) -> None:
        self._routes = {
            ("GET", "/health"): self._health,
            ("GET", "/balance"): lambda _b, _q: self._read("balance"),
            ("GET", "/position"): lambda _b, _q: self._read("position"),
            ("GET", "/today_entrusts"): self._today_entrusts,
            ("GET", "/today_trades"): lambda _b, _q: self._read("today_trades"),
            ("GET", "/events"): self._events,
            ("POST", "/submit"): self._submit,
            ("POST", "/cancel_entrust"): self._cancel,
            ("POST", "/bind"): self._bind,
        }

    # entry --------------------------------------------------------------------------------

    def handle(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Response:
        """Answer one request. ``headers`` keyed case-insensitively by the caller (lower case)."""
        try:
            key_id = self.authenticate(method, target, headers, body)
        except Unauthorized as refusal:
            logger.warning("refused %s %s: %s", method, urlsplit(target).path, refusal)
            return _error(401, "unauthorized", str(refusal))
        url = urlsplit(target)
        path = url.path
        query = parse_qs(url.query)
        try:
            payload = json.loads(body) if body else {}
        except (ValueError, UnicodeDecodeError):
            return _error(400, "bad_request", "the body is not JSON")
        if not isinstance(payload, dict):
            return _error(400, "bad_request", "the body must be a JSON object")
        if method == "GET" and path.startswith("/submissions/"):
            response = self._submission(unquote(path.removeprefix("/submissions/")))
        else:
            route = self._routes.get((method, path))
            if route is None:
                return _error(404, "not_found", f"no route {method} {path}")
            response = route(payload, query)
        logger.info("%s %s -> %s (key %s)", method, path, response.status, key_id)
        return response

    def authenticate(self, method: str, target: str, headers: dict[str, str], body: bytes) -> str:
        """The key id of a correctly signed, fresh, first-seen request; else Unauthorized."""
        key_id = headers.get(signing.KEY_HEADER.lower(), "")
        stamp = headers.get(signing.TIMESTAMP_HEADER.lower(), "")
        nonce = headers.get(signing.NONCE_HEADER.lower(), "")
        given = headers.get(signing.SIGNATURE_HEADER.lower(), "")
        if not (key_id and stamp and nonce and given):
            raise Unauthorized("missing signature headers")
        key = self.keys.get(key_id)
        if key is None:
            raise Unauthorized("unknown key id")
        if not stamp.isdigit() or len(nonce) > 128:
            raise Unauthorized("malformed timestamp or nonce")
        expected = signing.signature(key.secret, method, target, body, stamp, nonce, key_id)
        # bytes: compare_digest refuses str with non-ASCII characters (a header may hold any)
        if not hmac.compare_digest(expected.encode("ascii"), given.strip().lower().encode("utf-8", "replace")):
            raise Unauthorized("bad signature")
        now = self.clock()
        if math.fabs(now - int(stamp)) > self.window:
            raise Unauthorized("timestamp outside the window")
        # Kept for twice the window: a request is valid from stamp - window to stamp + window.
        if not self.journal.remember_nonce(key_id, nonce, now=now, keep_for=2 * self.window):
            raise Unauthorized("nonce already used")
        return key_id

    # routes -------------------------------------------------------------------------------

    def _client_failure(self, error: Exception) -> Response:
        return _error(502, type(error).__name__, str(error), module=type(error).__module__)

    def _read(self, attribute: str) -> Response:
        try:
            return Response(200, {"result": self.host.read(attribute)})
        except Exception as error:  # noqa: BLE001 - the client's failure goes back to the caller
            return self._client_failure(error)

    def _health(self, _body: dict[str, Any], _query: dict[str, list[str]]) -> Response:
        return Response(200, {"connected": self.host.health(), "client": self.host.name})

    def _today_entrusts(self, _body: dict[str, Any], _query: dict[str, list[str]]) -> Response:
        response = self._read("today_entrusts")
        if response.status == 200:
            now = self.clock()
            response.body["client_refs"] = self.journal.client_refs(now=now)
            response.body["unbound"] = self.journal.unbound(now=now)
        return response

    def _bind(self, body: dict[str, Any], _query: dict[str, list[str]]) -> Response:
        client_ref, entrust_no = body.get("client_ref"), body.get("entrust_no")
        if not isinstance(client_ref, str) or not isinstance(entrust_no, str) or not entrust_no:
            return _error(400, "bad_request", "client_ref and entrust_no are strings")
        refusal = self.journal.bind(client_ref, entrust_no, now=self.clock())
        if refusal:
            return _error(409, "bind_conflict", refusal)
        return Response(200, {"client_ref": client_ref, "entrust_no": entrust_no})

    def _events(self, _body: dict[str, Any], query: dict[str, list[str]]) -> Response:
        try:
            since = int(query.get("since", ["0"])[0])
            limit = min(int(query.get("limit", ["500"])[0]), 5000)
        except ValueError:
            return _error(400, "bad_request", "since and limit are integers")
        events = self.journal.events(since, limit)
        return Response(200, {"events": events, "last": events[-1]["seq"] if events else since})

    def _submission(self, client_ref: str) -> Response:
        found = self.journal.submission(client_ref)
        if found is None:
            return _error(404, "not_found", "no submission with this client_ref")
        return Response(200, found.as_json())

    def _submit(self, body: dict[str, Any], _query: dict[str, list[str]]) -> Response:
        problem = _submit_problem(body)
        if problem:
            return _error(400, "bad_request", problem)
        request = {k: body[k] for k in ("client_ref", "action", "security", "amount", "price", "ttype", "limit_price")
                   if body.get(k) is not None}
        client_ref = request["client_ref"]
        earlier = self.journal.begin(client_ref, request, now=self.clock())
        if earlier is not None:
            return self._replay(earlier, request)
        action = request["action"]
        kwargs = {k: request[k] for k in ("ttype", "limit_price") if k in request}
        try:
            if action in ("buy", "sell"):
                answer = self.host.call(action, request["security"], request["price"], request["amount"], **kwargs)
            else:
                answer = self.host.call(action, request["security"], request["amount"], **kwargs)
        except Exception as error:  # noqa: BLE001 - recorded, then answered
            response = self._client_failure(error)
            self.journal.answer(client_ref, response.status, response.body, None, kind="submit_failed",
                                now=self.clock())
            return response
        response = Response(200, {"result": answer, "client_ref": client_ref, "replayed": False})
        self.journal.answer(client_ref, 200, response.body, _entrust_no(answer), kind="submit_answered",
                            now=self.clock())
        return response

    def _replay(self, earlier: Any, request: dict[str, Any]) -> Response:
        if earlier.request != request:
            return _error(409, "client_ref_conflict", "this client_ref was submitted with a different order")
        if earlier.state != "answered":
            return _error(409, "outcome_unknown",
                          "an earlier submission of this client_ref has no recorded answer; query the orders")
        body = dict(earlier.answer)
        if earlier.status == 200:
            body["replayed"] = True
        return Response(earlier.status, body)

    def _cancel(self, body: dict[str, Any], _query: dict[str, list[str]]) -> Response:
        entrust_no = body.get("entrust_no")
        if not isinstance(entrust_no, str | int) or isinstance(entrust_no, bool) or entrust_no == "":
            return _error(400, "bad_request", "entrust_no is a string or an integer")
        try:
            answer = self.host.call("cancel_entrust", entrust_no)
        except Exception as error:  # noqa: BLE001
            response = self._client_failure(error)
            self.journal.record("cancel_failed", entrust_no=str(entrust_no), data=response.body, now=self.clock())
            return response
        self.journal.record("cancel_answered", entrust_no=str(entrust_no), data={"result": answer}, now=self.clock())
        return Response(200, {"result": answer})


def _submit_problem(body: dict[str, Any]) -> str:
    client_ref = body.get("client_ref")
    if not isinstance(client_ref, str) or not _REF.match(client_ref):
        return "client_ref: 1-64 letters, digits or _.:-"
    if body.get("action") not in ACTIONS:
        return f"action: one of {', '.join(ACTIONS)}"
    if not isinstance(body.get("security"), str) or not body["security"]:
        return "security: a code such as 600000"
    amount = body.get("amount")
    if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
        return "amount: a positive integer"
    price = body.get("price")
    if body["action"] in ("buy", "sell") and (not isinstance(price, int | float) or isinstance(price, bool)
                                              or price <= 0):
        return "price: a positive number for a limit order"
    return ""


def _entrust_no(answer: Any) -> str | None:
    """The entrust number in a buy/sell answer (``{"entrust_no": ...}``), if any; miniqmt's -1
    (not sent) is none."""
    if not isinstance(answer, dict):
        return None
    value = answer.get("entrust_no")
    if value is None or str(value).strip() in ("", "-1", "0"):
        return None
    return str(value).strip()


class GatewayRequestHandler(BaseHTTPRequestHandler):
    """One connection: read the request, let the server's app answer it, write the answer."""

    server: GatewayServer
    server_version = "broker-gateway"
    sys_version = ""
    timeout = 60  # seconds a connection may sit idle

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._answer()

    def do_POST(self) -> None:  # noqa: N802
        self._answer()

    def _answer(self) -> None:
        length = self.headers.get("Content-Length", "0")
        if not length.isdigit() or int(length) > MAX_BODY:
            self._send(_error(413, "body_too_large", f"a body of at most {MAX_BODY} bytes"))
            return
        body = self.rfile.read(int(length))
        response = self.respond(body)
        if response is None:
            self.close_connection = True  # hang up without an answer
            return
        self._send(response)

    def respond(self, body: bytes) -> Response | None:
        """The answer to the request just read (None: close the connection without one; the
        tests' lossy network does that)."""
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            return self.server.app.handle(self.command, self.path, headers, body)
        except Exception:  # a defect of ours; the client gets a 500 and the log the traceback
            logger.exception("gateway error on %s %s", self.command, urlsplit(self.path).path)
            return _error(500, "internal_error", "gateway error")

    def _send(self, response: Response) -> None:
        data = json.dumps(response.body, ensure_ascii=False, default=str).encode("utf-8")
        self.send_response(response.status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)
        self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's signature
        logger.debug("%s %s", self.address_string(), format % args)


class GatewayServer(ThreadingHTTPServer):
    """A threaded HTTP(S) server for one :class:`GatewayApp`. With ``tls`` each connection is
    wrapped (and its handshake made) in its own thread, so a slow client holds up no one."""

    daemon_threads = True
    allow_reuse_address = True
    handler_class: type[GatewayRequestHandler] = GatewayRequestHandler

    def __init__(self, address: tuple[str, int], app: GatewayApp, *, tls: ssl.SSLContext | None = None) -> None:
        self.app = app
        self.tls = tls
        super().__init__(address, self.handler_class)

    def finish_request(self, request: Any, client_address: Any) -> None:
        if self.tls is not None:
            request.settimeout(self.handler_class.timeout)
            try:
                request = self.tls.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError) as error:
                logger.warning("TLS handshake with %s failed: %s", client_address[0], error)
                return
        super().finish_request(request, client_address)

    @property
    def port(self) -> int:
        return int(self.server_address[1])


def tls_context(certfile: str, keyfile: str | None = None) -> ssl.SSLContext:
    """A server context (TLS 1.2 or later) with the gateway's certificate and key."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(certfile, keyfile)
    return context


def is_loopback(host: str) -> bool:
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return all(str(info[4][0]) == "::1" or str(info[4][0]).startswith("127.") for info in infos)
