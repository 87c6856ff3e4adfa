"""Nothing is quoted or traded outside the day's price band (issue 8, item 6).

600000.SH with prev_close 10.05 has the band 9.05-11.06 (main board, ±10%).
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from brokers.adapters.paper import PaperBroker, RestingBook
from brokers.interface import BrokerOrderStatus, OrderRequest
from brokers.models import PaperOrder, PaperTrade
from brokers.services import account_create, quotes_publish
from tests import factories
from tests.conftest import CLOCK_START, Clock
from trading.errors import InvalidOrder
from trading.models import Instrument, Quote

D = Decimal
MONDAY = CLOCK_START  # a trading day, where the `clock` fixture starts


@pytest.fixture
def pufa(clock: Clock) -> Instrument:
    return factories.instrument("600000.SH")


def quote_in(**fields: str | int | None) -> dict:
    values: dict = {"symbol": "600000.SH", "last": "10.05", "prev_close": "10.05", "bid": "10.04", "ask": "10.05",
                    "bid_volume": 10000, "ask_volume": 10000}
    values.update(fields)
    return values


def broker() -> PaperBroker:
    account = account_create(name="alpha", broker_kind="paper", cash=D("1000000"))
    return PaperBroker(account.name, account.broker_settings)


def buy(price: str, ref: str = "b1") -> OrderRequest:
    return OrderRequest(client_ref=ref, symbol="600000.SH", side="BUY", order_type="LIMIT", quantity=100, price=D(price))


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["last", "bid", "ask"])
@pytest.mark.parametrize("price", ["5.00", "9.04", "11.07"])
def test_publishing_a_price_outside_the_band_is_refused_naming_the_field(pufa: Instrument, name: str, price: str) -> None:
    fields: dict = {name: price}
    if name in ("bid", "ask"):
        fields["ask" if name == "bid" else "bid"] = None  # an uncrossed book whatever the price
    with pytest.raises(InvalidOrder) as info:
        quotes_publish([quote_in(**fields)])
    problem = info.value.problems[0]
    assert (problem.field, problem.rule) == (f"quotes[0].{name}", "price_limit")
    assert "9.05-11.06" in problem.message
    assert not Quote.objects.filter(instrument=pufa).exists()  # nothing stored


@pytest.mark.django_db
def test_the_band_edges_are_inside_and_a_stored_prev_close_sets_the_band(pufa: Instrument) -> None:
    quotes_publish([quote_in(last="9.05", bid="9.05", ask="11.06")])
    # No prev_close in this quote: the stored 10.05 still sets the band.
    with pytest.raises(InvalidOrder) as info:
        quotes_publish([quote_in(prev_close=None, ask="5.00", bid=None)])
    assert info.value.problems[0].field == "quotes[0].ask"
    assert Quote.objects.get(instrument=pufa).ask == D("11.06")


@pytest.mark.django_db
def test_a_refused_quote_fills_no_resting_order(pufa: Instrument) -> None:
    quotes_publish([quote_in()])
    alpha = broker()
    ack = alpha.place_order(buy("9.50"))
    with pytest.raises(InvalidOrder):
        quotes_publish([quote_in(ask="5.00", bid=None, last="5.00")])
    order = PaperOrder.objects.get(broker_order_id=ack.broker_order_id)
    assert order.status == BrokerOrderStatus.OPEN and order.filled_quantity == 0
    assert not PaperTrade.objects.exists()


@pytest.mark.django_db
def test_the_paper_broker_never_fills_at_a_stored_quote_outside_the_band(pufa: Instrument) -> None:
    quotes_publish([quote_in()])
    alpha = broker()
    ack = alpha.place_order(buy("10.00"))  # rests below the ask
    # A quote written around quotes_publish (an old row, a direct write): ask 5.00, band 9.05-11.06.
    factories.quote("600000.SH", prev_close="10.05", bid=None, ask="5.00", ask_volume=10000)
    quote = Quote.objects.get(instrument=pufa)
    book = RestingBook.lock([(pufa, quote)], MONDAY)
    book.match(pufa, quote)
    order = PaperOrder.objects.get(broker_order_id=ack.broker_order_id)
    assert order.status == BrokerOrderStatus.OPEN and order.filled_quantity == 0
    assert not PaperTrade.objects.exists()
    # Inside the band it trades, at the ask.
    factories.quote("600000.SH", prev_close="10.05", bid=None, ask="9.99", ask_volume=10000)
    quote = Quote.objects.get(instrument=pufa)
    book = RestingBook.lock([(pufa, quote)], MONDAY)
    book.match(pufa, quote)
    assert PaperTrade.objects.get().price == D("9.99")


@pytest.mark.django_db(transaction=True)
def test_api_refuses_a_quote_outside_the_band_with_422(api) -> None:
    factories.instrument("600000.SH")
    feeder = factories.api_key("feed", accounts=["acc1"], can_trade=False, market_data=True)
    body = {"quotes": [quote_in(ask="5.00", bid=None)]}
    response = api.post("/market/quotes", body, key=feeder)
    assert response.status_code == 422, response.content
    detail = response.json()["detail"]
    assert detail[0]["field"] == "quotes[0].ask" and detail[0]["rule"] == "price_limit"
    assert api.post("/market/quotes", {"quotes": [quote_in()]}, key=feeder).status_code == 200
