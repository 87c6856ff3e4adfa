"""One project exception with a stable code, rendered once as {"detail": ...}."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any


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
    code = "trading_error"

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
    code = "invalid_order"

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
    code = "not_found"


class Forbidden(TradingError):
    status_code = 403
    code = "forbidden"


class Conflict(TradingError):
    status_code = 409
    code = "conflict"


class IllegalTransition(Conflict):
    """An order state change that the transition table does not allow."""

    code = "illegal_transition"


class BrokerError(TradingError):
    """The broker refused or failed a call; the message is the broker's own."""

    status_code = 502
    code = "broker_error"


class BrokerTimeout(BrokerError):
    """The broker did not answer in time: the call may or may not have taken effect."""

    code = "broker_timeout"


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
