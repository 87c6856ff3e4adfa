"""Input and output schemas of the orders API (API.md, "Orders").

Plain pydantic models, as in every app's API: the endpoints hand them dicts (see ``orders.selectors``),
so they need none of ninja's Schema machinery for reading ORM objects, which
costs a wrapper per nested object (23 verdicts per order with every rule).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from trading.i18n import bilingual_lazy
from trading.schemas import ErrorOut, PriceInput, Text

__all__ = ["ErrorOut", "OrderIn", "OrderModifyIn", "BatchIn", "VerdictOut", "OrderOut", "BatchItemOut", "BatchOut", "FillOut"]


class OrderIn(BaseModel):
    account: Text = Field(..., max_length=64, description=bilingual_lazy("account name"), examples=["demo"])
    symbol: Text = Field(..., max_length=16, description=bilingual_lazy("600000.SH, sh600000 or 600000"), examples=["600000.SH"])
    side: Text = Field(..., description=bilingual_lazy("BUY or SELL"), examples=["BUY"])
    order_type: Text = Field("LIMIT", description=bilingual_lazy("LIMIT or MARKET"), examples=["LIMIT"])
    price: PriceInput = Field(None, description=bilingual_lazy("decimal string, required for LIMIT"), examples=["10.50"])
    quantity: int = Field(..., description=bilingual_lazy("shares"), examples=[1000])
    client_order_id: Text | None = Field(None, max_length=64, description=bilingual_lazy("idempotency key, unique per account"),
                                         examples=["s1-000123"])
    strategy: Text = Field("", max_length=64, examples=["s1"])
    protection_price: PriceInput = Field(None, description=bilingual_lazy("market orders: worst acceptable price"))


class OrderModifyIn(BaseModel):
    price: PriceInput = None
    quantity: int | None = None


class BatchIn(BaseModel):
    orders: list[dict[str, Any]]


class VerdictOut(BaseModel):
    rule: str
    passed: bool
    action: str
    message: str = ""


class OrderOut(BaseModel):
    id: int
    client_order_id: str
    account: str
    symbol: str
    side: str
    order_type: str
    price: str | None
    quantity: int
    filled_quantity: int
    avg_fill_price: str | None
    status: str
    status_reason: str
    broker_order_id: str
    risk: list[VerdictOut]
    strategy: str
    replaces: int | None
    fees: str
    created_at: datetime
    updated_at: datetime


class BatchItemOut(BaseModel):
    index: int
    status_code: int
    order: OrderOut | None = None
    detail: Any = None
    code: str | None = Field(None, description=bilingual_lazy("the stable error code of a refused item, as in a single answer"))


class BatchOut(BaseModel):
    results: list[BatchItemOut]


class FillOut(BaseModel):
    id: int
    order_id: int
    broker_trade_id: str
    symbol: str
    side: str
    quantity: int
    price: str
    amount: str
    commission: str
    stamp_duty: str
    transfer_fee: str
    other_fees: str
    fees: str
    filled_at: datetime
    trading_day: str
