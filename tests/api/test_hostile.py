"""Hostile input gets a documented 4xx with a JSON ``detail`` naming the field and the rule, never a 500.

Each case here answered 500 (or an undocumented status, or HTML) before (issue 8). NUL bytes matter
most on PostgreSQL, which refuses them in text: the API must refuse them before any query.
"""

from __future__ import annotations

import json
import os

import pytest
from django.test import override_settings

from orders.models import Order
from tests.api.conftest import order_body
from trading.models import Quote

pytestmark = pytest.mark.django_db(transaction=True)

NUL = "\x00"


def problems(response) -> list[tuple[str, str]]:
    """The (field, rule) pairs of a 4xx answer."""
    data = response.json()
    assert isinstance(data["detail"], list), data
    return [(item["field"], item["rule"]) for item in data["detail"]]


def openapi_statuses(client, path: str, method: str) -> set[int]:
    schema = client.get("/api/v1/openapi.json").json()
    return {int(code) for code in schema["paths"][f"/api/v1{path}"][method]["responses"]}


# --------------------------------------------------------------------------- NUL bytes


@pytest.mark.parametrize("field", ["account", "symbol", "side", "order_type", "client_order_id", "strategy", "price"])
def test_nul_byte_in_an_order_field_is_422_naming_it(market, field) -> None:
    body = order_body()
    body[field] = f"{body[field]}{NUL}x"
    response = market.post("/orders", body)
    assert response.status_code == 422, response.content
    assert (field, "nul_byte") in problems(response) or field in {f for f, _ in problems(response)}
    assert Order.objects.count() == 0


@pytest.mark.parametrize("field", ["account", "client_order_id", "strategy"])
def test_nul_byte_in_a_text_field_names_rule_nul_byte(market, field) -> None:
    response = market.post("/orders", order_body(**{field: f"a{NUL}b"}))
    assert response.status_code == 422, response.content
    assert problems(response) == [(field, "nul_byte")]


@pytest.mark.parametrize("param", ["account", "status", "symbol", "strategy"])
def test_nul_byte_in_a_query_parameter_is_422(market, param) -> None:
    response = market.get("/orders", **{param: f"acc1{NUL}"})
    assert response.status_code == 422, response.content
    assert problems(response) == [(param, "nul_byte")]
    assert response.json()["detail"][0]["loc"] == ["query", param]


@pytest.mark.parametrize("path", ["/accounts/acc{nul}1/balance", "/accounts/acc{nul}1/positions", "/accounts/acc{nul}1/trades"])
def test_nul_byte_in_a_path_parameter_is_422(market, path) -> None:
    response = market.get(path.format(nul="%00"))
    assert response.status_code == 422, response.content
    assert problems(response) == [("name", "nul_byte")]


def test_nul_byte_in_risk_check_modify_and_quotes_is_422(market, feeder_key) -> None:
    response = market.post("/risk/check", order_body(account=f"acc1{NUL}"))
    assert response.status_code == 422 and problems(response) == [("account", "nul_byte")]
    order = market.post("/orders", order_body(price="9.90")).json()
    response = market.patch(f"/orders/{order['id']}", {"price": f"9.8{NUL}"})
    assert response.status_code == 422 and problems(response) == [("price", "nul_byte")]
    response = market.post("/market/quotes", {"quotes": [{"symbol": f"600000.SH{NUL}", "last": "10.00"}]}, key=feeder_key)
    assert response.status_code == 422 and problems(response) == [("quotes[0].symbol", "nul_byte")]


def test_nul_byte_in_the_api_key_is_401(market) -> None:
    response = market.get("/orders", key=f"tbo_ab{NUL}cd_secret")
    assert response.status_code == 401 and "detail" in response.json()


# --------------------------------------------------------------------------- symbols and numbers


@pytest.mark.parametrize("symbol", ["null", "600000'", "abc", "600000.XX"])
def test_unreadable_symbol_filter_is_422(market, symbol) -> None:
    response = market.get("/orders", symbol=symbol)
    assert response.status_code == 422, response.content
    assert [f for f, _ in problems(response)] == ["symbol"]
    assert response.json()["detail"][0]["loc"] == ["query", "symbol"]


@pytest.mark.parametrize("symbols", ["abc", "600000.SH,600000'", "null"])
def test_unreadable_quote_symbols_are_422(market, symbols) -> None:
    response = market.get("/market/quotes", symbols=symbols)
    assert response.status_code == 422, response.content
    assert [f for f, _ in problems(response)] == ["symbols"]
    assert response.json()["detail"][0]["loc"] == ["query", "symbols"]


def test_many_quote_symbols_are_one_flat_query_and_too_many_are_422(market) -> None:
    many = ",".join(f"{600000 + i:06d}.SH" for i in range(1000))
    response = market.get("/market/quotes", symbols=many)
    assert response.status_code == 200, response.content
    assert [q["symbol"] for q in response.json()] == ["600000.SH"]
    response = market.get("/market/quotes", symbols=many + ",000001.SZ")
    assert response.status_code == 422 and problems(response) == [("symbols", "max_items")]


def test_quantity_beyond_any_column_is_422(market) -> None:
    for quantity in (99999999999999999999, 10**30, 2**63):
        response = market.post("/orders", order_body(quantity=quantity))
        assert response.status_code == 422, response.content
        assert [f for f, _ in problems(response)] == ["quantity"]
    order = market.post("/orders", order_body(price="9.90")).json()
    response = market.patch(f"/orders/{order['id']}", {"quantity": 99999999999999999999})
    assert response.status_code == 422, response.content
    assert [f for f, _ in problems(response)] == ["quantity"]
    assert Order.objects.count() == 1


