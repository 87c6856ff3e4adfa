"""TWAP: ``slices`` equal slices of the parent's quantity over a window, each released at a time
and of a size randomised within ``randomise_pct`` (conditions/kinds/algo.py has the shared rules).

Slice ``k`` (0-based) of ``n`` over the window [start, end), interval ``I = (end - start) / n``:

- its time is ``start + I * (k + r * u)``, ``u`` uniform in [0, 1), ``r = randomise_pct / 100``
  (at most 0.5): inside the first ``r`` of its own interval, so the slices keep their order;
- its size is ``quantity / n`` moved by at most ``randomise_pct`` percent either way, rounded down
  to lots (at least one lot), never more than what is left; the last slice takes what is left;
- a slice due while the previous child still works waits for that child's end; a window that
  ends with slices left releases what is left as the last slice;
- the parent completes when its last slice's child has ended (or nothing is left to fill).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pydantic
from django.utils.translation import gettext_lazy as _

from conditions.kinds import register
from conditions.kinds.algo import (
    AlgoKind,
    AlgoParams,
    draw,
    jitter,
    participation_cap,
    progress,
    quote_mark,
    slice_size,
    taking_price,
)
from conditions.kinds.base import CreateContext, Decision, QuoteView, Release, Thresholds, Variation, exactly_one
from conditions.models import ConditionalOrder
from trading import market_rules
from trading.errors import InputRule, InvalidOrder
from trading.i18n import bilingual

MAX_WINDOW = timedelta(days=7)


class TwapParams(AlgoParams):
    slices: int = pydantic.Field(gt=0, le=1000)
    start_at: datetime | None = None  # default: now
    end_at: datetime | None = None  # or duration_seconds
    duration_seconds: int | None = pydantic.Field(None, gt=0, le=int(MAX_WINDOW.total_seconds()))
    randomise_pct: Variation = Decimal("0")


def slice_time(parent: ConditionalOrder, params: TwapParams, k: int) -> datetime:
    start, end = datetime.fromisoformat(parent.memory["start_at"]), datetime.fromisoformat(parent.memory["end_at"])
    interval = (end - start) / params.slices
    offset = float(params.randomise_pct) / 100 * draw(parent, k, "time")
    return start + interval * (k + offset)


@register
class Twap(AlgoKind[TwapParams]):
    code = "twap"
    title = _("TWAP")
    params_model = TwapParams

    def validate(self, params: TwapParams, ctx: CreateContext) -> dict[str, Any]:
        exactly_one(("end_at", "duration_seconds"), (params.end_at, params.duration_seconds))
        start = params.start_at or ctx.at
        if start.tzinfo is None:
            raise InvalidOrder.single("params.start_at", InputRule.REQUIRED, bilingual("give a time zone (e.g. +08:00)"))
        end = params.end_at if params.end_at is not None else start + timedelta(seconds=params.duration_seconds or 0)
        if end.tzinfo is None:
            raise InvalidOrder.single("params.end_at", InputRule.REQUIRED, bilingual("give a time zone (e.g. +08:00)"))
        if end <= max(start, ctx.at):
            raise InvalidOrder.single("params.end_at", InputRule.IN_PAST, bilingual("end_at {end} must be after the start and now", end=end.isoformat()))
        if end - start > MAX_WINDOW:
            raise InvalidOrder.single("params.end_at", InputRule.ORDER, bilingual("the window may be at most {days} days", days=MAX_WINDOW.days))
        lot = market_rules.lot_size(ctx.instrument, ctx.day)
        if ctx.quantity < lot * params.slices and params.slices > 1:
            raise InvalidOrder.single("params.slices", InputRule.ORDER, bilingual(
                "{quantity} shares cannot make {slices} slices of at least one lot ({lot})", quantity=ctx.quantity,
                slices=params.slices, lot=lot))
        return {**self.initial_memory(params, ctx), "start_at": start.isoformat(), "end_at": end.isoformat()}

    def thresholds(self, parent: ConditionalOrder, params: TwapParams) -> Thresholds:
        k = parent.memory["slices"]
        if k >= params.slices:  # all released: due at once, to complete when the last child ends
            return Thresholds(due_at=datetime.fromisoformat(parent.memory.get("last_at") or parent.memory["end_at"]))
        return Thresholds(due_at=slice_time(parent, params, k))

    def on_clock(self, parent: ConditionalOrder, params: TwapParams, quote: QuoteView | None, at: datetime) -> Decision | None:
        k = parent.memory["slices"]
        working, remaining = progress(parent)
        if working:
            return None  # one child at a time: its end brings the parent back
        if k >= params.slices or remaining <= 0:
            return Decision(finished=True, note=f"{k} slices released, {remaining} left unfilled")
        if at < slice_time(parent, params, k):
            return None
        last = k == params.slices - 1 or at >= datetime.fromisoformat(parent.memory["end_at"])
        wanted = jitter(parent.quantity / params.slices, params.randomise_pct, draw(parent, k, "size"))
        size = slice_size(parent, int(wanted), remaining, last, participation_cap(parent, params, quote, at), at)
        if size <= 0:
            return None  # the participation cap leaves less than a lot: the next quote may allow it
        # The last slice stays the last until nothing is left (the cap may split it into several children).
        number = k + 1 if not last else (params.slices if size >= remaining else k)
        memory = {**parent.memory, "slices": number, "last_at": at.isoformat(), **quote_mark(params, quote)}
        return Decision(releases=[Release(parent.side, size, limit_price=taking_price(parent, quote))], memory=memory,
                        note=f"slice {k + 1}/{params.slices}: {size}")
