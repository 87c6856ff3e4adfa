"""The base of every conditional-order kind: a stable ``code``, typed parameters, and the decision
of which children to release on a quote or a clock tick.

A kind is one class in ``conditions/kinds/<code>.py``, decorated with ``@register`` and imported in
``conditions/kinds/__init__.py``. The framework (conditions/services.py) owns everything else:
locks, the state table, exactly-once firing, the child's price rounding and clipping, sessions,
T+1, market rules and risk control (through the normal order intake), audit and history. A kind
only answers, for the parent it is given (locked, ACTIVE):

- ``validate(params, ctx)``: refuse bad input at creation (raise ``InvalidOrder`` naming
  ``params.<name>`` and the rule); answer the initial ``memory``;
- ``thresholds(parent, params)``: the prices (and the time) at which it may do something, so a
  quote strictly between ``low`` and ``high`` never reaches it (the per-quote index);
- ``on_quote(parent, params, quote, at)`` and ``on_clock(parent, params, quote, at)``: a
  ``Decision``: children to release, the new memory, whether it is finished.

An execution algorithm (TWAP, iceberg) is one more kind: ``repeating = True`` (it releases several
children and stays ACTIVE), ``thresholds`` answers its next ``due_at`` for the clock, and a
``Decision(finished=True)`` completes it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Generic, TypeVar

import pydantic
from pydantic import BaseModel, BeforeValidator, ConfigDict

from trading import market_rules
from trading.errors import FieldProblem, InputRule, InvalidOrder, input_problems
from trading.i18n import bilingual

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise

    from conditions.models import ConditionalOrder
    from orders.models import Order
    from trading.models import Account, Instrument


def _no_float(value: Any) -> Any:
    # Prices are Decimal end to end: a JSON float would smuggle binary rounding in.
    if isinstance(value, bool) or isinstance(value, float):
        raise ValueError(bilingual("use a decimal string such as \"0.10\", not the float {value!r}", value=value))
    return value


Price = Annotated[Decimal, BeforeValidator(_no_float), pydantic.Field(gt=0, lt=1000000, max_digits=16, decimal_places=4)]
"""A price or price distance: a decimal string, > 0."""
Percent = Annotated[Decimal, BeforeValidator(_no_float), pydantic.Field(gt=0, lt=100)]
"""A percentage, 0 < p < 100 ("5" = 5 %)."""
Variation = Annotated[Decimal, BeforeValidator(_no_float), pydantic.Field(ge=0, le=50)]
"""A randomisation bound in percent, 0 <= p <= 50 (an algorithm's slices move at most that far either way)."""


class KindParams(BaseModel):
    """Base of every kind's parameters: unknown keys are refused, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class QuoteView:
    """What a kind reads of a quote: the instrument's latest top of book."""

    instrument_id: int
    last: Decimal | None
    bid: Decimal | None = None
    ask: Decimal | None = None
    prev_close: Decimal | None = None
    bid_volume: int = 0  # quoted shares at the bid (an algorithm's participation cap reads them)
    ask_volume: int = 0
    at: datetime | None = None  # when the quote was stored (a participation cap counts each quote once)


@dataclass(frozen=True)
class CreateContext:
    """What a kind may check a new parent against (read before any lock, answers 422 only)."""

    account: Account
    instrument: Instrument
    side: str
    quantity: int
    quote: QuoteView | None
    day: date
    at: datetime
    tick: Decimal
    limits: tuple[Decimal, Decimal] | None  # the day's (limit down, limit up); None: no band
    position_quantity: int  # held, today's buys included
    sellable_quantity: int  # held, minus frozen; today's buys included unless T+0 is over (see services)
    entry_order: Order | None = None

    @property
    def last(self) -> Decimal | None:
        return self.quote.last if self.quote else None


@dataclass(frozen=True)
class Thresholds:
    """When a parent may act: a quote with ``last <= low`` or ``last >= high``, or the clock at
    ``due_at``. None: never by that way (a parent with all three None is evaluated only by the sweep)."""

    low: Decimal | None = None
    high: Decimal | None = None
    due_at: datetime | None = None


@dataclass(frozen=True)
class Release:
    """One child to release. The framework sets its price from the parent's ``price_type``
    (``trigger_price`` is the reference of TRIGGER_OFFSET; ``limit_price`` overrides the parent's
    fixed limit), rounds its quantity to lots (sells: at most what is sellable) and submits it."""

    side: str
    quantity: int
    trigger_price: Decimal | None = None
    limit_price: Decimal | None = None
    note: str = ""


@dataclass
class Decision:
    """A kind's answer: children to release now, its new memory (None: unchanged), and whether it
    is finished (a one-shot kind fires once; a repeating one completes)."""

    releases: list[Release] = field(default_factory=list)
    memory: dict[str, Any] | None = None
    finished: bool = False
    expired: bool = False  # its moment passed without a chance to release (a time trigger's day is over)
    note: str = ""


P = TypeVar("P", bound=KindParams)


class Kind(Generic[P]):
    """One kind of conditional order. Subclasses set ``code``, ``title``, ``params_model``."""

    code: ClassVar[str]
    title: ClassVar[StrOrPromise]
    params_model: ClassVar[type[KindParams]]
    # Releases several children and stays ACTIVE (grid, algorithms) instead of firing once.
    repeating: ClassVar[bool] = False
    # Sides a parent of this kind may have ("" for kinds whose releases choose their side, e.g. grid).
    sides: ClassVar[tuple[str, ...]] = (market_rules.Side.BUY, market_rules.Side.SELL)
    # May be attached to an entry order (``entry_order_id``): sized by what the entry fills.
    attaches_to_entry: ClassVar[bool] = False
    # Takes no ``quantity`` of its own (its releases size themselves, e.g. grid).
    quantity_free: ClassVar[bool] = False
    # Its thresholds follow the day's reference price: the sweep asks ``stale`` of its parents.
    follows_reference: ClassVar[bool] = False
    # Needs no ``limit_price`` with price_type LIMIT (its releases carry their own, e.g. grid levels).
    prices_itself: ClassVar[bool] = False
    # Execution algorithms: may be paused and resumed (PAUSED in the transition table), and a refused
    # child pauses the parent (HELD) instead of failing it (REFUSED).
    pausable: ClassVar[bool] = False
    # The parent's price types it accepts (None: all).
    price_types: ClassVar[tuple[str, ...] | None] = None

    def parse(self, raw: Any) -> P:
        """The typed parameters of ``raw``; InvalidOrder naming ``params.<name>`` otherwise."""
        if not isinstance(raw, dict):
            raise InvalidOrder.single("params", InputRule.REQUIRED, bilingual("params must be an object"))
        try:
            return self.params_model.model_validate(raw)  # type: ignore[return-value]
        except pydantic.ValidationError as exc:
            raise InvalidOrder([FieldProblem(f"params.{p['field']}" if p["field"] else "params", str(p["rule"]), str(p["msg"]))
                                for p in input_problems(exc.errors(), where=["params"])]) from None

    def validate(self, params: P, ctx: CreateContext) -> dict[str, Any]:
        """Refuse what cannot work (raise InvalidOrder); answer the initial memory."""
        return {}

    def created(self, parent: ConditionalOrder, at: datetime) -> None:
        """After ``parent`` is inserted, inside its create transaction (an algorithm starts observing). Default: nothing."""

    def thresholds(self, parent: ConditionalOrder, params: P) -> Thresholds:
        raise NotImplementedError

    def on_quote(self, parent: ConditionalOrder, params: P, quote: QuoteView, at: datetime) -> Decision | None:
        """What to do on ``quote`` (its ``last`` is not None). Default: nothing."""
        return None

    def stale(self, parent: ConditionalOrder, params: P, quote: QuoteView) -> bool:
        """Whether the stored thresholds no longer fit ``quote`` (a new day's previous close), so the
        sweep must ask the kind even though the quote does not reach them. Default: never."""
        return False

    def on_clock(self, parent: ConditionalOrder, params: P, quote: QuoteView | None, at: datetime) -> Decision | None:
        """What to do at ``at`` (its ``due_at`` has come). Default: nothing."""
        return None


# Checks the kinds share -------------------------------------------------------------------------


def check_level(name: str, value: Decimal, ctx: CreateContext, *, band: bool = True) -> None:
    """A trigger level must lie on the tick and, with ``band``, inside the day's price limits."""
    if not market_rules.is_on_tick(value, ctx.tick):
        raise InvalidOrder.single(f"params.{name}", InputRule.TICK_SIZE,
                                  bilingual("{name} must be a multiple of {tick}; got {value}", name=name, tick=ctx.tick, value=value))
    if band and ctx.limits is not None and not ctx.limits[0] <= value <= ctx.limits[1]:
        raise InvalidOrder.single(f"params.{name}", InputRule.PRICE_LIMIT,
                                  bilingual("{name} {value} is outside the day's price band {down}-{up}", name=name, value=value,
                                            down=ctx.limits[0], up=ctx.limits[1]))


def tick_of(parent: ConditionalOrder) -> Decimal:
    return market_rules.tick_size(market_rules.board_of(parent.instrument))


def wrong_side(name: str, value: Decimal, last: Decimal, *, must_be: str) -> InvalidOrder:
    """422 for a level the market has already reached (``must_be`` "below" or "above" the last price)."""
    return InvalidOrder.single(f"params.{name}", InputRule.WRONG_SIDE,
                               bilingual("{name} {value} must be {must_be} the last price {last}: the market has already reached it",
                                         name=name, value=value, must_be=must_be, last=last))


def exactly_one(names: tuple[str, str], values: tuple[Any, Any]) -> None:
    """422 unless exactly one of two alternative parameters is given."""
    if (values[0] is None) == (values[1] is None):
        raise InvalidOrder.single(f"params.{names[0]}", InputRule.REQUIRED,
                                  bilingual("give exactly one of {first} and {second}", first=names[0], second=names[1]))
