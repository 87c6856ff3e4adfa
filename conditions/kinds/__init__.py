"""The registry of conditional-order kinds: classes registered by their ``code`` (no scanning).

A new kind (a trigger, or an execution algorithm such as TWAP or an iceberg) is one class in
``conditions/kinds/<code>.py`` decorated with ``@register``, plus one import line in
``_load_builtin`` below. Nothing else changes: the framework (conditions/services.py) looks a
parent's kind up here by name.
"""

from __future__ import annotations

from typing import Any

from conditions.kinds.base import Kind
from trading.errors import InputRule, InvalidOrder
from trading.i18n import bilingual

_KINDS: dict[str, type[Kind[Any]]] = {}


def register(cls: type[Kind[Any]]) -> type[Kind[Any]]:
    """Class decorator: make a kind available under ``cls.code``."""
    if cls.code in _KINDS and _KINDS[cls.code] is not cls:
        raise ValueError(f"conditional kind {cls.code!r} registered twice")
    _KINDS[cls.code] = cls
    return cls


def _load_builtin() -> None:
    # Explicit list, no scanning: a new kind is one import line here.
    from conditions.kinds import bracket, grid, iceberg, price, time_of_day, trailing, twap  # noqa: F401


def kind_codes() -> list[str]:
    _load_builtin()
    return sorted(_KINDS)


def kind_classes() -> list[type[Kind[Any]]]:
    _load_builtin()
    return [_KINDS[code] for code in sorted(_KINDS)]


def kind_for(code: str) -> Kind[Any]:
    """The kind registered as ``code``; 422 (field ``kind``, rule ``choice``) for an unknown one."""
    _load_builtin()
    cls = _KINDS.get(code)
    if cls is None:
        raise InvalidOrder.single("kind", InputRule.CHOICE, bilingual("kind must be one of {known}; got {code!r}",
                                                                      known=", ".join(sorted(_KINDS)), code=code))
    return cls()
