"""The live-update websocket (``/ws/live/``): pushes the events of monitoring/live.py, nothing else.

Who may connect (checked before the handshake is accepted; a refusal closes it with 4401 or 4403,
which the server answers as 403):

- a staff session (the admin's login, second factor passed) whose role may view orders: every
  account, and the system's events (health, alerts of no account); the browser sends the
  session cookie, so the ``Origin`` header must be there and name one of ALLOWED_HOSTS (a page
  of another site cannot borrow an operator's session);
- a strategy's API key (``Authorization: Bearer tbo_...``, as the REST API): the accounts of
  the key only; an ``Origin``, when sent, must be one of ALLOWED_HOSTS too.

A connection is checked again every ``LIVE_RECHECK_SECONDS`` (10): a key revoked or no longer
given the account, a staff member made inactive, stripped of the role or logged out, is closed
(4401 or 4403) instead of watching on.

``?account=NAME`` (repeatable) narrows the stream to those accounts; an account the viewer may
not see is refused (4403), like the REST API's 403. The first message says what the stream
carries and up to which number each account was numbered (``hello``). A client's messages
change nothing: ``{"type": "ping"}`` is answered ``pong``, anything else with an error.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs, urlsplit

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.http.request import validate_host

from monitoring import live
from monitoring.labels import VIEW_PERMISSION

log = logging.getLogger(__name__)
UNAUTHORISED = 4401
FORBIDDEN = 4403


@dataclass(frozen=True)
class Viewer:
    """Who is connected and what they may see."""

    name: str
    accounts: tuple[str, ...]
    system: bool  # also the events of no account (staff)


def _header(scope: dict[str, Any], name: bytes) -> str:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value).decode("latin-1")
    return ""


def origin_allowed(origin: str) -> bool:
    """Whether an Origin header names one of ALLOWED_HOSTS (scheme http/https, any port)."""
    from django.conf import settings

    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return False
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return validate_host(host, settings.ALLOWED_HOSTS)


def _client_address(scope: dict[str, Any]) -> SimpleNamespace:
    client = scope.get("client") or ("unknown", 0)
    return SimpleNamespace(META={"REMOTE_ADDR": client[0]})


def viewer_for(scope: dict[str, Any]) -> tuple[Viewer | None, int]:
    """The viewer of a websocket's handshake, or None and the close code. Reads the database."""
    from django.contrib.auth.models import AnonymousUser

    from trading.auth import api_client_for, auth_failure_record, auth_failures_check
    from trading.errors import TradingError
    from trading.models import Account

    origin = _header(scope, b"origin")
    if origin and not origin_allowed(origin):
        return None, FORBIDDEN
    authorization = _header(scope, b"authorization")
    if authorization:
        scheme, _, token = authorization.partition(" ")
        request = _client_address(scope)
        try:
            auth_failures_check(request)  # type: ignore[arg-type]  # only its META is read
        except TradingError:
            return None, UNAUTHORISED
        client = api_client_for(token.strip()) if scheme.lower() == "bearer" else None
        if client is None:
            auth_failure_record(request)  # type: ignore[arg-type]
            return None, UNAUTHORISED
        return Viewer(f"key:{client.name}", tuple(sorted(client.accounts)), system=False), 0
    user = scope.get("user") or AnonymousUser()
    if not origin:  # a session rides on a cookie: only a page of this site may use it
        return None, UNAUTHORISED if not user.is_authenticated else FORBIDDEN
    if not (user.is_authenticated and user.is_active and user.is_staff):
        return None, UNAUTHORISED
    if not _second_factor_passed(scope, user):
        return None, UNAUTHORISED
    if not user.has_perm(VIEW_PERMISSION):
        return None, FORBIDDEN
    names = tuple(Account.objects.order_by("name").values_list("name", flat=True))
    return Viewer(f"user:{user.get_username()}", names, system=True), 0


