"""The gateway over real HTTP on loopback: signed requests only, replays refused, each client_ref
sent to the broker at most once (across a restart too), TLS with a pinned certificate."""

from __future__ import annotations

import datetime as dt
import hashlib
import http.client
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from brokers.gateway import signing
from brokers.gateway.client import (
    GatewayClient,
    GatewayRefused,
    GatewayTimeout,
    GatewayUnavailable,
    RemoteClientError,
)
from brokers.gateway.journal import Journal
from tests.brokers.gateway.harness import KEY, LoopbackGateway

ROOT = Path(__file__).resolve().parents[3]


class TradeError(IOError):
    """easytrader.exceptions.TradeError's shape (the hosted client's refusal)."""


class RecordingClient:
    """An easytrader-API object that records every call reaching it; answers in the 同花顺 GUI
    clients' shapes (dict balance, str entrust numbers)."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.entrusts: list[dict[str, Any]] = []
        self.refuse_next: str | None = None
        self.delay = 0.0
        self.hold: threading.Event | None = None  # set: buy waits until it is released
        self.down = False

    def _reach(self, *call: Any) -> None:
        self.calls.append(call)
        if self.down:
            raise OSError("客户端未登录")

    @property
    def balance(self) -> dict[str, float]:
        self._reach("balance")
        return {"资金余额": 1000000.0, "可用金额": 1000000.0, "冻结金额": 0.0, "股票市值": 0.0, "总资产": 1000000.0}

    @property
    def position(self) -> list[dict[str, Any]]:
        self._reach("position")
        return []

    @property
    def today_entrusts(self) -> list[dict[str, Any]]:
        self._reach("today_entrusts")
        return list(self.entrusts)

    @property
    def today_trades(self) -> list[dict[str, Any]]:
        self._reach("today_trades")
        return []

    def buy(self, security: str, price: float, amount: int, **kwargs: Any) -> dict[str, str]:
        self._reach("buy", security, price, amount)
        if self.delay:
            time.sleep(self.delay)
        if self.hold is not None:
            self.hold.wait(10)
        if self.refuse_next:
            message, self.refuse_next = self.refuse_next, None
            raise TradeError(message)
        entrust_no = str(1000 + len(self.entrusts))
        self.entrusts.append({"合同编号": entrust_no, "证券代码": security, "委托价格": price, "委托数量": amount})
        return {"entrust_no": entrust_no}

    def cancel_entrust(self, entrust_no: str) -> dict[str, str]:
        self._reach("cancel_entrust", entrust_no)
        return {"message": "撤单申报成功"}

    def orders_sent(self) -> int:
        return sum(1 for call in self.calls if call[0] == "buy")


@pytest.fixture
def client() -> RecordingClient:
    return RecordingClient()


@pytest.fixture
def gateway(client: RecordingClient, tmp_path: Path) -> Iterator[LoopbackGateway]:
    running = LoopbackGateway(client, tmp_path / "journal.sqlite3").start()
    yield running
    running.stop()


def raw(gateway: LoopbackGateway, method: str, target: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict]:
    connection = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=5)
    connection.request(method, target, body=body, headers=headers)
    response = connection.getresponse()
    answer = (response.status, json.loads(response.read()))
    connection.close()
    return answer


def signed(method: str, target: str, body: bytes, *, key: signing.Key = KEY, at: float | None = None) -> dict[str, str]:
    return signing.sign(key, method, target, body, timestamp=int(time.time() if at is None else at))


BUY = json.dumps({"client_ref": "ord-1", "action": "buy", "security": "600000", "price": 9.9, "amount": 1000}).encode()


# -- authentication -----------------------------------------------------------------------

def test_a_signed_request_reaches_the_client(gateway: LoopbackGateway, client: RecordingClient) -> None:
    assert gateway.connect().balance["可用金额"] == 1000000.0
    assert client.calls == [("balance",)]


@pytest.mark.parametrize(("tamper", "reason"), [
    ("signature", "bad signature"),
    ("body", "bad signature"),
    ("path", "bad signature"),
    ("key", "unknown key id"),
    ("stale", "timestamp outside the window"),
    ("future", "timestamp outside the window"),
    ("missing", "missing signature headers"),
    ("non-ascii", "bad signature"),
])
def test_a_request_not_signed_as_sent_is_refused_before_the_client(
        gateway: LoopbackGateway, client: RecordingClient, tamper: str, reason: str) -> None:
    body, target = BUY, "/submit"
    at = {"stale": time.time() - 120, "future": time.time() + 120}.get(tamper)
    headers = signed("POST", target, body, at=at,
                     key=signing.Key("intruder", KEY.secret) if tamper == "key" else KEY)
    if tamper == "signature":
        headers[signing.SIGNATURE_HEADER] = signing.signature(b"x" * 32, "POST", target, body,
                                                              headers[signing.TIMESTAMP_HEADER],
                                                              headers[signing.NONCE_HEADER], KEY.key_id)
    elif tamper == "body":
        body = body.replace(b"1000", b"9000")  # the amount changed on the way
    elif tamper == "path":
        target = "/cancel_entrust"
    elif tamper == "non-ascii":
        headers[signing.SIGNATURE_HEADER] = "é" * 64
    elif tamper == "missing":
        del headers[signing.SIGNATURE_HEADER]
    status, answer = raw(gateway, "POST", target, body, headers)
    assert status == 401 and answer["error"] == {"type": "unauthorized", "message": reason}
    assert client.calls == []


def test_a_replayed_request_is_refused_and_reaches_the_client_once(
        gateway: LoopbackGateway, client: RecordingClient) -> None:
    body = json.dumps({"entrust_no": "1000"}).encode()
    headers = signed("POST", "/cancel_entrust", body)
    assert raw(gateway, "POST", "/cancel_entrust", body, headers)[0] == 200
    status, answer = raw(gateway, "POST", "/cancel_entrust", body, headers)
    assert (status, answer["error"]["message"]) == (401, "nonce already used")
    assert client.calls == [("cancel_entrust", "1000")]


def test_a_replay_is_refused_after_a_gateway_restart(gateway: LoopbackGateway, client: RecordingClient) -> None:
    body = json.dumps({"entrust_no": "1000"}).encode()
    headers = signed("POST", "/cancel_entrust", body)
    assert raw(gateway, "POST", "/cancel_entrust", body, headers)[0] == 200
    gateway.restart()
    assert raw(gateway, "POST", "/cancel_entrust", body, headers)[0] == 401
    assert len(client.calls) == 1


def test_the_client_raises_refused_on_a_wrong_secret(gateway: LoopbackGateway, client: RecordingClient) -> None:
    with pytest.raises(GatewayRefused) as info:
        gateway.connect(signing.Key(KEY.key_id, b"\x01" * 32)).buy("600000", 9.9, 1000, client_ref="ord-1")
    assert (info.value.status, info.value.reason) == (401, "bad signature")
    assert client.calls == []


def test_the_journal_forgets_old_submissions_only(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.sqlite3")
    journal.begin("old", {"a": 1}, now=time.time() - 90 * 86400)
    journal.begin("new", {"a": 1}, now=time.time())
    assert journal.prune(before=time.time() - 60 * 86400) == 1
    assert journal.submission("old") is None and journal.submission("new") is not None


def test_the_secret_never_shows(tmp_path: Path) -> None:
    key = signing.new_key("k1")
    assert key.secret.hex() not in repr(key)
    path = tmp_path / "key.json"
    path.write_text(signing.key_to_json([key]))
    assert signing.load_keys(path) == {"k1": key}
    path.write_text(json.dumps({"keys": [{"id": "short", "secret": "ab" * 8}]}))
    with pytest.raises(ValueError) as info:
        signing.load_keys(path)
    assert "ab" * 8 not in str(info.value)


# -- idempotent submission ----------------------------------------------------------------

def test_a_second_submit_of_a_client_ref_answers_the_first_and_never_reaches_the_client(
        gateway: LoopbackGateway, client: RecordingClient) -> None:
    remote = gateway.connect()
    first = remote.buy("600000", 9.9, 1000, client_ref="ord-1")
    again = remote.buy("600000", 9.9, 1000, client_ref="ord-1")
    assert first == again == {"entrust_no": "1000"}
    assert client.orders_sent() == 1
    assert remote.submission("ord-1")["entrust_no"] == "1000"
    _ = remote.today_entrusts
    assert remote.client_refs == {"1000": "ord-1"}


def test_a_resubmit_after_a_gateway_restart_answers_the_first(gateway: LoopbackGateway, client: RecordingClient) -> None:
    remote = gateway.connect()
    first = remote.buy("600000", 9.9, 1000, client_ref="ord-1")
    gateway.restart()
    assert remote.buy("600000", 9.9, 1000, client_ref="ord-1") == first
    assert client.orders_sent() == 1


def test_a_submission_whose_outcome_the_gateway_never_recorded_is_never_sent_again(
        gateway: LoopbackGateway, client: RecordingClient) -> None:
    gateway.stop()
    # The gateway died between journalling the submission and recording the client's answer.
    journal = Journal(gateway.journal_path)
    journal.begin("ord-1", json.loads(BUY), now=time.time())
    journal.close()
    gateway.start()
    with pytest.raises(GatewayTimeout, match="no recorded answer"):
        gateway.connect().buy("600000", 9.9, 1000, client_ref="ord-1")
    assert client.orders_sent() == 0


def test_a_resubmit_while_the_first_is_in_flight_waits_for_no_second_order(
        gateway: LoopbackGateway, client: RecordingClient) -> None:
    client.hold = threading.Event()
    with pytest.raises(GatewayTimeout):
        gateway.connect(timeout=0.3).buy("600000", 9.9, 1000, client_ref="ord-1")
    with pytest.raises(GatewayTimeout, match="no recorded answer"):  # the first call is still with the client
        gateway.connect().buy("600000", 9.9, 1000, client_ref="ord-1")
    client.hold.set()
    remote = gateway.connect()
    for _ in range(100):
        if remote.submission("ord-1")["state"] == "answered":
            break
        time.sleep(0.05)
    assert remote.buy("600000", 9.9, 1000, client_ref="ord-1") == {"entrust_no": "1000"}
    assert client.orders_sent() == 1


def test_an_answer_the_journal_could_not_record_is_unknown_not_refused(
        gateway: LoopbackGateway, client: RecordingClient, monkeypatch: pytest.MonkeyPatch) -> None:
    assert gateway.server is not None
    journal = gateway.server.app.journal

    def disk_full(*args: Any, **kwargs: Any) -> None:
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(journal, "answer", disk_full)
    with pytest.raises(GatewayTimeout, match="500 internal_error"):
        gateway.connect().buy("600000", 9.9, 1000, client_ref="ord-1")
    monkeypatch.undo()
    with pytest.raises(GatewayTimeout, match="no recorded answer"):
        gateway.connect().buy("600000", 9.9, 1000, client_ref="ord-1")
    assert client.orders_sent() == 1


def test_a_client_ref_reused_for_another_order_is_refused(gateway: LoopbackGateway, client: RecordingClient) -> None:
    remote = gateway.connect()
    remote.buy("600000", 9.9, 1000, client_ref="ord-1")
    with pytest.raises(GatewayRefused) as info:
        remote.buy("600000", 9.8, 1000, client_ref="ord-1")
    assert (info.value.status, info.value.kind) == (409, "client_ref_conflict")
    assert client.orders_sent() == 1


def test_the_clients_refusal_comes_back_with_its_words_and_is_replayed_not_resent(
        gateway: LoopbackGateway, client: RecordingClient) -> None:
    client.refuse_next = "可用资金不足"
    remote = gateway.connect()
    for _ in range(2):
        with pytest.raises(RemoteClientError) as info:
            remote.buy("600000", 9.9, 1000, client_ref="ord-1")
        assert (info.value.type_name, info.value.message) == ("TradeError", "可用资金不足")
    assert client.orders_sent() == 1


@pytest.mark.parametrize("body", [
    {"client_ref": "ord-1", "action": "short", "security": "600000", "price": 9.9, "amount": 1000},
    {"client_ref": "ord 1", "action": "buy", "security": "600000", "price": 9.9, "amount": 1000},
    {"client_ref": "ord-1", "action": "buy", "security": "600000", "amount": 1000},
    {"client_ref": "ord-1", "action": "buy", "security": "600000", "price": 9.9, "amount": "1000"},
])
def test_a_malformed_submit_is_refused_and_not_journalled(
        gateway: LoopbackGateway, client: RecordingClient, body: dict[str, Any]) -> None:
    data = json.dumps(body).encode()
    status, answer = raw(gateway, "POST", "/submit", data, signed("POST", "/submit", data))
    assert status == 400 and answer["error"]["type"] == "bad_request"
    assert client.calls == [] and gateway.connect().submission("ord-1") is None


# -- queries, events, health --------------------------------------------------------------

def test_events_since_a_sequence_number(gateway: LoopbackGateway) -> None:
    remote = gateway.connect()
    remote.buy("600000", 9.9, 1000, client_ref="ord-1")
    remote.cancel_entrust("1000")
    answer = remote.events(0)
    assert [(e["kind"], e["client_ref"], e["entrust_no"]) for e in answer["events"]] == [
        ("submitted", "ord-1", None), ("submit_answered", "ord-1", "1000"), ("cancel_answered", None, "1000")]
    assert [e["seq"] for e in remote.events(answer["events"][0]["seq"])["events"]] == [
        e["seq"] for e in answer["events"][1:]]
    assert remote.events(answer["last"]) == {"events": [], "last": answer["last"]}


def test_health_says_whether_the_client_answers(gateway: LoopbackGateway, client: RecordingClient) -> None:
    remote = gateway.connect()
    assert remote.health()["connected"] is True
    client.down = True
    with pytest.raises(RemoteClientError, match="客户端未登录"):
        _ = remote.balance
    assert remote.health()["connected"] is False


def test_a_stopped_gateway_is_unavailable(gateway: LoopbackGateway, client: RecordingClient) -> None:
    remote = gateway.connect()
    gateway.stop()
    with pytest.raises(GatewayUnavailable):
        remote.buy("600000", 9.9, 1000, client_ref="ord-1")
    gateway.start()
    assert remote.buy("600000", 9.9, 1000, client_ref="ord-1") == {"entrust_no": "1000"}


# -- TLS ----------------------------------------------------------------------------------

def self_signed(tmp_path: Path, name: str = "gateway") -> tuple[Path, Path, str]:
    """A self-signed certificate for 127.0.0.1 (as docs/brokers/gateway.md makes one), its key,
    and its SHA-256 fingerprint."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    import ipaddress

    certificate = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / f"{name}.crt", tmp_path / f"{name}.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path, hashlib.sha256(certificate.public_bytes(serialization.Encoding.DER)).hexdigest()


