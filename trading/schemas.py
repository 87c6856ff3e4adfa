"""What every app's API schemas share: the error body, the error statuses, text without NUL bytes.

PostgreSQL refuses a NUL byte in text, so a string that carries one must be refused at the edge
(422 naming the field, rule ``nul_byte``) before it reaches a query. Request bodies are checked
here, field by field (so one bad item of a batch fails alone); paths and query strings are
checked by ``trading.middleware.ApiEdgeMiddleware``.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator
from pydantic_core import PydanticCustomError

from trading.errors import InputRule
from trading.i18n import bilingual
from trading.money import MAX_PRICE

NUL = "\x00"
# Far above any quoted volume (the largest A-share has about 3.6e11 shares), far inside a BIGINT.
MAX_VOLUME = 10**12


class ErrorOut(BaseModel):
    """Every error answer: ``detail`` is a message, or for 400/422 a list of
    ``{"loc", "field", "rule", "msg"}``, one per invalid input; ``code`` is stable."""

    detail: Any
    code: str | None = None


def nul_message() -> str:
    """What a value with a NUL byte is told (rule ``nul_byte``)."""
    return bilingual("must not contain NUL bytes")


def _refuse_nul(value: Any) -> Any:
    if isinstance(value, str) and NUL in value:
        raise PydanticCustomError(InputRule.NUL_BYTE, nul_message())
    return value


def _price_text(value: Any) -> Any:
    """A decimal string inside the price columns; left to the service to check tick and sign."""
    value = _refuse_nul(value)
    if value is None or value == "" or not isinstance(value, str):
        return value
    # The messages are pydantic templates: bilingual() leaves their fields as placeholders
    # ("{value}" for value), which pydantic fills from the error's context.
    try:
        number = Decimal(value)
    except (InvalidOperation, ValueError):
        raise PydanticCustomError(InputRule.DECIMAL, bilingual("must be a decimal string; got '{value}'", value="{value}"),
                                  {"value": value[:40]}) from None
    if not number.is_finite():
        raise PydanticCustomError(InputRule.DECIMAL, bilingual("must be a finite decimal; got '{value}'", value="{value}"),
                                  {"value": value[:40]})
    if number >= MAX_PRICE:
        raise PydanticCustomError(InputRule.MAX_PRICE, bilingual("must be below {limit}; got '{value}'", limit="{limit}", value="{value}"),
                                  {"limit": str(MAX_PRICE), "value": value[:40]})
    return value


# A string field of a request body: never a NUL byte.
Text = Annotated[str, BeforeValidator(_refuse_nul)]
# A price as a decimal string (or, where the service says why not, a number): never a NUL byte.
PriceInput = Annotated[str | int | float | None, BeforeValidator(_refuse_nul)]
# A quote's price: a decimal string below MAX_PRICE (quotes are never JSON numbers).
QuotePrice = Annotated[str | None, BeforeValidator(_price_text)]

# Statuses any operation may answer: a missing or wrong key (401), a parameter with a NUL byte or an
# unreadable value (422), too many requests (429). Operations with a body add 400 (not JSON) and
# 413 (over the upload limit).
COMMON_ERRORS = (401, 422, 429)
BODY_ERRORS = (400, 413)


def error_responses(*statuses: int) -> dict[int, type[ErrorOut]]:
    """The ``response=`` entries of an operation's error statuses, the common ones included."""
    return {status: ErrorOut for status in sorted({*COMMON_ERRORS, *statuses})}
