"""Fixtures of the monitoring tests. Alerts: the local SMTP and webhook sinks, and channels pointing
at them. Live updates: a real ASGI server (daphne, in a subprocess) and the live relay on the test
database, and a real websocket client.

The server and the test process share PostgreSQL (the test database; tests commit, so the server
sees their rows) and Redis (the channel layer and the live-update numbers), as web and worker
processes do in production: an event published by the test process reaches the server's
websocket clients through Redis. The server runs with ORDERS_DISPATCH=relay, so an order posted
to it waits NEW (owed) until the test runs the relay's pass itself (in-process tasks).
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.monitoring.sinks import SmtpSink, WebhookSink

ROOT = Path(__file__).resolve().parents[2]
PORT = int(os.environ.get("LIVE_TEST_PORT", "8823"))


def _database_url() -> str:
    from django.db import connection

    params = connection.settings_dict
    user = params.get("USER") or "postgres"
    password = f":{params['PASSWORD']}" if params.get("PASSWORD") else ""
    host = params.get("HOST") or "127.0.0.1"
    port = params.get("PORT") or "5432"
    return f"postgres://{user}{password}@{host}:{port}/{params['NAME']}"


@dataclass
class AsgiServer:
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/live/"

    def request(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> tuple[int, Any]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        data = json.dumps(body) if body is not None else None
        connection.request(method, path, data, {"Content-Type": "application/json", **(headers or {})})
        response = connection.getresponse()
        raw = response.read()
        connection.close()
        try:
            return response.status, json.loads(raw)
        except ValueError:
            return response.status, raw.decode("utf-8", "replace")


def _wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"daphne exited ({process.returncode}):\n{log.read_text()[-3000:]}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise RuntimeError(f"daphne did not listen on {port} within {timeout} s:\n{log.read_text()[-3000:]}")


@pytest.fixture
def asgi_server(require_postgres, require_redis, transactional_db, tmp_path) -> Iterator[AsgiServer]:
    """daphne serving trading.asgi on the test database, Redis channel layer; stopped after the test."""
    from monitoring import live

    client = live._redis()
    for key in client.scan_iter(live.SEQ_KEY + "*"):
        client.delete(key)
    log = tmp_path / "daphne.log"
    env = {**os.environ, "DATABASE_URL": _database_url(), "REDIS_URL": require_redis, "ORDERS_DISPATCH": "relay",
           "DJANGO_SETTINGS_MODULE": "trading.settings", "LOG_LEVEL": "WARNING", "DB_POOL_MAX_SIZE": "4",
           "LIVE_RECHECK_SECONDS": "1"}
    client.delete(live.QUEUE_KEY)
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(PORT),
                                    "trading.asgi:application"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        relay = subprocess.Popen([sys.executable, "manage.py", "run_live_relay"], cwd=ROOT, env=env, stdout=out,
                                 stderr=subprocess.STDOUT)
    try:
        _wait_for_port(PORT, process, log)
        yield AsgiServer(PORT, process, log)
    finally:
        for child in (relay, process):
            child.terminate()
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()


@dataclass
class LiveClient:
    """A websocket client of /ws/live/ (the websockets package): its hello, then the events it reads."""

    connection: Any
    hello: dict[str, Any]
    events: list[dict[str, Any]] = field(default_factory=list)

    def next_message(self, timeout: float = 10.0) -> dict[str, Any]:
        return json.loads(self.connection.recv(timeout=timeout))

    def until(self, predicate: Any, timeout: float = 15.0) -> dict[str, Any]:
        """Read events until one satisfies ``predicate``; returns it (all read are kept in ``events``)."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no matching event within {timeout} s; read {self.events}")
            try:
                message = self.next_message(remaining)
            except TimeoutError:
                raise AssertionError(f"no matching event within {timeout} s; read {self.events}") from None
            if message.get("type") == "event":
                self.events.append(message)
                if predicate(message):
                    return message

    def quiet_for(self, seconds: float) -> list[dict[str, Any]]:
        """Whatever arrives within ``seconds`` (events kept)."""
        received = []
        deadline = time.monotonic() + seconds
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                message = self.next_message(remaining)
            except TimeoutError:
                break
            received.append(message)
            if message.get("type") == "event":
                self.events.append(message)
        return received

    def close(self) -> None:
        self.connection.close()


