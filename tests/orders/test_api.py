"""The REST contract of API.md: status codes, fields, idempotency and every bad-input case."""

from __future__ import annotations

from decimal import Decimal

import pytest

from orders.models import Order
from tests import factories
from tests.factories import order_body
from trading.models import Account, CashLedgerEntry, Position

pytestmark = pytest.mark.django_db(transaction=True)




@pytest.fixture
def market(api):
    factories.instrument("600000.SH")
    factories.instrument("300750.SZ")
    factories.instrument("688981.SH")
    factories.quote("600000.SH", prev_close="10.05", bid="10.00", ask="10.01", bid_volume=50000, ask_volume=50000)
    factories.quote("300750.SZ", prev_close="200.00", bid="199.99", ask="200.00")
    factories.quote("688981.SH", prev_close="80.00", bid="79.99", ask="80.00")
    return api


def test_new_order_is_201_with_contract_fields_and_fills(market) -> None:
    response = market.post("/orders", order_body(price="10.05"))
    assert response.status_code == 201, response.content
    data = response.json()
    for name in ("id", "client_order_id", "account", "symbol", "side", "order_type", "price", "quantity",
                 "filled_quantity", "avg_fill_price", "status", "status_reason", "broker_order_id", "risk",
                 "created_at", "updated_at"):
        assert name in data
    assert data["symbol"] == "600000.SH" and data["price"] == "10.05" and data["client_order_id"] == "s1-0001"
    # In-process tasks: the paper broker filled it at the ask.
    assert data["status"] == "FILLED", data
    assert data["filled_quantity"] == 1000 and data["avg_fill_price"] == "10.01"
    assert data["broker_order_id"].startswith("P-")
    fills = market.get(f"/orders/{data['id']}/fills").json()
    assert [f["quantity"] for f in fills] == [1000] and fills[0]["price"] == "10.01"


def test_same_client_order_id_returns_first_order_and_creates_nothing(market) -> None:
    first = market.post("/orders", order_body(price="9.90"))
    again = market.post("/orders", order_body(price="9.90", quantity=5000))
    assert first.status_code == 201 and again.status_code == 200
    assert again.json()["id"] == first.json()["id"] and again.json()["quantity"] == 1000
    assert Order.objects.count() == 1
    assert CashLedgerEntry.objects.filter(kind="FREEZE").count() == 1


def test_symbol_spellings_are_accepted_and_output_is_canonical(market) -> None:
    for index, spelling in enumerate(["sh600000", "SH600000", "600000", "600000.sh"]):
        response = market.post("/orders", order_body(symbol=spelling, client_order_id=f"sp-{index}", price="9.90"))
        assert response.status_code == 201, response.content
        assert response.json()["symbol"] == "600000.SH"


@pytest.mark.parametrize(
    ("overrides", "field", "rule"),
    [
        ({"quantity": 0}, "quantity", "positive"),
        ({"quantity": -100}, "quantity", "positive"),
        ({"quantity": 150}, "quantity", "lot_size"),
        ({"price": "10.005"}, "price", "tick_size"),
        ({"price": "11.07"}, "price", "price_limit"),
        ({"price": "9.04"}, "price", "price_limit"),
        ({"price": 10.5}, "price", "decimal"),
        ({"price": "abc"}, "price", "decimal"),
        ({"price": "NaN"}, "price", "decimal"),
        ({"price": "1e20"}, "price", "max_price"),
        ({"price": "-10.00"}, "price", "positive"),
        ({"price": None}, "price", "required"),
        ({"symbol": "999999.SH"}, "symbol", "unknown_symbol"),
        ({"symbol": "hello"}, "symbol", "symbol_format"),
        ({"side": "HOLD"}, "side", "choice"),
        ({"order_type": "STOP"}, "order_type", "choice"),
        ({"quantity": 200_000}, "quantity", "available_cash"),
        ({"quantity": 2_000_000}, "quantity", "max_quantity"),
    ],
)
def test_bad_order_is_422_naming_field_and_rule_and_writes_nothing(market, overrides, field, rule) -> None:
    response = market.post("/orders", order_body(**overrides))
    assert response.status_code == 422, response.content
    detail = response.json()["detail"]
    assert any(d["field"] == field and d["rule"] == rule for d in detail), detail
    assert all(d["msg"] for d in detail)
    assert Order.objects.count() == 0
    assert CashLedgerEntry.objects.exclude(kind="DEPOSIT").count() == 0


def test_lot_rules_per_board(market) -> None:
    assert market.post("/orders", order_body(symbol="688981.SH", price="80.00", quantity=201, client_order_id="a")).status_code == 201
    assert market.post("/orders", order_body(symbol="688981.SH", price="80.00", quantity=199, client_order_id="b")).status_code == 422
    assert market.post("/orders", order_body(symbol="300750.SZ", price="200.00", quantity=100, client_order_id="c")).status_code == 201
    assert market.post("/orders", order_body(symbol="300750.SZ", price="200.00", quantity=150, client_order_id="d")).status_code == 422


