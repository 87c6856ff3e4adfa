"""Encryption at rest for broker credentials, webhook secrets and authenticator (TOTP) seeds.

The key comes from FIELD_ENCRYPTION_KEY (a Fernet key). Without one, a key is
derived from SECRET_KEY, which is only acceptable for the demo.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from functools import lru_cache
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.db import models


@lru_cache(maxsize=4)
def _fernet(key: str, secret_key: str) -> Fernet:
    if key:
        return Fernet(key.encode())
    derived = hashlib.sha256(("field-encryption:" + secret_key).encode()).digest()
    return Fernet(base64.urlsafe_b64encode(derived))


def fernet() -> Fernet:
    return _fernet(settings.FIELD_ENCRYPTION_KEY, settings.SECRET_KEY)


@lru_cache(maxsize=4)
def _aead(key: str, secret_key: str) -> AESGCM:
    material = key.encode() if key else ("field-encryption:" + secret_key).encode()
    return AESGCM(hashlib.sha256(b"compact-aead:" + material).digest())


def encrypt_compact(plain: bytes) -> str:
    """``plain`` encrypted and authenticated (AES-256-GCM, key derived from FIELD_ENCRYPTION_KEY) in
    28 bytes more than its length, URL-safe base64 without padding: for columns too narrow for Fernet."""
    nonce = os.urandom(12)
    sealed = _aead(settings.FIELD_ENCRYPTION_KEY, settings.SECRET_KEY).encrypt(nonce, plain, None)
    return base64.urlsafe_b64encode(nonce + sealed).rstrip(b"=").decode()


def decrypt_compact(token: str) -> bytes:
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    try:
        return _aead(settings.FIELD_ENCRYPTION_KEY, settings.SECRET_KEY).decrypt(raw[:12], raw[12:], None)
    except InvalidTag as exc:
        raise ValueError("cannot decrypt a secret: FIELD_ENCRYPTION_KEY differs from the one it was written with") from exc


def encrypt_text(plain: str) -> str:
    return fernet().encrypt(plain.encode()).decode()


def decrypt_text(token: str) -> str:
    try:
        return fernet().decrypt(token.encode()).decode()
    except InvalidToken as exc:  # wrong key: say so instead of returning garbage
        raise ValueError("cannot decrypt a secret: FIELD_ENCRYPTION_KEY differs from the one it was written with") from exc


class EncryptedJSONField(models.Field):  # type: ignore[type-arg]  # django-stubs: Field is generic in its set and get types; this field takes and gives any JSON value
    """A JSON value stored as a Fernet token in a text column: the database never holds it in clear."""

    def get_internal_type(self) -> str:
        return "TextField"

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> Any:
        if value is None or value == "":
            return {}
        return json.loads(decrypt_text(value))

    def to_python(self, value: Any) -> Any:
        if isinstance(value, (dict, list)) or value is None:
            return value or {}
        try:
            return json.loads(value)
        except (TypeError, ValueError):
            return json.loads(decrypt_text(value))

    def get_prep_value(self, value: Any) -> str:
        return encrypt_text(json.dumps(value or {}, sort_keys=True))

    def value_to_string(self, obj: Any) -> str:
        return "<encrypted>"


class EncryptedTextField(models.TextField):  # type: ignore[type-arg]  # django-stubs: TextField is generic in its set and get types; the plain TextField's are meant
    """A text value stored as a Fernet token: the database never holds it in clear.

    Reads accept a value written before the column was encrypted (no Fernet
    token prefix), so a data migration can encrypt rows in place.
    """

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> str | None:
        if value is None or value == "":
            return value
        return decrypt_text(value) if is_token(value) else value

    def get_prep_value(self, value: Any) -> Any:
        value = super().get_prep_value(value)
        if value is None or value == "":
            return value
        return encrypt_text(str(value))

    def value_to_string(self, obj: Any) -> str:
        return "<encrypted>"


def is_token(value: str) -> bool:
    """True when ``value`` looks like a Fernet token (version byte 0x80 is "gAAAAA" in base64)."""
    return value.startswith("gAAAAA")
