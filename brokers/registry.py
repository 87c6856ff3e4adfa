"""Broker adapters registered by name: ``register`` a class, ``broker_for`` an account."""

from __future__ import annotations

from typing import TYPE_CHECKING

from brokers.interface import BrokerInterface

if TYPE_CHECKING:
    from trading.models import Account

_ADAPTERS: dict[str, type[BrokerInterface]] = {}


def register(cls: type[BrokerInterface]) -> type[BrokerInterface]:
    """Class decorator: make an adapter available under ``cls.kind``."""
    if cls.kind in _ADAPTERS and _ADAPTERS[cls.kind] is not cls:
        raise ValueError(f"broker kind {cls.kind!r} registered twice")
    _ADAPTERS[cls.kind] = cls
    return cls


def _load_builtin() -> None:
    # Explicit list, no scanning: a new adapter is one import line here.
    from brokers.adapters import easytrader, easytrader_remote, gateway, paper, xtquant  # noqa: F401


def adapter_class(kind: str) -> type[BrokerInterface]:
    _load_builtin()
    try:
        return _ADAPTERS[kind]
    except KeyError:
        raise ValueError(f"unknown broker kind {kind!r}; known: {', '.join(sorted(_ADAPTERS))}") from None


def broker_kinds() -> list[str]:
    _load_builtin()
    return sorted(_ADAPTERS)


def broker_for(account: "Account") -> BrokerInterface:
    """The adapter for ``account`` (credentials decrypted here, never logged), its broker calls
    guarded by the account's circuit breaker (brokers.connection)."""
    from brokers.connection import guard

    return guard(adapter_class(account.broker_kind).for_account(account), account)
