"""What the execution algorithms (TWAP, iceberg) share: a parent that releases its children over
time, one at a time, at a price never beyond the parent's limit, each slice in whole lots, never
more than what is left to fill, optionally capped by a share of the quoted volume.

Rules (docs/conditional-orders.md, "Execution algorithms"):

- **One child working at a time.** A slice is released only when every earlier child has reached a
  final status; until then the algorithm waits (its ``due_at`` stays due, the clock and the child's
  end bring it back). What is left is ``quantity`` minus what the children filled, so the shares a
  cancelled or expired child did not fill are released again.
- **Price.** A buy child is priced at the ask, a sell at the bid, never beyond the parent's
  ``limit_price`` (the limit itself when that side is empty or beyond it); an iceberg rests at its limit.
- **Participation cap.** With ``participation_pct`` a child carries at most that share of the
  opposite side's quoted volume (ask volume for a buy, bid volume for a sell), rounded down to
  lots, and each quote sizes at most one child (the next waits for a newer quote); below one lot
  the slice waits for the next quote.
- **Lots.** Every slice is whole lots; the last one takes the remainder, whose odd lot goes out
  only where a sell of the whole position needs it (the framework's ``child_quantity``).
- **Randomisation** is seeded (``params.seed``, else one drawn at creation and kept in ``memory``),
  and each slice's draw depends only on the seed and the slice's number, so a restart or a replay
  decides exactly as before.
- A child refused by market rules or risk control pauses the algorithm (HELD -> PAUSED, the reason
  on the parent); an operator resumes or cancels it.
"""

from __future__ import annotations

import random
from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar

import pydantic

from conditions.kinds.base import CreateContext, Kind, KindParams, P, Percent, QuoteView
from conditions.models import ChildPriceType, ConditionalOrder
from orders.models import TERMINAL_STATUSES, Order
from trading import market_rules
from trading.market_rules import Side
from trading.selectors import price_text


class AlgoParams(KindParams):
    participation_pct: Percent | None = None  # of the opposite side's quoted volume
    seed: int | None = pydantic.Field(None, ge=0, le=2**31 - 1)  # randomisation seed; default: drawn at creation


def draw(parent: ConditionalOrder, slice_number: int, what: str) -> float:
    """A uniform number in [0, 1) that depends only on the parent's seed, the slice and ``what``."""
    return random.Random(f"{parent.memory['seed']}:{slice_number}:{what}").random()


def jitter(value: float, pct: Decimal, u: float) -> float:
    """``value`` moved by at most ``pct`` percent either way (``u`` uniform in [0, 1))."""
    return value * (1 + float(pct) / 100 * (2 * u - 1))


class AlgoKind(Kind[P]):
    """Base of the execution algorithms (not registered itself)."""

    repeating = True
    pausable = True
    price_types: ClassVar[tuple[str, ...] | None] = (ChildPriceType.LIMIT,)

    def initial_memory(self, params: AlgoParams, ctx: CreateContext) -> dict[str, Any]:
        """The seed and the arrival price (the last price when the parent is created; the report's first benchmark)."""
        seed = params.seed if params.seed is not None else random.SystemRandom().randrange(2**31)
        return {"seed": seed, "arrival_price": price_text(ctx.last) if ctx.last is not None else None, "slices": 0}

    def created(self, parent: ConditionalOrder, at: datetime) -> None:
        from conditions.algo_report import algo_observation_start

        algo_observation_start(parent, at)


def children_of(parent: ConditionalOrder) -> list[Order]:
    from conditions.models import ParentEvent

    ids = ParentEvent.objects.filter(parent=parent, child__isnull=False).values("child_id")
    return list(Order.objects.filter(pk__in=ids).order_by("id"))


def progress(parent: ConditionalOrder) -> tuple[bool, int]:
    """(whether a child is still working, the shares left to fill: quantity minus what children filled)."""
    children = children_of(parent)
    working = any(c.status not in TERMINAL_STATUSES for c in children)
    return working, max(parent.quantity - sum(c.filled_quantity for c in children), 0)


def lots(parent: ConditionalOrder, quantity: float, at: datetime) -> int:
    return market_rules.round_down_to_lots(parent.instrument, max(int(quantity), 0), at.date())


def participation_cap(parent: ConditionalOrder, params: AlgoParams, quote: QuoteView | None, at: datetime) -> int | None:
    """The most shares a child may carry under the participation cap (None: no cap)."""
    if params.participation_pct is None:
        return None
    if quote is None or (quote.at is not None and parent.memory.get("capped_quote") == quote.at.isoformat()):
        return 0  # one child per quote: the next waits for a new quote
    volume = quote.ask_volume if parent.side == Side.BUY else quote.bid_volume
    return lots(parent, int(Decimal(volume) * params.participation_pct / 100), at)


def quote_mark(params: AlgoParams, quote: QuoteView | None) -> dict[str, Any]:
    """What the memory keeps of the quote a capped child was sized on."""
    if params.participation_pct is None or quote is None or quote.at is None:
        return {}
    return {"capped_quote": quote.at.isoformat()}


def slice_size(parent: ConditionalOrder, wanted: int, remaining: int, last: bool, cap: int | None, at: datetime) -> int:
    """``wanted`` in whole lots (at least one), never more than ``remaining``; the last slice takes
    the remainder (its odd lot, if any, is the framework's to allow or round away); then the cap."""
    lot = market_rules.lot_size(parent.instrument, at.date())
    size = remaining if last else min(max(lots(parent, wanted, at), lot), remaining)
    if cap is not None:
        size = min(size, cap)
    return size


def taking_price(parent: ConditionalOrder, quote: QuoteView | None) -> Decimal | None:
    """The opposite best price, never beyond the parent's limit (the limit when that side is empty)."""
    limit = parent.limit_price
    if parent.side == Side.BUY:
        best = quote.ask if quote else None
        return min(best, limit) if best is not None and limit is not None else limit
    best = quote.bid if quote else None
    return max(best, limit) if best is not None and limit is not None else limit