def viewer_still_allowed(scope: dict[str, Any], viewer: Viewer, accounts: tuple[str, ...]) -> int:
    """0 while the connected ``viewer`` may still watch ``accounts``; else the close code. Reads
    the database (the key through the API's short cache, trading.auth)."""
    from django.contrib.auth import get_user_model

    from trading.auth import api_client_for

    authorization = _header(scope, b"authorization")
    if authorization:
        scheme, _, token = authorization.partition(" ")
        client = api_client_for(token.strip()) if scheme.lower() == "bearer" else None
        if client is None:
            return UNAUTHORISED
        return 0 if set(accounts) <= client.accounts else FORBIDDEN
    user_id = getattr(scope.get("user"), "pk", None)
    if user_id is None:
        return UNAUTHORISED
    user = get_user_model().objects.filter(pk=user_id, is_active=True, is_staff=True).first()
    session = scope.get("session")
    if user is None or session is None or not session.session_key or not session.exists(session.session_key):
        return UNAUTHORISED  # made inactive, or the session ended (logged out, expired)
    return 0 if user.has_perm(VIEW_PERMISSION) else FORBIDDEN


def _second_factor_passed(scope: dict[str, Any], user: Any) -> bool:
    """As the admin asks (staff.security.is_verified): the session's confirmed device is the user's."""
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.models import Device

    from staff.security import two_factor_required

    if not two_factor_required(user):
        return True
    session = scope.get("session")
    persistent_id = session.get(DEVICE_ID_SESSION_KEY) if session is not None else None
    if not persistent_id:
        return False
    device = Device.from_persistent_id(persistent_id, for_verify=False)
    return device is not None and device.user_id == user.pk and device.confirmed


def accounts_wanted(scope: dict[str, Any], viewer: Viewer) -> tuple[tuple[str, ...], bool] | None:
    """The accounts the stream carries (``?account=``, else all the viewer's), and whether the
    system's events come too; None when one asked for is not the viewer's."""
    query = parse_qs(bytes(scope.get("query_string", b"")).decode("utf-8", "replace"))
    asked = tuple(dict.fromkeys(query.get("account", [])))
    if not asked:
        return viewer.accounts, viewer.system
    if any(name not in viewer.accounts for name in asked):
        return None
    return asked, viewer.system


class Hub:
    """The live groups' one listener in this server process (one per event loop).

    Channels' groups copy a message to every member channel, and a server pops each copy from
    Redis on its own: with 50 clients, 50 pops an event. The hub is the only member of the groups
    in its process: it receives each message once and hands the texts to the local consumers that
    watch the group.
    """

    REJOIN_SECONDS = 3600.0  # a group forgets a member after a day (channels' group_expiry)

    _by_loop: dict[int, Hub] = {}

    def __init__(self) -> None:
        from channels.layers import get_channel_layer

        self.layer = get_channel_layer()
        self.channel = ""
        self.members: dict[str, set[LiveConsumer]] = {}
        self.lock = asyncio.Lock()
        self.task: asyncio.Task[None] | None = None

    @classmethod
    def for_this_loop(cls) -> Hub:
        from channels.layers import get_channel_layer

        loop = asyncio.get_running_loop()
        hub = cls._by_loop.get(id(loop))
        if hub is None or hub.layer is not get_channel_layer():  # a new loop, or a new layer (tests)
            hub = cls._by_loop[id(loop)] = cls()
        live.consumer_loop = loop
        return hub

    async def join(self, consumer: LiveConsumer, groups: tuple[str, ...]) -> None:
        async with self.lock:
            if not self.channel:
                self.channel = await self.layer.new_channel()
                self.task = asyncio.ensure_future(self._run())
            for group in groups:
                members = self.members.setdefault(group, set())
                if not members:
                    await self.layer.group_add(group, self.channel)
                members.add(consumer)

    async def leave(self, consumer: LiveConsumer, groups: tuple[str, ...]) -> None:
        async with self.lock:
            for group in groups:
                members = self.members.get(group, set())
                members.discard(consumer)
                if not members and self.channel:
                    self.members.pop(group, None)
                    await self.layer.group_discard(group, self.channel)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        rejoin_at = loop.time() + self.REJOIN_SECONDS
        while True:
            try:
                message = await self.layer.receive(self.channel)
            except asyncio.CancelledError:
                raise
            except Exception:  # Redis away for a moment: the clients see the gap in the numbers
                log.exception("live hub: receive failed")
                await asyncio.sleep(1.0)
                continue
            for consumer in list(self.members.get(str(message.get("group", "")), ())):
                await consumer.deliver(message.get("texts", ()))
            if loop.time() >= rejoin_at:
                rejoin_at = loop.time() + self.REJOIN_SECONDS
                for group in list(self.members):
                    await self.layer.group_add(group, self.channel)


