"""The REST contract of conditional orders: create (idempotent), get, list, cancel, modify, and every
bad input answered 422 naming the field and the rule, with nothing written."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from conditions.models import ConditionalOrder
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def market(api, clock):
    factories.instrument("600000.SH")
    factories.quote("600000.SH", last="10.00", prev_close="10.00", bid="9.99", ask="10.00")
    from audit.services import Actor
    from brokers.services import opening_positions_load

    opening_positions_load(account_name="acc1", rows=[{"symbol": "600000.SH", "quantity": "1000", "avg_cost": "9.00",
                                                       "acquired": "2026-11-20"}], actor=Actor.command("test"))
    return api


def body(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"account": "acc1", "symbol": "600000.SH", "kind": "price", "side": "BUY", "quantity": 1000,
                            "params": {"direction": "AT_OR_ABOVE", "level": "10.50"}, "price_type": "LIMIT",
                            "limit_price": "10.60", "client_order_id": "c-1"}
    data.update(overrides)
    return data


def stop_loss(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {"kind": "bracket", "side": "SELL", "quantity": 1000, "params": {"stop_loss": "9.50", "take_profit": "10.80"},
                              "price_type": "BEST_OPPOSITE", "limit_price": None}
    values.update(overrides)
    return body(**values)


def test_create_get_list_and_idempotent_repeat(market) -> None:
    first = market.post("/conditional-orders", body())
    assert first.status_code == 201, first.content
    data = first.json()
    assert data["state"] == "ACTIVE" and data["kind"] == "price" and data["limit_price"] == "10.60" and data["children"] == []
    again = market.post("/conditional-orders", body(quantity=5000))
    assert again.status_code == 200 and again.json()["id"] == data["id"] and again.json()["quantity"] == 1000
    assert ConditionalOrder.objects.count() == 1
    got = market.get(f"/conditional-orders/{data['id']}")
    assert got.status_code == 200 and [h["event"] for h in got.json()["history"]] == ["CREATED"]
    listed = market.get("/conditional-orders", state="ACTIVE")
    assert [p["id"] for p in listed.json()] == [data["id"]]
    assert market.get("/conditional-orders", state="CANCELLED").json() == []


def test_cancel_then_cancel_again_is_409(market) -> None:
    parent = market.post("/conditional-orders", body()).json()
    cancelled = market.post(f"/conditional-orders/{parent['id']}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["state"] == "CANCELLED"
    again = market.post(f"/conditional-orders/{parent['id']}/cancel")
    assert again.status_code == 409 and again.json()["code"] == "illegal_transition"


def test_modify_moves_the_level_and_is_checked_like_a_create(market) -> None:
    parent = market.post("/conditional-orders", body()).json()
    moved = market.patch(f"/conditional-orders/{parent['id']}", {"params": {"direction": "AT_OR_ABOVE", "level": "10.70"}})
    assert moved.status_code == 200, moved.content
    assert moved.json()["params"]["level"] == "10.70"
    assert ConditionalOrder.objects.get(pk=parent["id"]).watch_high == Decimal("10.70")
    bad = market.patch(f"/conditional-orders/{parent['id']}", {"params": {"direction": "AT_OR_ABOVE", "level": "10.705"}})
    assert bad.status_code == 422 and bad.json()["detail"][0]["field"] == "params.level"


def test_another_accounts_parent_is_404(market) -> None:
    factories.account("acc2")
    other = factories.api_key("key2", accounts=["acc2"])
    parent = market.post("/conditional-orders", body()).json()
    assert market.get(f"/conditional-orders/{parent['id']}", key=other).status_code == 404
    assert market.post(f"/conditional-orders/{parent['id']}/cancel", key=other).status_code == 404


BAD = [
    # (overrides, field, rule)
    (stop_loss(params={"stop_loss": "10.20"}), "params.stop_loss", "wrong_side"),  # a stop-loss above the last price
    (stop_loss(params={"take_profit": "9.90"}), "params.take_profit", "wrong_side"),
    (body(params={"direction": "AT_OR_ABOVE", "level": "9.90"}), "params.level", "wrong_side"),  # would fire at once
    (body(params={"direction": "AT_OR_ABOVE", "level": "10.505"}), "params.level", "tick_size"),
    (body(params={"direction": "AT_OR_ABOVE", "level": "11.20"}), "params.level", "price_limit"),  # band 9.00-11.00
    (body(limit_price="11.50"), "limit_price", "price_limit"),
    (body(limit_price="10.605"), "limit_price", "tick_size"),
    (body(quantity=150), "quantity", "lot_size"),
    (stop_loss(quantity=2000), "quantity", "sellable_quantity"),  # larger than the position
    (body(symbol="999999.SH"), "symbol", "unknown_symbol"),
    (body(expires_at="2020-01-01T00:00:00+08:00"), "expires_at", "in_past"),
    (body(kind="nope"), "kind", "choice"),
    (body(side="SHORT"), "side", "choice"),
    (body(price_type="BEST"), "price_type", "choice"),
    (body(params={"direction": "UP", "level": "10.50"}), "params.direction", "literal_error"),
    (body(params={"direction": "AT_OR_ABOVE", "level": 10.5}), "params.level", "value_error"),
    (body(params={"direction": "AT_OR_ABOVE", "level": "10.50", "extra": 1}), "params.extra", "extra_forbidden"),
    (body(params={"direction": "AT_OR_ABOVE"}), "params.level", "required"),
    (body(limit_price=None), "limit_price", "required"),
    (body(offset_ticks=1000), "offset_ticks", "integer"),
    (body(kind="trailing", params={"trail_amount": "0.105"}), "params.trail_amount", "tick_size"),
    (body(kind="time", params={"at": "12:00:00"}), "params.at", "session_closed"),
    (body(kind="grid", side="", quantity=None, params={"lower": "9.00", "upper": "8.00", "step": "0.10",
                                                       "lot_quantity": 100, "max_position": 1000}), "params.upper", "order"),
    (body(kind="grid", side="", quantity=None, params={"lower": "9.00", "upper": "11.00", "step": "0.10",
                                                       "lot_quantity": 150, "max_position": 1000}), "params.lot_quantity", "lot_size"),
    (body(kind="bracket", side="BUY", params={"stop_loss": "9.50"}, price_type="MARKET"), "side", "choice"),
]


@pytest.mark.parametrize(("payload", "field", "rule"), BAD, ids=[f"{f}-{r}" for _, f, r in BAD])
def test_bad_input_is_422_naming_the_field_and_the_rule(market, payload, field, rule) -> None:
    from trading.models import SessionMode

    factories.account("acc1")  # REAL sessions for the time trigger's check
    from trading.models import Account

    Account.objects.filter(name="acc1").update(session_mode=SessionMode.REAL)
    response = market.post("/conditional-orders", payload)
    assert response.status_code == 422, response.content
    problems = {(p["field"], p["rule"]) for p in response.json()["detail"]}
    assert (field, rule) in problems, problems
    assert not ConditionalOrder.objects.exists()