def live_connect(server: AsgiServer, *, key: str | None = None, cookie: str | None = None, origin: str | None = "same",
                 query: str = "") -> LiveClient:
    """Open /ws/live/ with an API key and/or a session cookie; ``origin="same"`` sends the server's own."""
    from websockets.sync.client import connect

    headers: dict[str, str] = {}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    if cookie:
        headers["Cookie"] = f"sessionid={cookie}"
    if origin == "same":
        origin = server.origin
    connection = connect(server.ws_url + query, additional_headers=headers, origin=origin, open_timeout=20).__enter__()  # type: ignore[arg-type]  # closed by LiveClient.close
    hello = json.loads(connection.recv(timeout=10))
    assert hello["type"] == "hello", hello
    return LiveClient(connection, hello)


def live_settle(timeout: float = 15.0) -> None:
    """Wait until the live relay has sent what was published so far (its queue empty, the numbers
    still for a moment), so that a client connecting now sees only what comes after."""
    from monitoring import live

    client = live._redis()
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        state = (client.llen(live.QUEUE_KEY), sorted(client.mget(list(client.scan_iter(live.SEQ_KEY + "*"))) or []))
        if state[0] == 0 and state == last:
            return
        last = state
        time.sleep(0.3)
    raise AssertionError("the live relay did not drain its queue")


def refused(server: AsgiServer, **kwargs: Any) -> int:
    """The HTTP status the server answered a refused websocket handshake with (fails if accepted)."""
    from websockets.exceptions import InvalidStatus

    try:
        client = live_connect(server, **kwargs)
    except InvalidStatus as exc:
        return int(exc.response.status_code)
    client.close()
    raise AssertionError(f"the websocket was accepted: {client.hello}")


def session_cookie(member: Any) -> str:
    """A logged-in, second-factor-verified session of ``member`` (tests/staff_helpers.py)."""
    from tests.staff_helpers import verified_client

    return str(verified_client(member).cookies["sessionid"].value)


# --------------------------------------------------------------------------- alerts

SMTP_PORT = 8831  # this worktree's sink ports are 8831-8839


@pytest.fixture(autouse=True)
def _monitoring_settings(settings: Any) -> Iterator[None]:
    from monitoring.monitors import settings_cache_clear

    settings.MONITORING_FLUSH_IN_THREAD = False  # in-process Celery: a test sees its deliveries made
    settings.MONITORING_HEARTBEAT_PIGGYBACK_SECONDS = 0  # tests look at the heartbeats when they mean to
    settings.MONITORING_CHANNEL_TIMEOUT_SECONDS = 1.0
    settings.MONITORING_RETRY_BASE_SECONDS = 2.0
    settings_cache_clear()
    yield
    settings_cache_clear()


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    with SmtpSink(SMTP_PORT) as sink:
        yield sink


@pytest.fixture
def webhooks() -> Iterator[WebhookSink]:
    with WebhookSink() as sink:
        yield sink


def make_channel(name: str, kind: str, *, options: dict[str, Any] | None = None,
                 secrets: dict[str, Any] | None = None, **fields: Any) -> Any:
    from monitoring.models import Channel

    return Channel.objects.create(name=name, kind=kind, options=options or {}, secrets=secrets or {}, **fields)


def email_channel(name: str = "mail", **fields: Any) -> Any:
    return make_channel(name, "email", options={"host": "127.0.0.1", "port": SMTP_PORT, "from": "alerts@example.com",
                                                "to": "desk@example.com"}, **fields)


def dingtalk_channel(sink: WebhookSink, name: str = "ding", *, secret: str | None = None, **fields: Any) -> Any:
    return make_channel(name, "dingtalk", secrets={"webhook": f"{sink.url}/dingtalk?access_token={sink.dingtalk.key}",
                                                   "secret": sink.dingtalk.secret if secret is None else secret},
                        **fields)


def wecom_channel(sink: WebhookSink, name: str = "wecom", **fields: Any) -> Any:
    return make_channel(name, "wecom", secrets={"webhook": f"{sink.url}/wecom?key={sink.wecom.key}"}, **fields)


def route(name: str, *channels: Any, min_level: str = "INFO", **fields: Any) -> Any:
    from monitoring.models import RoutingRule

    escalation = fields.pop("escalation_channels", [])
    rule = RoutingRule.objects.create(name=name, min_level=min_level, **fields)
    rule.channels.set(channels)
    rule.escalation_channels.set(escalation)
    return rule