class LiveConsumer(AsyncWebsocketConsumer):
    """Pushes live events to one client; only ``ping`` is answered, nothing is ever changed."""

    # The consumer has no channel of its own: the process's Hub receives the groups' messages.
    # (An alias that is not configured makes Channels give the consumer no layer.)
    channel_layer_alias = "live-updates-use-the-hub"
    groups_joined: tuple[str, ...] = ()
    hub: Hub | None = None
    recheck: asyncio.Task[None] | None = None

    async def connect(self) -> None:
        viewer, code = await database_sync_to_async(viewer_for)(self.scope)
        if viewer is None:
            await self.close(code=code)
            return
        wanted = accounts_wanted(self.scope, viewer)
        if wanted is None:
            await self.close(code=FORBIDDEN)
            return
        accounts, system = wanted
        await self.accept()
        self.groups_joined = tuple(live.group_name(a) for a in accounts) + ((live.group_name(""),) if system else ())
        self.hub = Hub.for_this_loop()
        await self.hub.join(self, self.groups_joined)  # before the numbers are read: nothing falls between
        seq = await database_sync_to_async(live.seq_current)([*accounts, *([""] if system else [])])
        await self.send(text_data=json.dumps({"type": "hello", "viewer": viewer.name, "accounts": list(accounts),
                                              "system": system, "seq": seq}, ensure_ascii=False))
        self.recheck = asyncio.ensure_future(self._recheck(viewer, accounts))

    async def _recheck(self, viewer: Viewer, accounts: tuple[str, ...]) -> None:
        """Close the stream once its viewer may no longer watch (a revoked key, a staff member
        made inactive or logged out, a role withdrawn), checked every LIVE_RECHECK_SECONDS."""
        from django.conf import settings

        while True:
            await asyncio.sleep(settings.LIVE_RECHECK_SECONDS)
            try:
                code = await database_sync_to_async(viewer_still_allowed)(self.scope, viewer, accounts)
            except Exception:  # the database away for a moment: check again next time
                log.warning("live: re-checking %s failed", viewer.name, exc_info=True)
                continue
            if code:
                await self.send(text_data=json.dumps({"type": "closed", "code": code,
                                                      "detail": "access withdrawn: the key or the session no longer allows this stream"}))
                await self.close(code=code)
                return

    async def disconnect(self, code: int) -> None:
        if self.recheck is not None:
            self.recheck.cancel()
        if self.hub is not None:
            await self.hub.leave(self, self.groups_joined)

    async def deliver(self, texts: Any) -> None:
        """Send one group message's events (the Hub calls it)."""
        try:
            for text in texts:
                await self.send(text_data=text)
        except Exception:  # this client is gone; the others go on
            log.debug("live: a client could not be written to", exc_info=True)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        try:
            message = json.loads(text_data) if text_data is not None else None
        except ValueError:
            message = None
        if isinstance(message, dict) and message.get("type") == "ping":
            await self.send(text_data=json.dumps({"type": "pong"}))
            return
        await self.send(text_data=json.dumps({"type": "error", "detail": "this stream is read-only: send nothing but {\"type\": \"ping\"}"}))