def test_wrong_types_and_malformed_json_are_4xx_naming_the_field(market) -> None:
    response = market.post("/orders", order_body(quantity="lots"))
    assert response.status_code == 422
    assert any("quantity" in d["loc"] for d in response.json()["detail"])
    response = market.post("/orders", raw='{"account": "acc1", "symbol": ')
    assert 400 <= response.status_code < 500 and "detail" in response.json()
    response = market.post("/orders", {"symbol": "600000.SH"})
    assert response.status_code == 422
    fields = {d["field"] for d in response.json()["detail"]}
    assert {"account", "side", "quantity"} <= fields
    assert Order.objects.count() == 0


def test_selling_more_than_sellable_is_422_and_t_plus_one_holds(market) -> None:
    bought = market.post("/orders", order_body(price="10.05", client_order_id="b1"))
    assert bought.json()["status"] == "FILLED"
    response = market.post("/orders", order_body(side="SELL", price="10.00", client_order_id="s1"))
    assert response.status_code == 422
    assert response.json()["detail"][0]["rule"] == "sellable_quantity"
    position = market.get("/accounts/acc1/positions").json()[0]
    assert position["quantity"] == 1000 and position["sellable_quantity"] == 0


def test_auth_401_403_404(market) -> None:
    factories.account("other")
    assert market.post("/orders", order_body(), key="").status_code == 401
    assert market.post("/orders", order_body(), key="tbo_nope_nope").status_code == 401
    assert market.get("/orders", key="garbage").status_code == 401
    assert market.post("/orders", order_body(account="other")).status_code == 403
    assert market.post("/orders", order_body(account="ghost")).status_code == 403  # same as another key's account
    read_only = factories.api_key("ro", accounts=["acc1"], can_trade=False)
    assert market.post("/orders", order_body(), key=read_only).status_code == 403
    assert market.get("/accounts/acc1/balance", key=read_only).status_code == 200
    assert market.get("/accounts/other/balance").status_code == 403
    other_key = factories.api_key("k-other", accounts=["other"])
    mine = market.post("/orders", order_body(price="9.90")).json()
    assert market.get(f"/orders/{mine['id']}", key=other_key).status_code == 404
    assert market.post(f"/orders/{mine['id']}/cancel", key=other_key).status_code == 404
    assert market.get("/orders/999999").status_code == 404
    assert Order.objects.count() == 1


def test_revoked_key_is_refused(market) -> None:
    from trading.auth import _cache
    from trading.models import ApiKey

    ApiKey.objects.filter(name="key1").update(is_active=False)
    _cache.clear()
    assert market.get("/orders").status_code == 401


def test_keys_are_stored_hashed(market) -> None:
    from trading.models import ApiKey

    key = ApiKey.objects.get(name="key1")
    assert market.key not in (key.key_hash, key.prefix)
    assert len(key.key_hash) == 64


def test_cancel_is_202_then_409_when_terminal(market) -> None:
    order = market.post("/orders", order_body(price="9.90")).json()
    assert order["status"] == "SUBMITTED"
    response = market.post(f"/orders/{order['id']}/cancel")
    assert response.status_code == 202
    assert response.json()["status"] == "CANCELLED"
    again = market.post(f"/orders/{order['id']}/cancel")
    assert again.status_code == 409 and "detail" in again.json()
    balance = market.get("/accounts/acc1/balance").json()
    assert balance["frozen"] == "0.00" and balance["cash"] == balance["available"] == "1000000.00"


def test_modify_is_cancel_and_replace(market) -> None:
    order = market.post("/orders", order_body(price="9.90")).json()
    response = market.patch(f"/orders/{order['id']}", {"price": "9.95"})
    assert response.status_code == 200, response.content
    replacement = response.json()
    assert replacement["replaces"] == order["id"] and replacement["price"] == "9.95"
    assert replacement["status"] == "SUBMITTED" and replacement["id"] != order["id"]
    assert market.get(f"/orders/{order['id']}").json()["status"] == "CANCELLED"
    balance = market.get("/accounts/acc1/balance").json()
    freeze = Decimal("9.95") * 1000
    assert Decimal(balance["frozen"]) >= freeze and Decimal(balance["frozen"]) < freeze + 10
    assert market.patch(f"/orders/{order['id']}", {"price": "9.96"}).status_code == 409


