"""Input and output schemas of the conditional-orders API (docs/api.md, "Conditional orders")."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from trading.i18n import bilingual_lazy
from trading.schemas import PriceInput, Text


class ConditionalIn(BaseModel):
    account: Text = Field(..., max_length=64, description=bilingual_lazy("account name"), examples=["demo"])
    symbol: Text = Field(..., max_length=16, description=bilingual_lazy("600000.SH, sh600000 or 600000"), examples=["600000.SH"])
    kind: Text = Field(..., max_length=32, description=bilingual_lazy("price, trailing, bracket, time, grid, twap or iceberg"), examples=["price"])
    side: Text = Field("", description=bilingual_lazy("the released order's side: BUY or SELL (grid: empty)"), examples=["BUY"])
    quantity: int | None = Field(None, description=bilingual_lazy("shares to release (bracket on an entry order, grid: omitted)"),
                                 examples=[1000])
    params: dict[str, Any] = Field(..., description=bilingual_lazy("the trigger's parameters, by kind (docs/conditional-orders.md)"),
                                   examples=[{"direction": "AT_OR_ABOVE", "level": "10.50"}])
    price_type: Text = Field("LIMIT", description=bilingual_lazy("LIMIT, TRIGGER_OFFSET, BEST_OPPOSITE or MARKET"), examples=["LIMIT"])
    limit_price: PriceInput = Field(None, description=bilingual_lazy("price_type LIMIT: the released order's price"), examples=["10.60"])
    offset_ticks: int = Field(0, description=bilingual_lazy("price_type TRIGGER_OFFSET: ticks beyond the trigger price"))
    protection_price: PriceInput = Field(None, description=bilingual_lazy("price_type MARKET: worst acceptable price"))
    client_order_id: Text | None = Field(None, max_length=64, description=bilingual_lazy("idempotency key, unique per account"),
                                         examples=["cond-0001"])
    strategy: Text = Field("", max_length=64)
    expires_at: datetime | None = Field(None, description=bilingual_lazy("when it expires if not fired (aware datetime)"))
    entry_order_id: int | None = Field(None, description=bilingual_lazy("bracket: the entry buy it protects, sized by its fills"))


class ConditionalModifyIn(BaseModel):
    quantity: int | None = None
    params: dict[str, Any] | None = None
    limit_price: PriceInput = None
    expires_at: datetime | None = None


class HistoryOut(BaseModel):
    at: datetime
    event: str
    state_before: str
    state_after: str
    last_price: str | None
    child: int | None
    reason: str


class AlgoReportOut(BaseModel):
    """An execution algorithm's report (conditions/algo_report.py): prices as decimal strings."""

    filled_quantity: int
    average_price: str | None
    arrival_price: str | None
    interval_average_price: str | None
    interval_average_basis: str
    slippage_vs_arrival_bps: str | None
    slippage_vs_interval_bps: str | None
    children: int
    quotes_seen: int


class ConditionalOut(BaseModel):
    id: int
    client_order_id: str
    account: str
    symbol: str
    kind: str
    side: str
    quantity: int
    released_quantity: int
    price_type: str
    limit_price: str | None
    offset_ticks: int
    protection_price: str | None
    params: dict[str, Any]
    memory: dict[str, Any]
    state: str
    state_reason: str
    entry_order_id: int | None
    strategy: str
    expires_at: datetime | None
    triggered_at: datetime | None
    created_at: datetime
    updated_at: datetime
    children: list[int]
    history: list[HistoryOut] | None = None
    algo_report: AlgoReportOut | None = None  # TWAP and iceberg, in the GET of one parent
