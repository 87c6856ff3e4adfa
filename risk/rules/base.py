"""The base of every risk rule: a stable ``code``, typed parameters, ``check(order, context)``.

A rule is one class in ``risk/rules/<code>.py``, registered by hand in
``risk/rules/__init__.py``. Its parameters are a pydantic model
(``params_model``), validated when an operator saves a ``RiskRule`` row: an
unknown parameter, a missing one, a float where money is meant or a value out
of range is refused with a message naming the parameter.

Pre-trade rules answer ``check(order, context) -> Verdict``; they read what
they need from the shared ``RiskContext`` (which loads totals, holdings and
quotes once per check), so 25 rules cost a handful of queries, not 25.
Post-trade protections (``phase = POST_TRADE``) answer ``evaluate(state)``
after fills and broker rejections, and switch the account's trading state.

Boundaries: unless a rule says otherwise, a value equal to its maximum passes
and one above fails ("exceeds"); the docstring of each rule states its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Generic, TypeVar

from django.utils.translation import gettext
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from risk.verdicts import RiskAction, Verdict
from trading.errors import TradingError
from trading.i18n import bilingual
from trading.models import TradingState
from trading.money import ZERO, to_cent, to_ratio_places

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise

    from orders.models import Order
    from risk.context import RiskContext
    from risk.post_trade import PostTradeState

PRE_TRADE = "pre"
POST_TRADE = "post"
FILL = "fill"
REJECTION = "rejection"


class RuleConfigError(TradingError):
    """A RiskRule row whose code or parameters are invalid (422); ``field`` names the parameter."""

    status_code = 422
    code = "invalid_rule_params"

    def __init__(self, message: str, *, field: str = "params") -> None:
        super().__init__(message)
        self.field = field


def _no_float(value: Any) -> Any:
    # Money and ratios are Decimal end to end: a JSON float would smuggle binary rounding in.
    if isinstance(value, bool):
        raise ValueError(bilingual("must be a number"))
    if isinstance(value, float):
        raise ValueError(bilingual("use a decimal string such as \"0.10\", not the float {value!r}", value=value))
    return value


Money = Annotated[Decimal, BeforeValidator(_no_float), Field(gt=0, max_digits=20, decimal_places=2)]
"""An amount in CNY, > 0, at most 2 decimal places."""
Ratio = Annotated[Decimal, BeforeValidator(_no_float), Field(gt=0, le=1)]
"""A share of something, 0 < ratio <= 1 ("0.10" = 10%)."""
NonNegativeRatio = Annotated[Decimal, BeforeValidator(_no_float), Field(ge=0, lt=1)]
"""0 <= ratio < 1."""
PositiveDecimal = Annotated[Decimal, BeforeValidator(_no_float), Field(gt=0)]
NonNegativeDecimal = Annotated[Decimal, BeforeValidator(_no_float), Field(ge=0)]
Count = Annotated[int, Field(gt=0)]
ProtectionState = Annotated[str, Field(pattern=f"^({TradingState.REDUCING}|{TradingState.HALTED})$")]


class RuleParams(BaseModel):
    """Base of every rule's parameters: unknown keys are refused, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class NoParams(RuleParams):
    pass


P = TypeVar("P", bound=RuleParams)


def _describe(error: Mapping[str, Any]) -> tuple[str, str]:
    loc = ".".join(str(part) for part in error.get("loc", ())) or "params"
    message = str(error.get("msg", "invalid"))
    if error.get("type") == "extra_forbidden":
        message = bilingual("unknown parameter")
    elif error.get("type") == "missing":
        message = bilingual("required parameter missing")
    return loc, message


