"""A key learns nothing about accounts outside its scope (issue 8, item 15).

API.md promises 403 for "an account the key may not use"; a missing account gets
the same 403 and the same message, so existence cannot be probed.
"""

from __future__ import annotations

import pytest

from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def market(api):
    factories.instrument("600000.SH")
    factories.quote("600000.SH", prev_close="10.05", bid="10.00", ask="10.01", bid_volume=50000, ask_volume=50000)
    factories.account("other")
    return api


@pytest.mark.parametrize("path", ["balance", "positions", "trades"])
def test_a_missing_account_and_another_keys_account_answer_alike(market, path: str) -> None:
    missing = market.get(f"/accounts/ghost/{path}")
    forbidden = market.get(f"/accounts/other/{path}")
    assert missing.status_code == forbidden.status_code == 403
    assert missing.json()["code"] == forbidden.json()["code"]
    assert missing.json()["detail"].replace("ghost", "X") == forbidden.json()["detail"].replace("other", "X")
    assert market.get(f"/accounts/acc1/{path}").status_code == 200


@pytest.mark.parametrize("call", [
    lambda api, name: api.post("/orders", {"account": name, "symbol": "600000.SH", "side": "BUY", "order_type": "LIMIT",
                                           "price": "10.00", "quantity": 100, "client_order_id": "c1"}),
    lambda api, name: api.get("/orders", account=name),
    lambda api, name: api.post("/risk/check", {"account": name, "symbol": "600000.SH", "side": "BUY",
                                               "order_type": "LIMIT", "price": "10.00", "quantity": 100}),
])
def test_other_account_endpoints_do_not_tell_names_apart_either(market, call) -> None:
    missing, forbidden = call(market, "ghost"), call(market, "other")
    assert missing.status_code == forbidden.status_code == 403, (missing.content, forbidden.content)


def test_the_quote_feed_names_only_accounts_of_the_feeder_key(market) -> None:
    other_key = factories.api_key("k-other", accounts=["other"])
    body = {"account": "other", "symbol": "600000.SH", "side": "BUY", "order_type": "LIMIT", "price": "9.95",
            "quantity": 100, "client_order_id": "o1"}
    assert market.post("/orders", body, key=other_key).json()["status"] == "SUBMITTED"
    mine = dict(body, account="acc1", client_order_id="m1")
    assert market.post("/orders", mine).json()["status"] == "SUBMITTED"
    feeder = factories.api_key("feed", accounts=["acc1"], can_trade=False, market_data=True)
    quote = {"symbol": "600000.SH", "last": "9.95", "prev_close": "10.05", "bid": "9.94", "ask": "9.95",
             "bid_volume": 5000, "ask_volume": 5000}
    answer = market.post("/market/quotes", {"quotes": [quote]}, key=feeder).json()
    assert answer["accounts_with_fills"] == ["acc1"]
    # The fills of the other account still happened and were picked up.
    orders = market.get("/orders", key=other_key, account="other").json()
    assert orders[0]["status"] == "FILLED", orders
