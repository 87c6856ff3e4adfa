"""Authenticator (TOTP) seeds encrypted at rest.

django-otp keeps a TOTPDevice's seed as hex in ``otp_totp_totpdevice.key``, a
varchar(80). The back office keeps django-otp's model, admin (with its QR code)
and token checks, and changes only how that one column is stored: at startup
:func:`encrypt_keys_at_rest` gives the field a class that writes
``enc1$`` + AES-256-GCM of the binary seed (trading.crypto.encrypt_compact; a
20-byte seed becomes 69 characters, so the column keeps its width) and reads it
back as hex. Everything above the database (``device.key``, ``bin_key``,
``verify_token``, ``config_url``) sees the hex seed as before. Migration
staff 0003 encrypted the seeds stored before.
"""

from __future__ import annotations

from binascii import Error as HexError
from binascii import unhexlify
from typing import Any

from django.core.exceptions import ValidationError
from django.db import models

from trading.crypto import decrypt_compact, encrypt_compact
from trading.i18n import bilingual

PREFIX = "enc1$"
# varchar(80): the prefix and base64 of nonce (12) + seed + tag (16) must fit.
MAX_KEY_BYTES = 28


def encrypt_key(hex_key: str) -> str:
    """The stored form of a hex seed (unchanged when it already is one)."""
    if not hex_key or hex_key.startswith(PREFIX):
        return hex_key
    try:
        binary = unhexlify(hex_key.encode())
    except (HexError, ValueError) as exc:
        raise ValueError("a TOTP key must be hex") from exc
    if len(binary) > MAX_KEY_BYTES:
        raise ValueError(f"a TOTP key may have at most {MAX_KEY_BYTES} bytes")
    return PREFIX + encrypt_compact(binary)


def decrypt_key(stored: str) -> str:
    """The hex seed of a stored value (a seed stored before encryption is returned as it is)."""
    if not stored or not stored.startswith(PREFIX):
        return stored
    return decrypt_compact(stored[len(PREFIX):]).hex()


def validate_key_length(value: str) -> None:
    if len(value) > 2 * MAX_KEY_BYTES:
        raise ValidationError(bilingual("a key of at most {max_key_bytes} bytes, {hex_digits} hex digits", max_key_bytes=MAX_KEY_BYTES, hex_digits=2 * MAX_KEY_BYTES), code="max_length")


class EncryptedTOTPKeyField(models.CharField):  # type: ignore[type-arg]  # django-stubs: CharField is generic in its set and get types; the plain CharField's are meant
    """TOTPDevice.key stored encrypted; deconstructs as the CharField django-otp's migrations declare."""

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> str | None:
        return decrypt_key(value) if value else value

    def get_prep_value(self, value: Any) -> Any:
        value = super().get_prep_value(value)
        return encrypt_key(value) if value else value

    def run_validators(self, value: Any) -> None:
        super().run_validators(value)
        if value:
            validate_key_length(value)

    def deconstruct(self) -> Any:
        name, _path, args, kwargs = super().deconstruct()
        return name, "django.db.models.CharField", args, kwargs


def encrypt_keys_at_rest() -> None:
    """Give TOTPDevice.key the encrypting field class (StaffConfig.ready, before any query)."""
    from django_otp.plugins.otp_totp.models import TOTPDevice

    field = TOTPDevice._meta.get_field("key")
    if isinstance(field, EncryptedTOTPKeyField):
        return
    field.__class__ = EncryptedTOTPKeyField