def test_batch_answers_each_item_and_one_bad_item_does_not_sink_the_others(market) -> None:
    body = {"orders": [
        order_body(client_order_id="b-1", price="9.90"),
        order_body(client_order_id="b-2", quantity=150),
        order_body(client_order_id="b-3", price="9.91"),
        {"account": "acc1", "symbol": "600000.SH"},
        order_body(client_order_id="b-1", price="9.90"),
    ]}
    response = market.post("/orders/batch", body)
    assert response.status_code == 200
    codes = [r["status_code"] for r in response.json()["results"]]
    assert codes == [201, 422, 201, 422, 200]
    assert Order.objects.count() == 2


def test_oversized_batch_is_422_and_creates_nothing(market) -> None:
    body = {"orders": [order_body(client_order_id=f"x-{i}", price="9.90") for i in range(501)]}
    response = market.post("/orders/batch", body)
    assert response.status_code == 422
    assert response.json()["detail"][0]["field"] == "orders"
    assert Order.objects.count() == 0


def test_list_filters_newest_first(market) -> None:
    for i in range(3):
        market.post("/orders", order_body(client_order_id=f"l-{i}", price="9.90"))
    market.post("/orders", order_body(client_order_id="l-x", symbol="300750.SZ", price="199.00", quantity=100))
    listed = market.get("/orders", account="acc1").json()
    assert [o["client_order_id"] for o in listed] == ["l-x", "l-2", "l-1", "l-0"]
    assert [o["client_order_id"] for o in market.get("/orders", symbol="300750.SZ").json()] == ["l-x"]
    assert len(market.get("/orders", limit=2, offset=1).json()) == 2
    assert market.get("/orders", status="FILLED").json() == []


def test_balance_positions_trades_after_a_fill(market) -> None:
    market.post("/orders", order_body(price="10.05"))
    balance = market.get("/accounts/acc1/balance").json()
    # 1000 x 10.01 = 10010.00; commission max(5, 2.50) = 5.00; transfer 0.001% = 0.10
    assert balance["cash"] == str(Decimal("1000000") - Decimal("10010.00") - Decimal("5.10"))
    assert Decimal(balance["cash"]) == Decimal(balance["available"]) + Decimal(balance["frozen"])
    assert balance["frozen"] == "0.00"
    positions = market.get("/accounts/acc1/positions").json()
    assert positions[0]["symbol"] == "600000.SH" and positions[0]["quantity"] == 1000
    trades = market.get("/accounts/acc1/trades").json()
    assert len(trades) == 1 and trades[0]["fees"] == "5.10"


def test_quotes_need_a_market_data_key(market) -> None:
    body = {"quotes": [{"symbol": "600000.SH", "last": "9.95", "prev_close": "10.05", "bid": "9.94", "ask": "9.95",
                        "bid_volume": 100, "ask_volume": 100}]}
    assert market.post("/market/quotes", body).status_code == 403
    feeder = factories.api_key("feed", accounts=["acc1"], can_trade=False, market_data=True)
    response = market.post("/market/quotes", body, key=feeder)
    assert response.status_code == 200 and response.json()["accepted"] == 1
    quotes = market.get("/market/quotes", symbols="600000.SH").json()
    assert quotes[0]["ask"] == "9.95"


def test_a_resting_order_fills_when_the_market_moves(market) -> None:
    order = market.post("/orders", order_body(price="9.95")).json()
    assert order["status"] == "SUBMITTED"
    feeder = factories.api_key("feed", accounts=["acc1"], can_trade=False, market_data=True)
    quote = {"symbol": "600000.SH", "last": "9.95", "prev_close": "10.05", "bid": "9.94", "ask": "9.95",
             "bid_volume": 600, "ask_volume": 600}
    market.post("/market/quotes", {"quotes": [quote]}, key=feeder)
    partial = market.get(f"/orders/{order['id']}").json()
    assert partial["status"] == "PARTIALLY_FILLED" and partial["filled_quantity"] == 600
    market.post("/market/quotes", {"quotes": [quote]}, key=feeder)
    done = market.get(f"/orders/{order['id']}").json()
    assert done["status"] == "FILLED" and done["filled_quantity"] == 1000
    fills = market.get(f"/orders/{order['id']}/fills").json()
    # Commission minimum once per order: 5.00 in all, not 5.00 per fill.
    assert sum(Decimal(f["commission"]) for f in fills) == Decimal("5.00")


def test_openapi_and_docs_are_served(market) -> None:
    schema = market.client.get("/api/v1/openapi.json")
    assert schema.status_code == 200
    assert "/api/v1/orders" in schema.json()["paths"]
    assert market.client.get("/api/v1/docs").status_code == 200


def test_ledger_sums_equal_cached_balances(market) -> None:
    from trading.services import ledger_totals

    market.post("/orders", order_body(price="10.05", client_order_id="f1"))
    market.post("/orders", order_body(price="9.90", client_order_id="f2"))
    account = Account.objects.get(name="acc1")
    assert ledger_totals(account) == (account.cash, account.frozen)
    assert Position.objects.get(account=account).quantity == 1000