@pytest.fixture
def tls_gateway(client: RecordingClient, tmp_path: Path) -> Iterator[tuple[LoopbackGateway, Path, str]]:
    from brokers.gateway.server import tls_context

    cert, key, fingerprint = self_signed(tmp_path)
    running = LoopbackGateway(client, tmp_path / "journal.sqlite3", tls=tls_context(str(cert), str(key))).start()
    yield running, cert, fingerprint
    running.stop()


def test_tls_with_the_gateways_certificate_as_the_ca(tls_gateway: tuple[LoopbackGateway, Path, str]) -> None:
    gateway, cert, _ = tls_gateway
    assert gateway.url.startswith("https://")
    assert gateway.connect(ca=str(cert)).buy("600000", 9.9, 1000, client_ref="ord-1") == {"entrust_no": "1000"}


def test_tls_pinned_by_fingerprint(tls_gateway: tuple[LoopbackGateway, Path, str], client: RecordingClient) -> None:
    gateway, _, fingerprint = tls_gateway
    colons = ":".join(fingerprint[i:i + 2] for i in range(0, len(fingerprint), 2)).upper()
    assert gateway.connect(fingerprint=colons).balance["总资产"] == 1000000.0
    with pytest.raises(GatewayUnavailable, match="does not match the pin"):
        gateway.connect(fingerprint="00" * 32).buy("600000", 9.9, 1000, client_ref="ord-1")
    assert client.orders_sent() == 0


