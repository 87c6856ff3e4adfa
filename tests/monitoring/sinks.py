"""Real local endpoints for the channels: an SMTP server (aiosmtpd) and HTTP servers in threads
that check what the real services check (DingTalk's signature, WeCom's payload, Aliyun's
signature) and can fail, stall or throttle on demand, the way the real services do."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from datetime import timedelta
from email import message_from_bytes
from email.header import decode_header, make_header
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller

from trading.clock import now


@dataclass
class Mail:
    to: list[str]
    subject: str
    body: str
    at: float


class SmtpSink:
    """An SMTP server on 127.0.0.1:``port`` keeping what it receives; ``refuse_code`` answers
    every DATA with that code instead."""

    def __init__(self, port: int) -> None:
        self.mails: list[Mail] = []
        self.refuse_code: int | None = None
        self.arrived = threading.Condition()
        self.controller = Controller(self, hostname="127.0.0.1", port=port)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's hook name
        if self.refuse_code:
            return f"{self.refuse_code} refused by the test"
        parsed = message_from_bytes(envelope.content)
        body = parsed.get_payload(decode=True).decode(parsed.get_content_charset() or "utf-8")
        subject = str(make_header(decode_header(parsed["Subject"]))).replace("\r\n", "")  # unfolded
        mail = Mail(list(envelope.rcpt_tos), subject, body, time.monotonic())
        with self.arrived:
            self.mails.append(mail)
            self.arrived.notify_all()
        return "250 OK"

    def wait(self, count: int, timeout: float = 10.0) -> list[Mail]:
        with self.arrived:
            self.arrived.wait_for(lambda: len(self.mails) >= count, timeout)
            return list(self.mails)

    def __enter__(self) -> SmtpSink:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()


@dataclass
class Request:
    path: str
    query: dict[str, str]
    body: bytes
    answer: dict[str, Any]
    at: float

    @property
    def json(self) -> dict[str, Any]:
        return json.loads(self.body)


@dataclass
class Robot:
    """What one robot's service does: its key and secret, its rate limit (per minute, on the
    back office's clock so that tests can move time), and the faults a test asks for."""

    key: str = "robot-key"
    secret: str = ""
    per_minute: int = 20
    throttle_for: timedelta = timedelta(minutes=10)
    mode: str = "ok"  # ok | 500 | stall | refuse
    stall_seconds: float = 3.0
    sent: list[Any] = field(default_factory=list)  # clock times of accepted messages
    throttled_until: Any = None