def test_list_offset_beyond_any_column_is_422(market) -> None:
    response = market.get("/orders", offset=99999999999999999999)
    assert response.status_code == 422, response.content
    assert [f for f, _ in problems(response)] == ["offset"]
    assert market.get("/orders", limit=99999999999999999999).status_code == 200  # clamped to 1000


def test_order_id_beyond_any_column_is_404_or_422(market) -> None:
    for path in ("/orders/99999999999999999999", "/orders/99999999999999999999/fills"):
        response = market.get(path)
        assert response.status_code in (404, 422), response.content
        assert "detail" in response.json()
    response = market.post("/orders/99999999999999999999/cancel", {})
    assert response.status_code in (404, 422) and "detail" in response.json()


@pytest.mark.parametrize(("field", "value"), [
    ("last", "1e30"), ("last", "99999999999999999999"), ("bid", "1e30"), ("ask", "99999999999999999999"),
    ("prev_close", "1e30"), ("last", "NaN"), ("last", "Infinity"), ("last", "-1"),
    ("bid_volume", 2**63), ("ask_volume", 2**63), ("bid_volume", 99999999999999999999),
])
def test_quote_numbers_beyond_the_columns_are_422(feeder_key, market, field, value) -> None:
    quote = {"symbol": "600000.SH", "prev_close": "10.05", "last": "10.00", "bid": "10.00", "ask": "10.01"}
    quote[field] = value
    response = market.post("/market/quotes", {"quotes": [quote]}, key=feeder_key)
    assert response.status_code == 422, response.content
    assert [f for f, _ in problems(response)] == [f"quotes[0].{field}"]
    assert str(Quote.objects.get(instrument__code="600000").ask) in ("10.01", "10.0100")  # unchanged


# --------------------------------------------------------------------------- bodies, methods, protocols


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=10_000)
def test_body_over_the_upload_limit_is_413_json(market, feeder_key) -> None:
    big = {"orders": [order_body(client_order_id=f"big-{i}", price="9.90") for i in range(200)]}
    response = market.post("/orders/batch", big)
    assert response.status_code == 413, response.content
    assert "detail" in response.json()
    assert response.status_code in openapi_statuses(market.client, "/orders/batch", "post")
    quotes = {"quotes": [{"symbol": "600000.SH", "last": "10.00"}] * 500}
    response = market.post("/market/quotes", quotes, key=feeder_key)
    assert response.status_code == 413 and "detail" in response.json()
    assert Order.objects.count() == 0


@pytest.mark.parametrize("path", ["/risk/check", "/market/quotes", "/orders", "/orders/batch"])
@pytest.mark.parametrize("raw", ["not json", '{"account": ', "[1, 2", "\x00"])
def test_a_body_that_is_not_json_answers_a_documented_status(market, feeder_key, path, raw) -> None:
    key = feeder_key if path == "/market/quotes" else None
    response = market.post(path, raw=raw, key=key)
    assert 400 <= response.status_code < 500, response.content
    assert response.status_code in openapi_statuses(market.client, path, "post")
    assert problems(response) == [("body", "invalid_json")]


def test_a_multipart_post_is_a_json_4xx(market) -> None:
    response = market.client.post("/api/v1/orders", {"account": "acc1", "quantity": "100"},
                                  HTTP_AUTHORIZATION=f"Bearer {market.key}")  # multipart/form-data
    assert 400 <= response.status_code < 500, response.content
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["detail"]
    assert response.status_code in openapi_statuses(market.client, "/orders", "post")


def test_an_unsupported_method_is_json_405(market) -> None:
    response = market.client.delete("/api/v1/orders", HTTP_AUTHORIZATION=f"Bearer {market.key}")
    assert response.status_code == 405
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["detail"] and "GET" in response["Allow"]
    response = market.client.put("/api/v1/risk/check", "{}", content_type="application/json")
    assert response.status_code == 405 and response.json()["detail"]


def test_an_unknown_api_path_is_json_404(market) -> None:
    response = market.get("/no-such-thing")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/json") and response.json()["detail"]


def test_a_websocket_upgrade_without_a_consumer_is_refused_not_a_crash(monkeypatch) -> None:
    from asgiref.sync import async_to_sync
    from channels.testing import WebsocketCommunicator

    # trading.asgi sets a default DB_POOL in the environment: keep it out of later tests' subprocesses.
    monkeypatch.setenv("DB_POOL", os.environ.get("DB_POOL", "0"))
    from trading.asgi import application

    async def attempt(path: str):
        communicator = WebsocketCommunicator(application, path)
        try:
            return await communicator.connect(timeout=5)
        finally:
            await communicator.disconnect()

    for path in ("/ws/orders/", "/api/v1/orders", "/"):
        connected, code = async_to_sync(attempt)(path)
        assert connected is False
        assert code in (403, 404, 4403, 4404, 1000, None), code


def test_every_api_error_is_json_with_detail(market) -> None:
    """A sample of each family: none may answer HTML or an empty body."""
    answers = [
        market.get("/orders", key="wrong"),
        market.get("/orders/12345"),
        market.post("/orders", json.loads('{"account": 1}')),
        market.client.options("/api/v1/orders"),
    ]
    for response in answers:
        assert 400 <= response.status_code < 500, response.content
        assert response.json()["detail"], response.content
