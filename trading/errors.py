"""One project exception with a stable code, rendered once as {"detail": ...}."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class ErrorCode(StrEnum):
    """The ``code`` of every error answer (docs/api.md, "Errors"): stable, clients match on it."""

    TRADING_ERROR = "trading_error"
    INVALID_INPUT = "invalid_input"
    INVALID_ORDER = "invalid_order"
    INVALID_JSON = "invalid_json"
    HTTP_ERROR = "http_error"
    BODY_TOO_LARGE = "body_too_large"
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    DISCLOSURE_REQUIRED = "disclosure_required"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    ILLEGAL_TRANSITION = "illegal_transition"
    RATE_LIMITED = "rate_limited"
    BROKER_ERROR = "broker_error"
    BROKER_TIMEOUT = "broker_timeout"
    BROKER_UNAVAILABLE = "broker_unavailable"
    INTERNAL_ERROR = "internal_error"


class InputRule(StrEnum):
    """The ``rule`` of a 400/422 detail item (``FieldProblem``, ``MarketRuleViolation``): stable,
    clients match on it (docs/api.md, "Errors"). Pydantic's own type codes (``int_parsing``,
    ``missing``, ...) and the risk rules' codes (``risk.rules``) pass through as they are."""

    # input form
    REQUIRED = "required"
    CHOICE = "choice"
    DECIMAL = "decimal"
    INTEGER = "integer"
    POSITIVE = "positive"
    NON_NEGATIVE = "non_negative"
    LENGTH = "length"
    ORDER = "order"  # one value must not come before another (valid_from, valid_to)
    MAX_ITEMS = "max_items"
    MAX_PRICE = "max_price"
    MAX_QUANTITY = "max_quantity"
    NUL_BYTE = "nul_byte"
    INVALID_JSON = "invalid_json"
    # symbols
    SYMBOL_FORMAT = "symbol_format"
    UNKNOWN_SYMBOL = "unknown_symbol"
    NOT_TRADABLE = "not_tradable"
    # market rules
    SESSION_CLOSED = "session_closed"
    MARKET_ORDER_NOT_ALLOWED = "market_order_not_allowed"
    TICK_SIZE = "tick_size"
    PRICE_LIMIT = "price_limit"
    PRICE_CAGE = "price_cage"
    CROSSED = "crossed"
    LOT_SIZE = "lot_size"
    MIN_QUANTITY = "min_quantity"
    ODD_LOT_SELL = "odd_lot_sell"
    ST_DAILY_BUY_LIMIT = "st_daily_buy_limit"
    # the account's trading permissions (trading/suitability.py)
    TRADING_PERMISSION = "trading_permission"
    # the account
    AVAILABLE_CASH = "available_cash"
    SELLABLE_QUANTITY = "sellable_quantity"
    ABOVE_FILLED = "above_filled"
    # conditional orders (conditions/)
    WRONG_SIDE = "wrong_side"  # a trigger the market has already reached (a stop-loss above the last price)
    IN_PAST = "in_past"  # a time that has passed (an expiry)


@dataclass(frozen=True)
class FieldProblem:
    """One invalid input field and the rule it breaks."""

    field: str
    rule: str
    message: str
    location: str = "body"  # or "query", "path": where the input was

    def as_detail(self) -> dict[str, object]:
        return {"loc": [self.location, self.field], "field": self.field, "rule": self.rule, "msg": self.message}


class TradingError(Exception):
    """Base of every error the back office reports to a user."""

    status_code = 400
    code: str = ErrorCode.TRADING_ERROR

    def __init__(self, message: str = "", *, code: str | None = None) -> None:
        super().__init__(message or self.code)
        self.message = message or self.code
        if code:
            self.code = code

    def detail(self) -> object:
        return self.message


class InvalidOrder(TradingError):
    """Input that is malformed or breaks a market rule (422)."""

    status_code = 422
    code = ErrorCode.INVALID_ORDER

    def __init__(self, problems: list[FieldProblem]) -> None:
        super().__init__("; ".join(p.message for p in problems))
        self.problems = problems

    @classmethod
    def single(cls, field: str, rule: str, message: str, *, location: str = "body") -> "InvalidOrder":
        return cls([FieldProblem(field, rule, message, location)])

    def detail(self) -> object:
        return [p.as_detail() for p in self.problems]


class NotFound(TradingError):
    status_code = 404
    code = ErrorCode.NOT_FOUND


class Forbidden(TradingError):
    status_code = 403
    code = ErrorCode.FORBIDDEN


class Conflict(TradingError):
    status_code = 409
    code = ErrorCode.CONFLICT


class IllegalTransition(Conflict):
    """An order state change that the transition table does not allow."""

    code = ErrorCode.ILLEGAL_TRANSITION


class BrokerError(TradingError):
    """The broker refused or failed a call; the message is the broker's own."""

    status_code = 502
    code = ErrorCode.BROKER_ERROR


class BrokerTimeout(BrokerError):
    """The broker did not answer in time: the call may or may not have taken effect."""

    code = ErrorCode.BROKER_TIMEOUT


class BrokerUnavailable(BrokerError):
    """The broker could not be reached (no connection, login failed, circuit open): the call
    certainly did not take effect, so the caller may try again later. Not a refusal of the order."""

    status_code = 503
    code = ErrorCode.BROKER_UNAVAILABLE


def field_name(names: Sequence[str | int]) -> str:
    """The dotted name of an input, list positions in brackets: ``quotes[0].last``."""
    name = ""
    for part in names:
        if isinstance(part, int):
            name += f"[{part}]"
        else:
            name = f"{name}.{part}" if name else str(part)
    return name


def input_problems(errors: Iterable[Mapping[str, Any]], *, where: Sequence[str | int], skip: int = 0) -> list[dict[str, object]]:
    """Validation errors (pydantic's) as detail items, like ``FieldProblem.as_detail``.

    ``where`` starts each ``loc`` (e.g. ``["body"]``); the first ``skip`` parts of each error's
    own ``loc`` are dropped (e.g. ninja's ``("body", "payload")``). The error's type is the rule.
    """
    items: list[dict[str, object]] = []
    for error in errors:
        names = [p if isinstance(p, int) else str(p) for p in tuple(error.get("loc", ()))[skip:]]
        items.append({"loc": [*where, *names], "field": field_name(names), "rule": str(error.get("type", "invalid")),
                      "msg": str(error.get("msg", ""))})
    return items
