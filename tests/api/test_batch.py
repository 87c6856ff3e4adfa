"""A batch answers every item; one bad item never fails the others or the response (issue 8, item 9).
Item errors carry ``field`` and ``rule``, and the status a single order would get for the same cause."""

from __future__ import annotations

import pytest

from orders.models import Order
from tests import factories
from tests.api.conftest import order_body

pytestmark = pytest.mark.django_db(transaction=True)


def _results(response):
    assert response.status_code == 200, response.content
    return response.json()["results"]


def test_an_item_with_a_nul_byte_fails_alone(market) -> None:
    body = {"orders": [
        order_body(client_order_id="n-1", price="9.90"),
        order_body(client_order_id="n-2\x00", price="9.90"),
        order_body(client_order_id="n-3", price="9.91", strategy="s\x00"),
        order_body(client_order_id="n-4", price="9.92"),
    ]}
    results = _results(market.post("/orders/batch", body))
    assert [r["status_code"] for r in results] == [201, 422, 422, 201]
    assert [(d["field"], d["rule"]) for d in results[1]["detail"]] == [("client_order_id", "nul_byte")]
    assert [(d["field"], d["rule"]) for d in results[2]["detail"]] == [("strategy", "nul_byte")]
    assert results[1]["detail"][0]["loc"] == ["body", "orders", 1, "client_order_id"]
    assert sorted(Order.objects.values_list("client_order_id", flat=True)) == ["n-1", "n-4"]


def test_item_errors_carry_field_rule_and_code_like_single_orders(market) -> None:
    body = {"orders": [
        order_body(client_order_id="e-1", quantity="lots"),
        order_body(client_order_id="e-2", quantity=150),
        {"symbol": "600000.SH"},
    ]}
    results = _results(market.post("/orders/batch", body))
    assert [r["status_code"] for r in results] == [422, 422, 422]
    assert {(d["field"], d["rule"]) for d in results[0]["detail"]} == {("quantity", "int_parsing")}
    single = market.post("/orders", order_body(client_order_id="e-2", quantity=150)).json()
    assert results[1]["detail"] == single["detail"] and results[1]["code"] == single["code"]
    assert {"account", "side", "quantity"} <= {d["field"] for d in results[2]["detail"]}
    assert all(d["rule"] for d in results[2]["detail"])
    assert Order.objects.count() == 0


def test_unknown_and_foreign_accounts_answer_as_a_single_order(market) -> None:
    factories.account("acc9")
    body = {"orders": [order_body(account="nobody", client_order_id="u-1"), order_body(account="acc9", client_order_id="u-2"),
                       order_body(client_order_id="u-3", price="9.90")]}
    results = _results(market.post("/orders/batch", body))
    single_unknown = market.post("/orders", order_body(account="nobody"))
    single_foreign = market.post("/orders", order_body(account="acc9"))
    assert [r["status_code"] for r in results] == [single_unknown.status_code, single_foreign.status_code, 201]
    # One answer for a missing and a foreign account (docs/api.md, Security notes): names do not leak.
    assert results[0]["status_code"] == results[1]["status_code"] == 403
    assert results[0]["code"] == single_unknown.json()["code"]
    assert results[0]["detail"] == single_unknown.json()["detail"]


def test_an_item_failing_unexpectedly_is_answered_and_the_others_stand(market, monkeypatch) -> None:
    from orders.services import intake as services  # where order_submit_batch looks order_submit up

    real = services.order_submit

    def flaky(data, **kwargs):
        if data.client_order_id == "boom":
            raise RuntimeError("database went away")
        return real(data, **kwargs)

    monkeypatch.setattr(services, "order_submit", flaky)
    body = {"orders": [order_body(client_order_id="f-1", price="9.90"), order_body(client_order_id="boom", price="9.90"),
                       order_body(client_order_id="f-3", price="9.90")]}
    results = _results(market.post("/orders/batch", body))
    assert [r["status_code"] for r in results] == [201, 500, 201]
    assert results[1]["code"] == "internal_error" and "database" not in str(results[1]["detail"])
    assert Order.objects.count() == 2
