"""Time trigger: release at a time of a trading day (e.g. 09:15 for the opening call auction,
14:57 for the closing call), Asia/Shanghai."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any

from django.utils.translation import gettext_lazy as _

from conditions.kinds import register
from conditions.kinds.base import CreateContext, Decision, Kind, KindParams, QuoteView, Release, Thresholds
from conditions.models import ChildPriceType, ConditionalOrder
from trading import calendar
from trading.errors import InputRule, InvalidOrder
from trading.i18n import bilingual
from trading.models import SessionMode


class TimeParams(KindParams):
    at: time  # "09:15:00", Asia/Shanghai
    on: date | None = None  # the trading day; default: today if ``at`` is still ahead, else the next trading day


def due_of(params: TimeParams, now: datetime) -> datetime:
    day = params.on
    if day is None:
        day = calendar.trading_day_of(now)
        if not calendar.is_trading_day(day) or datetime.combine(day, params.at, tzinfo=calendar.SHANGHAI) <= now:
            day = calendar.next_trading_day(day)
    return datetime.combine(day, params.at, tzinfo=calendar.SHANGHAI)


@register
class TimeTrigger(Kind[TimeParams]):
    code = "time"
    title = _("time trigger")
    params_model = TimeParams

    def validate(self, params: TimeParams, ctx: CreateContext) -> dict[str, Any]:
        if params.on is not None and not calendar.is_trading_day(params.on):
            raise InvalidOrder.single("params.on", InputRule.SESSION_CLOSED, bilingual("{day} is not a trading day", day=params.on))
        due = due_of(params, ctx.at)
        if due <= ctx.at:
            raise InvalidOrder.single("params.at", InputRule.IN_PAST, bilingual("{due} has passed", due=due.isoformat()))
        if ctx.account.session_mode == SessionMode.REAL:
            phase = calendar.session_phase(due)
            if not calendar.accepts_new_orders(phase):
                raise InvalidOrder.single("params.at", InputRule.SESSION_CLOSED, bilingual(
                    "no new orders are accepted at {at} ({phase})", at=params.at.isoformat(), phase=phase.label))
        return {"due_at": due.isoformat()}

    def thresholds(self, parent: ConditionalOrder, params: TimeParams) -> Thresholds:
        return Thresholds(due_at=datetime.fromisoformat(parent.memory["due_at"]))

    def on_clock(self, parent: ConditionalOrder, params: TimeParams, quote: QuoteView | None, at: datetime) -> Decision | None:
        due = datetime.fromisoformat(parent.memory["due_at"])
        if at < due:
            return None
        if calendar.trading_day_of(at) != calendar.trading_day_of(due):
            return Decision(expired=True, note=f"the trading day of {due.isoformat()} ended before it could fire")
        trigger = quote.last if quote else None
        if parent.price_type == ChildPriceType.TRIGGER_OFFSET and trigger is None:
            return Decision(expired=True, note="no last price to set the order's price from")
        return Decision(releases=[Release(parent.side, parent.quantity - parent.released_quantity, trigger_price=trigger)],
                        finished=True, note=f"time {due.isoformat()}")