class Rule(Generic[P]):
    """One risk rule. Subclasses set ``code``, ``title`` (``gettext_lazy`` of an English name,
    its Chinese in the catalogue: operators read it in admin), ``category``, ``params_model`` and
    implement ``check`` (pre-trade) or ``evaluate`` (post-trade)."""

    code: ClassVar[str]
    title: ClassVar[StrOrPromise]
    category: ClassVar[str]
    params_model: ClassVar[type[RuleParams]] = NoParams
    phase: ClassVar[str] = PRE_TRADE
    # Post-trade protections: what makes them run, FILL or REJECTION.
    trigger: ClassVar[str] = ""
    # Run again when an operator approves a held order? Rules about the moment of
    # entry (cooldown, per-second and per-day order rates) are not: the order was
    # counted when it was entered.
    recheck_on_approval: ClassVar[bool] = True
    # Parameters loose enough that ordinary orders pass (`risk_enable_all`).
    generous_params: ClassVar[dict[str, Any]] = {}

    def __init__(self, params: P, action: str = RiskAction.REJECT) -> None:
        self.params = params
        self.action = str(action)

    # ------------------------------------------------------------------ parameters

    @classmethod
    def parse_params(cls, raw: Mapping[str, Any] | None) -> P:
        """Validate raw JSON parameters; RuleConfigError naming the first bad parameter."""
        if raw is not None and not isinstance(raw, Mapping):
            raise RuleConfigError(bilingual("parameters must be a JSON object; got {name}", code=cls.code, name=type(raw).__name__))
        try:
            return cls.params_model.model_validate(dict(raw or {}))  # type: ignore[return-value]  # params_model is a ClassVar, which cannot name P; each rule sets the model of its P
        except ValidationError as exc:
            problems = [_describe(e) for e in exc.errors()]
            text = "; ".join(f"{loc}: {message}" for loc, message in problems)
            raise RuleConfigError(bilingual("invalid parameters of {code}", code=cls.code) + f" — {text}", field=problems[0][0]) from None

    @classmethod
    def normalize_params(cls, raw: Mapping[str, Any] | None) -> dict[str, Any]:
        """The parameters as stored: validated, JSON-ready (decimals as strings), only those given."""
        params = cls.parse_params(raw)
        return params.model_dump(mode="json", exclude_unset=True)

    @classmethod
    def build(cls, raw: Mapping[str, Any] | None, action: str = RiskAction.REJECT) -> Rule[Any]:
        return cls(cls.parse_params(raw), action)

    @classmethod
    def describe_params(cls) -> list[tuple[str, str, str]]:
        """(name, type, default or "required") of every parameter, for the admin help text
        (in the active language)."""
        rows = []
        for name, info in cls.params_model.model_fields.items():
            default = gettext("required") if info.is_required() else repr(info.default)
            rows.append((name, getattr(info.annotation, "__name__", str(info.annotation)), default))
        return rows

    # ------------------------------------------------------------------ checking

    def check(self, order: Order, context: RiskContext) -> Verdict:
        raise NotImplementedError

    def evaluate(self, state: PostTradeState) -> Verdict | None:
        raise NotImplementedError

    def ok(self, message: str = "", /, **values: Any) -> Verdict:
        return Verdict(self.code, True, self.action, message, json_values(values))

    def fail(self, message: str, /, **values: Any) -> Verdict:
        """A failing verdict with the configured action; ``message`` is "中文 (English)"
        (``trading.i18n.bilingual``)."""
        return Verdict(self.code, False, self.action, message, json_values(values))

    def warn(self, message: str, /, **values: Any) -> Verdict:
        """A failing verdict that only warns, whatever the configured action (e.g. an early line)."""
        return Verdict(self.code, False, RiskAction.WARN, message, json_values(values))


def json_values(values: Mapping[str, Any]) -> dict[str, Any]:
    """Values compared, JSON-ready: decimals as strings, dates ISO."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, Decimal):
            out[key] = str(value)
        elif isinstance(value, datetime | date):
            out[key] = value.isoformat()
        else:
            out[key] = value
    return out


def money(value: Decimal) -> str:
    return str(to_cent(value))


def pct(ratio: Decimal) -> str:
    """``Decimal("0.125")`` -> "12.50%"."""
    if not ratio.is_finite():
        return "∞"
    return f"{to_cent(ratio * 100)}%"


def ratio_of(part: Decimal, whole: Decimal) -> Decimal:
    """part / whole at 6 places for display; whole <= 0 counts as everything."""
    if whole <= 0:
        return Decimal("Infinity") if part > 0 else ZERO
    return to_ratio_places(part / whole)
