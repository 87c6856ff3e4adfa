"""The execution report of an algorithm parent (TWAP, iceberg), and the quote observations it needs.

Per parent: the shares its children filled and their average price, the arrival price (the last
price when the parent was created), the interval's average price and the slippage against each.

**The interval's average** is the time-weighted average of the last price over the parent's life
(creation to its end, or now while it lives): each last price weighs the seconds it stood. It is
not volume-weighted because the quotes carry no traded volume (``bid_volume``/``ask_volume`` are
quoted, not traded); the report says so in ``interval_average_basis``.

**Slippage** in basis points, positive when the fills cost more than the benchmark: a buy's
``(average - benchmark) / benchmark x 10,000``, a sell's ``(benchmark - average) / benchmark x 10,000``.
"""

from __future__ import annotations

import time as monotonic_time
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import transaction

from conditions.kinds import kind_for
from conditions.kinds.algo import children_of
from conditions.models import TERMINAL_STATES, AlgoObservation, ConditionalOrder, ParentState
from trading.clock import now
from trading.market_rules import Side
from trading.money import ROUND_HALF_EVEN, to_price_places
from trading.selectors import price_text

BASIS = "time-weighted last price"
LIVE = (ParentState.ACTIVE, ParentState.PAUSED)
BPS = Decimal("0.01")

# Instruments with a live algorithm, per process, refreshed every second: a quote of any other
# symbol costs a dictionary lookup.
_WATCHED: tuple[float, frozenset[int]] = (0.0, frozenset())
WATCH_TTL_SECONDS = 1.0


def algo_observation_start(parent: ConditionalOrder, at: datetime) -> None:
    """The parent's observation, from its creation at its arrival price (inside the create transaction)."""
    arrival = parent.memory.get("arrival_price")
    AlgoObservation.objects.create(parent=parent, instrument_id=parent.instrument_id, started_at=at, last_at=at,
                                   last_price=Decimal(arrival) if arrival else None)
    algo_watch_forget()


def algo_watch_forget() -> None:
    global _WATCHED
    _WATCHED = (0.0, frozenset())


def _watched() -> frozenset[int]:
    global _WATCHED
    clock = monotonic_time.monotonic()
    if _WATCHED[0] <= clock:
        ids = frozenset(AlgoObservation.objects.filter(parent__state__in=LIVE).values_list("instrument_id", flat=True).distinct())
        _WATCHED = (clock + WATCH_TTL_SECONDS, ids)
    return _WATCHED[1]


def algo_observe(quotes: Iterable[Any], *, at: datetime | None = None) -> int:
    """Add the published quotes to the observations of the live algorithms of their symbols; how many
    observations changed. Each observation row is locked alone (no other lock held), in id order."""
    watched = _watched()
    prices = {q.instrument_id: q.last for q in quotes if q.last is not None and q.instrument_id in watched}
    if not prices:
        return 0
    at = at or now()
    changed = 0
    with transaction.atomic():
        rows = (AlgoObservation.objects.select_for_update(of=("self",)).filter(instrument_id__in=list(prices), parent__state__in=LIVE)
                .order_by("parent_id"))
        for row in rows:
            _advance(row, at)
            row.last_price = prices[row.instrument_id]
            row.quotes += 1
            row.save(update_fields=["last_at", "last_price", "price_seconds", "seconds", "quotes"])
            changed += 1
    return changed


def _advance(row: AlgoObservation, until: datetime) -> None:
    """Let ``row``'s last price stand from its ``last_at`` until ``until`` (in memory)."""
    if until <= row.last_at:
        return
    seconds = Decimal(str((until - row.last_at).total_seconds()))
    if row.last_price is not None:
        row.price_seconds += row.last_price * seconds
        row.seconds += seconds
    row.last_at = until


def _bps(average: Decimal | None, benchmark: Decimal | None, side: str) -> Decimal | None:
    if average is None or benchmark is None or benchmark == 0:
        return None
    difference = average - benchmark if side == Side.BUY else benchmark - average
    return (difference / benchmark * 10000).quantize(BPS, ROUND_HALF_EVEN)


def algo_report(parent: ConditionalOrder, *, at: datetime | None = None) -> dict[str, Any] | None:
    """The report of ``parent`` (None for a kind that is not an execution algorithm). Reads only."""
    if not kind_for(parent.kind).pausable:
        return None
    children = children_of(parent)
    filled = sum(c.filled_quantity for c in children)
    amount = sum((c.filled_amount for c in children), Decimal("0"))
    average = to_price_places(amount / filled, ROUND_HALF_EVEN) if filled else None
    arrival = Decimal(parent.memory["arrival_price"]) if parent.memory.get("arrival_price") else None
    interval: Decimal | None = None
    quotes = 0
    row = AlgoObservation.objects.filter(parent=parent).first()
    if row is not None:
        end = at or now()
        if parent.state in TERMINAL_STATES:  # the interval ends when the parent did
            end = parent.history.filter(state_after=parent.state).order_by("id").values_list("at", flat=True).first() or end
        _advance(row, end)
        quotes = row.quotes
        if row.seconds > 0:
            interval = to_price_places(row.price_seconds / row.seconds, ROUND_HALF_EVEN)
        elif row.last_price is not None:
            interval = row.last_price
    return {
        "filled_quantity": filled,
        "average_price": price_text(average),
        "arrival_price": price_text(arrival),
        "interval_average_price": price_text(interval),
        "interval_average_basis": BASIS,
        "slippage_vs_arrival_bps": _text(_bps(average, arrival, parent.side)),
        "slippage_vs_interval_bps": _text(_bps(average, interval, parent.side)),
        "children": len(children),
        "quotes_seen": quotes,
    }


def _text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)
