"""An execution algorithm's report (fills, arrival price, the interval's time-weighted average,
slippage in bps) against figures computed by hand; pause and resume over REST; the report in the
GET of the parent and on its admin page."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from audit.services import Actor
from conditions.algo_report import algo_report
from conditions.models import ConditionalOrder
from conditions.services import conditions_evaluate_clock
from tests import factories
from tests.conditions.conftest import publish
from tests.conditions.test_algos import algo, children

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_buy_twap_report_against_hand_computed_figures(market, clock) -> None:
    start = clock.at
    parent = algo(quantity=1000, params={"slices": 2, "duration_seconds": 400, "seed": 1})  # arrival: last 10.00
    conditions_evaluate_clock()  # slice 1: 500 at the ask 10.00
    clock.at = start + timedelta(seconds=50)
    publish(last="10.10", bid="10.09", ask="10.10", bid_volume=100000, ask_volume=100000)
    clock.at = start + timedelta(seconds=100)
    live = algo_report(ConditionalOrder.objects.get(pk=parent.pk))
    assert live is not None
    assert live["interval_average_price"] == "10.05"  # (50 s x 10.00 + 50 s x 10.10) / 100 s, so far
    clock.at = start + timedelta(seconds=200)
    conditions_evaluate_clock()  # slice 2: 500 at the ask 10.10 (under the limit 10.20)
    conditions_evaluate_clock()
    parent = ConditionalOrder.objects.get(pk=parent.pk)
    assert parent.state == "COMPLETED"
    assert [(c.filled_quantity, c.filled_amount) for c in children(parent)] == [(500, Decimal("5000.00")), (500, Decimal("5050.00"))]
    clock.at = start + timedelta(seconds=900)  # later reads end at the parent's end (200 s)
    assert algo_report(parent) == {
        "filled_quantity": 1000,
        "average_price": "10.05",  # 10,050 / 1,000
        "arrival_price": "10.00",
        "interval_average_price": "10.075",  # (50 s x 10.00 + 150 s x 10.10) / 200 s
        "interval_average_basis": "time-weighted last price",
        "slippage_vs_arrival_bps": "50.00",  # (10.05 - 10.00) / 10.00 x 10,000
        "slippage_vs_interval_bps": "-24.81",  # (10.05 - 10.075) / 10.075 x 10,000 = -24.8139
        "children": 2,
        "quotes_seen": 1,
    }


def test_a_sell_costs_when_it_sells_below_the_benchmark(market, clock) -> None:
    from brokers.services import opening_positions_load

    opening_positions_load(account_name="acc1", rows=[{"symbol": "600000.SH", "quantity": "1000", "avg_cost": "9.00",
                                                       "acquired": "2026-11-20"}], actor=Actor.command("test"))
    parent = algo(side="SELL", quantity=1000, limit_price="9.80", params={"slices": 1, "duration_seconds": 60, "seed": 1})
    conditions_evaluate_clock()  # 1,000 at the bid 9.99 (above the limit 9.80)
    report = algo_report(ConditionalOrder.objects.get(pk=parent.pk))
    assert report is not None and report["average_price"] == "9.99"
    assert report["slippage_vs_arrival_bps"] == "10.00"  # (10.00 - 9.99) / 10.00 x 10,000: a cost


def test_other_kinds_have_no_report(market) -> None:
    from tests.conditions.conftest import create

    assert algo_report(create()) is None


# REST and admin --------------------------------------------------------------------------------


@pytest.fixture
def rest(api, clock):
    factories.instrument("600000.SH")
    factories.quote("600000.SH", last="10.00", prev_close="10.00", bid="9.99", ask="10.00")
    return api


def twap_body(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"account": "acc1", "symbol": "600000.SH", "kind": "twap", "side": "BUY", "quantity": 1000,
                            "params": {"slices": 2, "duration_seconds": 600}, "price_type": "LIMIT", "limit_price": "10.20",
                            "client_order_id": "t-1"}
    data.update(overrides)
    return data


def test_pause_resume_over_rest_and_the_report_in_the_get(rest) -> None:
    parent = rest.post("/conditional-orders", twap_body())
    assert parent.status_code == 201, parent.content
    pid = parent.json()["id"]
    paused = rest.post(f"/conditional-orders/{pid}/pause")
    assert paused.status_code == 200 and paused.json()["state"] == "PAUSED"
    again = rest.post(f"/conditional-orders/{pid}/pause")
    assert again.status_code == 409 and again.json()["code"] == "illegal_transition"
    resumed = rest.post(f"/conditional-orders/{pid}/resume")
    assert resumed.status_code == 200 and resumed.json()["state"] == "ACTIVE"
    got = rest.get(f"/conditional-orders/{pid}").json()
    assert got["algo_report"]["arrival_price"] == "10.00" and got["algo_report"]["filled_quantity"] == 0
    assert [h["event"] for h in got["history"]] == ["CREATED", "PAUSED", "RESUMED"]
    assert rest.post("/conditional-orders/999999/pause").status_code == 404


def test_a_price_trigger_cannot_be_paused_over_rest(rest) -> None:
    parent = rest.post("/conditional-orders", twap_body(kind="price", params={"direction": "AT_OR_ABOVE", "level": "10.50"},
                                                        limit_price="10.60")).json()
    refused = rest.post(f"/conditional-orders/{parent['id']}/pause")
    assert refused.status_code == 409 and refused.json()["code"] == "conflict"
    assert rest.get(f"/conditional-orders/{parent['id']}").json()["algo_report"] is None


@pytest.mark.parametrize(("params", "field"), [
    ({"slices": 0, "duration_seconds": 60}, "params.slices"),
    ({"slices": 2}, "params.end_at"),
    ({"slices": 2, "duration_seconds": 60, "participation_pct": "0"}, "params.participation_pct"),
    ({"slices": 2, "duration_seconds": 60, "randomise_pct": 10.5}, "params.randomise_pct"),
])
def test_bad_twap_parameters_are_422_naming_the_field(rest, params, field) -> None:
    response = rest.post("/conditional-orders", twap_body(params=params))
    assert response.status_code == 422, response.content
    assert field in {p["field"] for p in response.json()["detail"]}
    assert not ConditionalOrder.objects.exists()


def test_iceberg_display_must_be_whole_lots(rest) -> None:
    response = rest.post("/conditional-orders", twap_body(kind="iceberg", params={"display_quantity": 150}))
    assert response.status_code == 422 and response.json()["detail"][0]["field"] == "params.display_quantity"


@pytest.mark.parametrize(("role", "allowed"), [("Operator", True), ("Compliance", False)])
def test_the_admin_page_shows_the_report_and_the_desk_pauses_and_resumes(market, clock, role, allowed) -> None:
    from tests.staff_helpers import staff_member, verified_client

    admin_client = verified_client(staff_member(role.lower(), role))
    parent = algo(quantity=1000, params={"slices": 2, "duration_seconds": 400, "seed": 1})
    conditions_evaluate_clock()
    page = admin_client.get(f"/admin/conditions/conditionalorder/{parent.pk}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "执行报告" in html and "到达价: <b>10.00</b>" in html and "成交均价: <b>10.00</b>" in html  # slice 1 filled at 10.00
    changelist = "/admin/conditions/conditionalorder/"
    admin_client.post(changelist, {"action": "pause_selected", "_selected_action": [parent.pk]})
    assert (ConditionalOrder.objects.get(pk=parent.pk).state == "PAUSED") is allowed
    if allowed:
        admin_client.post(changelist, {"action": "resume_selected", "_selected_action": [parent.pk]})
        assert ConditionalOrder.objects.get(pk=parent.pk).state == "ACTIVE"