def test_tls_refuses_a_certificate_it_was_not_told_to_trust(
        tls_gateway: tuple[LoopbackGateway, Path, str], client: RecordingClient, tmp_path: Path) -> None:
    gateway, _, _ = tls_gateway
    other, _, _ = self_signed(tmp_path, "impostor")
    for remote in (gateway.connect(), gateway.connect(ca=str(other))):
        with pytest.raises(GatewayUnavailable, match="CERTIFICATE_VERIFY_FAILED"):
            remote.buy("600000", 9.9, 1000, client_ref="ord-1")
    assert client.calls == []


def test_plain_http_to_a_tls_gateway_gets_no_answer(tls_gateway: tuple[LoopbackGateway, Path, str],
                                                    client: RecordingClient) -> None:
    gateway, _, _ = tls_gateway
    remote = GatewayClient(f"http://127.0.0.1:{gateway.port}", KEY.key_id, KEY.secret, timeout=2)
    with pytest.raises((GatewayTimeout, GatewayUnavailable)):
        _ = remote.balance
    assert client.calls == []


# -- standalone: no Django, a command line ------------------------------------------------

def test_the_gateway_imports_nothing_of_django_or_the_back_office() -> None:
    code = ("import sys, brokers.gateway.__main__, brokers.gateway.client; "
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
            "('django', 'trading', 'orders', 'risk', 'audit', 'monitoring', 'staff') "
            "or m.startswith('brokers.') and not m.startswith('brokers.gateway')); print(bad)")
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def make_recording_client() -> RecordingClient:
    """The command line's ``--client tests.brokers.gateway.test_gateway:make_recording_client``."""
    return RecordingClient()


