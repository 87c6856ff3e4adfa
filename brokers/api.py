"""Market data of the simulated (paper) market (API.md, "Market data")."""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Router
from ninja.responses import Status
from pydantic import BaseModel, Field

from orders.schemas import ErrorOut
from orders.services import accounts_poll_later
from trading.auth import ApiClient
from trading.errors import Forbidden
from trading.market_rules import normalize_symbol
from trading.models import Quote
from trading.selectors import quote_as_json

router = Router(tags=["market"])
ERRORS = {401: ErrorOut, 403: ErrorOut, 422: ErrorOut}


class QuoteIn(BaseModel):
    symbol: str = Field(..., max_length=16)
    last: str | None = None
    prev_close: str | None = None
    bid: str | None = None
    ask: str | None = None
    bid_volume: int = Field(0, ge=0)
    ask_volume: int = Field(0, ge=0)


class QuotesIn(BaseModel):
    quotes: list[QuoteIn] = Field(..., max_length=5000)


class QuoteOut(BaseModel):
    symbol: str
    name: str
    last: str | None
    prev_close: str | None
    bid: str | None
    ask: str | None
    bid_volume: int
    ask_volume: int


class PublishOut(BaseModel):
    accepted: int
    accounts_with_fills: list[str]


@router.post("/market/quotes", response={200: PublishOut, **ERRORS})
def quotes_publish(request: HttpRequest, payload: QuotesIn):
    from brokers.services import quotes_publish as publish

    client: ApiClient = request.auth  # type: ignore[attr-defined]
    if not client.market_data:
        raise Forbidden("此API密钥不能发布行情 (this key is not a market-data feeder)")
    result = publish([q.model_dump() for q in payload.quotes])
    accounts_poll_later(sorted(result.accounts_with_fills))  # quotes_publish has committed: pick up the fills now
    # The answer names only accounts this key may use: a feeder learns nothing about other accounts.
    visible = sorted(name for name in result.accounts_with_fills if client.may_use(name))
    return Status(200, {"accepted": len(result.quotes), "accounts_with_fills": visible})


@router.get("/market/quotes", response={200: list[QuoteOut], **ERRORS})
def quotes_list(request: HttpRequest, symbols: str = ""):
    quotes = Quote.objects.select_related("instrument")
    if symbols:
        keys = [normalize_symbol(s.strip()) for s in symbols.split(",") if s.strip()]
        from django.db.models import Q

        condition = Q()
        for code, exchange in keys:
            condition |= Q(instrument__code=code, instrument__exchange=exchange)
        quotes = quotes.filter(condition)
    return Status(200, [quote_as_json(q) for q in quotes.order_by("instrument__exchange", "instrument__code")[:1000]])