class WebhookSink:
    """HTTP server on 127.0.0.1, an ephemeral port: /dingtalk, /wecom, /aliyun, /sms."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.dingtalk = Robot(key="ding-token", secret="SEC-test-secret")
        self.wecom = Robot(key="wecom-key", throttle_for=timedelta(minutes=1))
        self.aliyun = Robot(key="LTAI-test", secret="aliyun-secret")
        self.sms = Robot(key="gateway-token")
        self.arrived = threading.Condition()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's hook name
                parsed = urllib.parse.urlsplit(self.path)
                query = dict(urllib.parse.parse_qsl(parsed.query))
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, answer = sink.answer(parsed.path, query, body, dict(self.headers))
                raw = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> WebhookSink:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def of(self, path: str) -> list[Request]:
        return [r for r in self.requests if r.path == path]

    def accepted(self, path: str) -> list[Request]:
        return [r for r in self.of(path) if r.answer.get("errcode", 0) == 0 and r.answer.get("Code", "OK") == "OK"
                and "error" not in r.answer]

    def wait(self, path: str, count: int, timeout: float = 10.0) -> list[Request]:
        with self.arrived:
            self.arrived.wait_for(lambda: len(self.of(path)) >= count, timeout)
            return self.of(path)

    def answer(self, path: str, query: dict[str, str], body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
        handler = {"/dingtalk": self._dingtalk, "/wecom": self._wecom, "/aliyun": self._aliyun, "/sms": self._sms}.get(path)
        robot = {"/dingtalk": self.dingtalk, "/wecom": self.wecom, "/aliyun": self.aliyun, "/sms": self.sms}.get(path)
        if handler is None or robot is None:
            status, answer = 404, {"error": "no such path"}
        elif robot.mode == "500":
            status, answer = 500, {"error": "internal error (asked by the test)"}
        else:
            if robot.mode == "stall":
                time.sleep(robot.stall_seconds)
            status, answer = handler(robot, query, body, headers)
        with self.arrived:
            self.requests.append(Request(path, query, body, answer, time.monotonic()))
            self.arrived.notify_all()
        return status, answer

    @staticmethod
    def _rate(robot: Robot) -> bool:
        """The robots' limit: ``per_minute`` a minute; one more and the robot refuses everything for
        ``throttle_for`` (DingTalk: 10 minutes)."""
        at = now()
        if robot.throttled_until and at < robot.throttled_until:
            return False
        recent = [t for t in robot.sent if at - t < timedelta(minutes=1)]
        if len(recent) >= robot.per_minute:
            robot.throttled_until = at + robot.throttle_for
            return False
        robot.sent.append(at)
        return True

    def _dingtalk(self, robot: Robot, query: dict[str, str], body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if query.get("access_token") != robot.key:
            return 200, {"errcode": 300001, "errmsg": "token is not exist"}
        timestamp = query.get("timestamp", "")
        expected = base64.b64encode(hmac.new(robot.secret.encode(), f"{timestamp}\n{robot.secret}".encode(),
                                             hashlib.sha256).digest()).decode()
        # parse_qsl has URL-decoded the sign once, as DingTalk does
        if not timestamp or not hmac.compare_digest(query.get("sign", ""), expected):
            return 200, {"errcode": 310000, "errmsg": "sign not match"}
        if abs(time.time() * 1000 - int(timestamp)) > 3600_000:
            return 200, {"errcode": 310000, "errmsg": "timestamp expired"}
        payload = json.loads(body)
        if payload.get("msgtype") != "markdown" or not payload["markdown"].get("text") or len(body) > 20000:
            return 200, {"errcode": 40035, "errmsg": "bad message"}
        if robot.mode == "refuse":
            return 200, {"errcode": 310000, "errmsg": "keywords not in content"}
        if not self._rate(robot):
            return 200, {"errcode": 130101, "errmsg": "send too fast, exceed 20 times per minute"}
        return 200, {"errcode": 0, "errmsg": "ok"}

    def _wecom(self, robot: Robot, query: dict[str, str], body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if query.get("key") != robot.key:
            return 200, {"errcode": 93000, "errmsg": "invalid webhook url"}
        payload = json.loads(body)
        text = payload.get("text") or {}
        if payload.get("msgtype") != "text" or not isinstance(text.get("content"), str) or not text["content"]:
            return 200, {"errcode": 40008, "errmsg": "invalid message type"}
        if len(text["content"].encode()) > 2048:
            return 200, {"errcode": 40058, "errmsg": "content exceed max length 2048"}
        if not isinstance(text.get("mentioned_mobile_list", []), list):
            return 200, {"errcode": 40058, "errmsg": "invalid mentioned_mobile_list"}
        if not self._rate(robot):
            return 200, {"errcode": 45009, "errmsg": "api freq out of limit"}
        return 200, {"errcode": 0, "errmsg": "ok"}

    def _aliyun(self, robot: Robot, query: dict[str, str], body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
        params = dict(urllib.parse.parse_qsl(body.decode(), keep_blank_values=True))
        signature = params.pop("Signature", "")

        def percent(value: str) -> str:
            return urllib.parse.quote(value, safe="~")

        canonical = "&".join(f"{percent(k)}={percent(v)}" for k, v in sorted(params.items()))
        to_sign = f"POST&%2F&{percent(canonical)}"
        expected = base64.b64encode(hmac.new(f"{robot.secret}&".encode(), to_sign.encode(), hashlib.sha1).digest()).decode()
        if params.get("AccessKeyId") != robot.key:
            return 404, {"Code": "InvalidAccessKeyId.NotFound", "Message": "Specified access key is not found."}
        if not hmac.compare_digest(signature, expected):
            return 400, {"Code": "SignatureDoesNotMatch", "Message": "Specified signature is not matched."}
        if params.get("Action") != "SendSms" or not params.get("PhoneNumbers"):
            return 400, {"Code": "MissingPhoneNumbers", "Message": "PhoneNumbers is mandatory"}
        if robot.mode == "refuse":
            return 200, {"Code": "isv.MOBILE_NUMBER_ILLEGAL", "Message": "invalid mobile number"}
        return 200, {"Code": "OK", "Message": "OK", "BizId": f"biz-{len(self.requests)}", "RequestId": "r"}

    def _sms(self, robot: Robot, query: dict[str, str], body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if headers.get("Authorization") != f"Bearer {robot.key}":
            return 401, {"error": "unauthorised"}
        payload = json.loads(body)
        if not payload.get("to") or not payload.get("text"):
            return 400, {"error": "to and text are required"}
        return 200, {"id": f"sms-{len(self.requests)}"}
