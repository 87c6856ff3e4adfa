"""Request signing shared by the gateway and its client (stdlib only).

A request carries four headers:

* ``X-Gateway-Key``: the key id (which secret signed it);
* ``X-Gateway-Timestamp``: Unix seconds when it was signed;
* ``X-Gateway-Nonce``: a random value never used twice by that key;
* ``X-Gateway-Signature``: hex HMAC-SHA256 under the key's secret of the canonical string
  ``METHOD \\n PATH?QUERY \\n sha256(body) hex \\n timestamp \\n nonce \\n key id``.

The body is hashed as received, so a body altered after signing fails; the timestamp bounds how
long a captured request is worth replaying, and the gateway remembers every nonce for that long,
so a replay inside the window is refused as well.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from pathlib import Path

KEY_HEADER = "X-Gateway-Key"
TIMESTAMP_HEADER = "X-Gateway-Timestamp"
NONCE_HEADER = "X-Gateway-Nonce"
SIGNATURE_HEADER = "X-Gateway-Signature"

#: seconds a request stays valid either side of the gateway's clock (and its nonce is kept)
DEFAULT_WINDOW = 30
#: a secret shorter than this many bytes is refused when a key file is read
MIN_SECRET_BYTES = 32


@dataclass(frozen=True)
class Key:
    """One key: its public id and its secret (never logged; ``repr`` hides it)."""

    key_id: str
    secret: bytes

    def __repr__(self) -> str:
        return f"Key(key_id={self.key_id!r}, secret=<hidden>)"


def canonical(method: str, target: str, body: bytes, timestamp: str, nonce: str, key_id: str) -> bytes:
    """The string a signature covers. ``target`` is the path with its query string, as sent."""
    return "\n".join(
        [method.upper(), target, hashlib.sha256(body).hexdigest(), timestamp, nonce, key_id]
    ).encode("utf-8")


def signature(secret: bytes, method: str, target: str, body: bytes, timestamp: str, nonce: str, key_id: str) -> str:
    return hmac.new(secret, canonical(method, target, body, timestamp, nonce, key_id), hashlib.sha256).hexdigest()


def sign(key: Key, method: str, target: str, body: bytes, *, timestamp: int) -> dict[str, str]:
    """The headers that authenticate one request (a fresh nonce each call)."""
    nonce = secrets.token_hex(16)
    stamp = str(int(timestamp))
    return {
        KEY_HEADER: key.key_id,
        TIMESTAMP_HEADER: stamp,
        NONCE_HEADER: nonce,
        SIGNATURE_HEADER: signature(key.secret, method, target, body, stamp, nonce, key.key_id),
    }


def new_key(key_id: str) -> Key:
    """A new key with a random 32-byte secret."""
    return Key(key_id, secrets.token_bytes(32))


def key_to_json(keys: list[Key]) -> str:
    """A key file's text: ``{"keys": [{"id": ..., "secret": <hex>}]}`` (several keys let a
    gateway accept the old and the new key while the back office rotates)."""
    return json.dumps({"keys": [{"id": k.key_id, "secret": k.secret.hex()} for k in keys]}, indent=2) + "\n"


def load_keys(path: str | Path) -> dict[str, Key]:
    """The keys of a key file (see :func:`key_to_json`), by id. Raises ValueError for a file
    that is not one, or a secret shorter than ``MIN_SECRET_BYTES``; the message never holds a
    secret."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        entries = data["keys"]
        keys = [Key(str(e["id"]), bytes.fromhex(e["secret"])) for e in entries]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ValueError(f"{path}: not a gateway key file ({type(error).__name__})") from None
    if not keys:
        raise ValueError(f"{path}: no keys")
    for key in keys:
        if not key.key_id or len(key.secret) < MIN_SECRET_BYTES:
            raise ValueError(f"{path}: key {key.key_id!r} needs an id and a secret of {MIN_SECRET_BYTES}+ bytes")
    return {k.key_id: k for k in keys}
