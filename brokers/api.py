"""Market data of the simulated (paper) market (API.md, "Market data")."""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Router
from ninja.responses import Status
from pydantic import BaseModel, Field

from orders.services import accounts_poll_later
from trading.auth import api_client
from trading.errors import Forbidden, InputRule, InvalidOrder
from trading.i18n import bilingual
from trading.market_rules import MarketRuleViolation, normalize_symbol
from trading.models import Quote
from trading.schemas import BODY_ERRORS, MAX_VOLUME, QuotePrice, Text, error_responses
from trading.selectors import quote_as_json

router = Router(tags=["market"])
ERRORS = error_responses(*BODY_ERRORS, 403)
MAX_SYMBOLS = 1000  # one GET /market/quotes answers at most this many


class QuoteIn(BaseModel):
    symbol: Text = Field(..., max_length=16, examples=["600000.SH"])
    last: QuotePrice = Field(None, examples=["10.50"])
    prev_close: QuotePrice = Field(None, examples=["10.00"])
    bid: QuotePrice = Field(None, examples=["10.49"])
    ask: QuotePrice = Field(None, examples=["10.51"])
    bid_volume: int = Field(0, ge=0, le=MAX_VOLUME, examples=[5000])
    ask_volume: int = Field(0, ge=0, le=MAX_VOLUME, examples=[3000])


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

    client = api_client(request)
    if not client.market_data:
        raise Forbidden(bilingual("this key is not a market-data feeder"))
    result = publish([q.model_dump() for q in payload.quotes])
    accounts_poll_later(sorted(result.accounts_with_fills))  # quotes_publish has committed: pick up the fills now
    # The answer names only accounts this key may use: a feeder learns nothing about other accounts.
    visible = sorted(name for name in result.accounts_with_fills if client.may_use(name))
    return Status(200, {"accepted": len(result.quotes), "accounts_with_fills": visible})


@router.get("/market/quotes", response={200: list[QuoteOut], **ERRORS})
def quotes_list(request: HttpRequest, symbols: str = ""):
    quotes = Quote.objects.select_related("instrument")
    if symbols:
        names = [s.strip() for s in symbols.split(",") if s.strip()]
        if len(names) > MAX_SYMBOLS:
            raise InvalidOrder.single("symbols", InputRule.MAX_ITEMS, bilingual("at most {max_symbols} symbols; got {len_names}", max_symbols=MAX_SYMBOLS, len_names=len(names)),
                                      location="query")
        try:
            keys = [normalize_symbol(name) for name in names]
        except MarketRuleViolation as exc:
            raise InvalidOrder.single("symbols", exc.rule, exc.message, location="query") from None
        from django.db.models import Q

        by_exchange: dict[str, set[str]] = {}
        for code, exchange in keys:
            by_exchange.setdefault(exchange, set()).add(code)
        condition = Q(pk__in=[])
        for exchange, codes in by_exchange.items():  # one term per exchange: a flat query for any count
            condition |= Q(instrument__exchange=exchange, instrument__code__in=sorted(codes))
        quotes = quotes.filter(condition)
    return Status(200, [quote_as_json(q) for q in quotes.order_by("instrument__exchange", "instrument__code")[:1000]])