def health_once_up(remote: GatewayClient) -> dict[str, Any]:
    """The health answer of a gateway process just started (waiting up to 10 s for its port)."""
    for _ in range(100):
        try:
            return remote.health()
        except GatewayUnavailable:
            time.sleep(0.1)
    pytest.fail("the gateway did not start")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_the_command_line_makes_a_key_and_serves_without_logging_it(tmp_path: Path) -> None:
    key_file = tmp_path / "key.json"
    subprocess.run([sys.executable, "-m", "brokers.gateway", "keygen", "--key-id", "bo", "--out", str(key_file)],
                   cwd=ROOT, check=True, capture_output=True)
    [key] = signing.load_keys(key_file).values()
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "brokers.gateway", "--client", "tests.brokers.gateway.test_gateway:make_recording_client",
         "--client-config", str(_write(tmp_path / "client.json", {"login": "none"})), "--key-file", str(key_file),
         "--port", str(port), "--journal", str(tmp_path / "j.sqlite3"), "--log-level", "DEBUG"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        remote = GatewayClient(f"http://127.0.0.1:{port}", key.key_id, key.secret, timeout=5)
        assert health_once_up(remote) == {"connected": True,
                                          "client": "tests.brokers.gateway.test_gateway:make_recording_client"}
        assert remote.buy("600000", 9.9, 1000, client_ref="ord-1") == {"entrust_no": "1000"}
    finally:
        server.terminate()
        log = server.communicate(timeout=10)[0]
    assert "POST /submit -> 200 (key bo)" in log
    assert key.secret.hex() not in log


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_the_command_line_serves_https_with_the_certificate_the_docs_make(tmp_path: Path) -> None:
    """docs/brokers/gateway.md's openssl command, its fingerprint one-liner, and --certfile/--keyfile."""
    cert, key = tmp_path / "gateway.crt", tmp_path / "gateway.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-days", "825", "-keyout", str(key), "-out", str(cert), "-subj", "/CN=broker-gateway",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    fingerprint = subprocess.run(
        [sys.executable, "-c", "import ssl,hashlib;print(hashlib.sha256(ssl.PEM_cert_to_DER_cert("
         f"open({str(cert)!r}).read())).hexdigest())"], check=True, capture_output=True, text=True).stdout.strip()
    key_file = _write(tmp_path / "key.json", json.loads(signing.key_to_json([KEY])))
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "brokers.gateway", "--client", "tests.brokers.gateway.test_gateway:make_recording_client",
         "--client-config", str(_write(tmp_path / "client.json", {"login": "none"})), "--key-file", str(key_file),
         "--port", str(port), "--journal", str(tmp_path / "j.sqlite3"), "--certfile", str(cert), "--keyfile", str(key)],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        pinned = GatewayClient(f"https://127.0.0.1:{port}", KEY.key_id, KEY.secret, fingerprint=fingerprint)
        verified = GatewayClient(f"https://127.0.0.1:{port}", KEY.key_id, KEY.secret, ca=str(cert))
        assert health_once_up(pinned)["connected"] is True
        assert verified.buy("600000", 9.9, 1000, client_ref="ord-1") == {"entrust_no": "1000"}
        assert pinned.buy("600000", 9.9, 1000, client_ref="ord-1") == {"entrust_no": "1000"}
    finally:
        server.terminate()
        server.wait(10)


def test_plain_http_beyond_loopback_needs_an_explicit_flag(tmp_path: Path) -> None:
    from brokers.gateway.__main__ import make_server, parser

    key_file = _write(tmp_path / "key.json", json.loads(signing.key_to_json([signing.new_key("k")])))
    args = parser().parse_args(["--client", "x", "--key-file", str(key_file), "--host", "0.0.0.0", "--port", "0",
                                "--journal", str(tmp_path / "j.sqlite3")])
    with pytest.raises(SystemExit, match="refusing to serve plain HTTP"):
        make_server(args, RecordingClient())


def _write(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data))
    return path


def test_concurrent_submits_of_one_client_ref_reach_the_client_once(
        gateway: LoopbackGateway, client: RecordingClient) -> None:
    client.delay = 0.2
    answers: list[Any] = []

    def submit() -> None:
        try:
            answers.append(gateway.connect().buy("600000", 9.9, 1000, client_ref="ord-1"))
        except GatewayTimeout as error:
            answers.append(error)

    threads = [threading.Thread(target=submit) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert client.orders_sent() == 1
    assert {"entrust_no": "1000"} in answers
