"""Iceberg: show ``display_quantity`` at a time at the parent's limit price and refill when the shown
child has ended (filled, or cancelled/expired with a part unfilled, which is shown again), until the
parent's quantity is filled (conditions/kinds/algo.py has the shared rules).

Each shown quantity is ``display_quantity`` moved by at most ``variance_pct`` percent either way
(seeded), rounded down to lots (at least one lot), never more than what is left; the last one takes
the remainder. The parent completes when nothing is left to fill and its last child has ended.
"""

from __future__ import annotations

from datetime import datetime
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
    lots,
    participation_cap,
    progress,
    quote_mark,
    slice_size,
)
from conditions.kinds.base import CreateContext, Decision, QuoteView, Release, Thresholds, Variation
from conditions.models import ConditionalOrder
from trading import market_rules
from trading.errors import InvalidOrder


class IcebergParams(AlgoParams):
    display_quantity: int = pydantic.Field(gt=0, le=10**9)
    variance_pct: Variation = Decimal("0")


@register
class Iceberg(AlgoKind[IcebergParams]):
    code = "iceberg"
    title = _("iceberg")
    params_model = IcebergParams

    def validate(self, params: IcebergParams, ctx: CreateContext) -> dict[str, Any]:
        try:
            market_rules.check_quantity(ctx.instrument, market_rules.Side.BUY, market_rules.OrderType.LIMIT,
                                        params.display_quantity, 0, ctx.day)
        except market_rules.MarketRuleViolation as exc:
            raise InvalidOrder.single("params.display_quantity", exc.rule, exc.message) from None
        return {**self.initial_memory(params, ctx), "due_at": ctx.at.isoformat()}

    def thresholds(self, parent: ConditionalOrder, params: IcebergParams) -> Thresholds:
        return Thresholds(due_at=datetime.fromisoformat(parent.memory["due_at"]))  # due: refills when the child ends

    def on_clock(self, parent: ConditionalOrder, params: IcebergParams, quote: QuoteView | None, at: datetime) -> Decision | None:
        working, remaining = progress(parent)
        if working:
            return None
        k = parent.memory["slices"]
        if remaining <= 0 or (parent.side == market_rules.Side.BUY and lots(parent, remaining, at) == 0):
            return Decision(finished=True, note=f"{k} shown, {remaining} left unfilled")
        wanted = jitter(params.display_quantity, params.variance_pct, draw(parent, k, "size"))
        last = remaining <= lots(parent, wanted, at)
        size = slice_size(parent, int(wanted), remaining, last, participation_cap(parent, params, quote, at), at)
        if size <= 0:
            return None
        memory = {**parent.memory, "slices": k + 1, "due_at": at.isoformat(), **quote_mark(params, quote)}
        return Decision(releases=[Release(parent.side, size, limit_price=parent.limit_price)], memory=memory,
                        note=f"shown {k + 1}: {size}")
