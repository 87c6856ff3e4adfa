"""The channel plug-in interface and its registry."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, ClassVar

REGISTRY: dict[str, type[ChannelPlugin]] = {}


@dataclass(frozen=True)
class Message:
    """What a channel sends: a subject, a plain-text body, the recipients (a channel's own kind of
    address: emails, phone numbers, mobile numbers to @), the level, and a stable ``reference``
    (the delivery's id) for services that can deduplicate by it."""

    subject: str
    body: str
    level: str
    recipients: tuple[str, ...] = ()
    reference: str = ""
    alerts: tuple[dict[str, Any], ...] = field(default_factory=tuple)


class ChannelFailure(Exception):
    """A call that did not deliver.

    ``retry``: whether trying again may help (a timeout, a 5xx, throttling) or not (a bad secret,
    an unknown recipient: the delivery fails at once and goes to the fallback). ``pause_seconds``:
    the service asked us to wait (throttled): no call to this channel before then.
    ``maybe_sent``: the call may have reached the service (a timeout after sending);
    a channel that is not idempotent is then not called again for it."""

    def __init__(self, message: str, *, retry: bool = True, pause_seconds: float = 0.0, maybe_sent: bool = False):
        super().__init__(redact(message))
        self.message = redact(message)
        self.retry = retry
        self.pause_seconds = pause_seconds
        self.maybe_sent = maybe_sent


_SECRET_QUERY = re.compile(r"(?i)(access_token|key|secret|sign|signature|token|accesskeyid)=[^&\s'\"]+")


def redact(text: str) -> str:
    """``text`` without the values of secret-looking URL parameters (webhook tokens, signatures)."""
    return _SECRET_QUERY.sub(lambda m: f"{m.group(1)}=***", text)


class ChannelPlugin:
    """One kind of channel. Built per call from a ``Channel`` row's options and decrypted secrets."""

    kind: ClassVar[str] = ""
    #: messages a minute the service accepts (0: no limit of ours)
    default_rate_per_minute: ClassVar[int] = 0
    #: how long the service throttles once its rate is exceeded
    throttle_seconds: ClassVar[float] = 60.0
    #: whether sending the same message twice is harmless to retry after an unknown outcome
    idempotent: ClassVar[bool] = True

    def __init__(self, *, options: dict[str, Any], secrets: dict[str, Any], timeout: float = 5.0) -> None:
        self.options = options
        self.secrets = secrets
        self.timeout = timeout

    def send(self, message: Message) -> str:
        """Deliver ``message``; returns the service's reference (message id) or "".
        Raises ChannelFailure."""
        raise NotImplementedError


def register(cls: type[ChannelPlugin]) -> type[ChannelPlugin]:
    if not cls.kind:
        raise ValueError(f"{cls.__name__} has no kind")
    REGISTRY[cls.kind] = cls
    return cls


def plugin_for(kind: str) -> type[ChannelPlugin]:
    try:
        return REGISTRY[kind]
    except KeyError:
        raise ChannelFailure(f"unknown channel kind {kind!r}", retry=False) from None


def post(url: str, body: bytes, *, content_type: str, timeout: float,
         headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    """POST ``body`` to ``url``; answers (status, body) for any HTTP answer, raises ChannelFailure
    (retry) when there is none. The URL's secret parameters never reach an error message."""
    import socket
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": content_type, **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - an operator's configured URL
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except TimeoutError as exc:
        raise ChannelFailure(f"no answer within {timeout:g} s: {exc}", maybe_sent=True) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        maybe = isinstance(reason, (TimeoutError, socket.timeout))
        raise ChannelFailure(f"cannot reach the service: {reason}", maybe_sent=maybe) from None
    except ValueError as exc:  # a malformed URL
        raise ChannelFailure(f"bad URL: {exc}", retry=False) from None


def post_json(url: str, payload: dict[str, Any], *, timeout: float,
              headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    """POST ``payload`` as JSON; the answer's JSON object ({} when it is not JSON)."""
    import json

    status, raw = post(url, json.dumps(payload, ensure_ascii=False).encode(), content_type="application/json",
                       timeout=timeout, headers=headers)
    try:
        answer = json.loads(raw or b"{}")
    except ValueError:
        answer = {}
    return status, answer if isinstance(answer, dict) else {}


def http_status_failure(status: int, what: str) -> ChannelFailure:
    """The failure an HTTP status means: 429 and 5xx are worth retrying, other 4xx are not."""
    retry = status == 429 or status >= 500
    return ChannelFailure(f"{what} answered HTTP {status}", retry=retry)


class RobotChannel(ChannelPlugin):
    """A group robot behind one webhook (the secret ``webhook``), answering JSON ``errcode``:
    0 is sent; a code of ``throttled`` pauses the channel for ``throttle_seconds``; a code of
    ``refused`` is a configuration error (not retried); any other code is retried."""

    service: ClassVar[str] = ""
    throttled: ClassVar[frozenset[int]] = frozenset()
    refused: ClassVar[frozenset[int]] = frozenset()

    def payload(self, message: Message) -> dict[str, Any]:
        raise NotImplementedError

    def url(self, webhook: str) -> str:
        return webhook

    def send(self, message: Message) -> str:
        webhook = self.secrets.get("webhook") or ""
        if not webhook:
            raise ChannelFailure("no webhook configured", retry=False)
        status, answer = post_json(self.url(webhook), self.payload(message), timeout=self.timeout)
        if status != 200:
            raise http_status_failure(status, self.service)
        code = answer.get("errcode")
        if code == 0:
            return ""
        errmsg = str(answer.get("errmsg", ""))[:200]
        if code in self.throttled:
            raise ChannelFailure(f"{self.service} throttled: {code} {errmsg}", pause_seconds=self.throttle_seconds)
        raise ChannelFailure(f"{self.service} refused: {code} {errmsg}", retry=code not in self.refused)
