"""POST /risk/check reaches the verdicts and errors of POST /orders, and creates nothing (issue 8, item 7)."""

from __future__ import annotations

import pytest

from audit.models import AuditEvent
from orders.models import Order
from tests.api.conftest import order_body
from trading.models import CashLedgerEntry, Position

pytestmark = pytest.mark.django_db(transaction=True)


def _rows() -> tuple[int, ...]:
    return (Order.objects.count(), Position.objects.count(), CashLedgerEntry.objects.count(), AuditEvent.objects.count())


@pytest.mark.parametrize(("overrides", "field", "rule"), [
    ({"quantity": 150}, "quantity", "lot_size"),
    ({"quantity": 10**20}, "quantity", "max_quantity"),
    ({"quantity": 1e20}, "quantity", "int_parsing_size"),  # a JSON 1e20 is no integer pydantic takes
    ({"quantity": 2_000_000}, "quantity", "max_quantity"),
    ({"quantity": 99_900, "price": "11.00"}, "quantity", "available_cash"),  # 1,098,900 CNY > 1,000,000
    ({"side": "SELL"}, "quantity", "sellable_quantity"),  # no position at all
    ({"price": "9.9000000000000000000000000000001"}, "price", "tick_size"),
    ({"order_type": "MARKET", "price": None, "protection_price": "11.10"}, "protection_price", "price_limit"),
])
def test_risk_check_refuses_what_intake_refuses(market, overrides, field, rule) -> None:
    body = order_body(**overrides)
    before = _rows()
    dry = market.post("/risk/check", body)
    assert dry.status_code == 422, dry.content
    assert [(d["field"], d["rule"]) for d in dry.json()["detail"]] == [(field, rule)]
    assert _rows() == before  # not even an empty position row
    real = market.post("/orders", body)
    assert real.status_code == 422, real.content
    assert real.json()["detail"] == dry.json()["detail"]
    assert _rows() == before


def test_risk_check_of_a_sellable_holding_passes_and_freezes_nothing(market) -> None:
    from tests import factories
    from trading.models import Account

    Position.objects.create(account=Account.objects.get(name="acc1"), instrument=factories.instrument("600000.SH"),
                            quantity=1000)
    body = order_body(side="SELL", quantity=1000)
    before = _rows()
    dry = market.post("/risk/check", body)
    assert dry.status_code == 200, dry.content
    assert dry.json()["decision"] == "PASS"
    assert _rows() == before
    assert Position.objects.get().frozen_quantity == 0
    too_many = market.post("/risk/check", order_body(side="SELL", quantity=1100))
    assert too_many.status_code == 422 and too_many.json()["detail"][0]["rule"] == "sellable_quantity"
    assert market.post("/orders", body).status_code == 201


def test_risk_check_on_unknown_and_foreign_accounts_answers_like_intake(market) -> None:
    from tests import factories

    unknown = order_body(account="nobody")
    assert market.post("/risk/check", unknown).status_code == market.post("/orders", unknown).status_code == 403
    factories.account("acc9")
    foreign = order_body(account="acc9")
    assert market.post("/risk/check", foreign).status_code == market.post("/orders", foreign).status_code == 403


def test_risk_check_verdicts_match_the_order_intake_creates(market) -> None:
    from risk.services import risk_rule_set
    from risk.verdicts import RiskAction
    from trading.models import Account

    account = Account.objects.get(name="acc1")
    risk_rule_set(code="max_order_amount", account=account, params={"max_amount": "50000"}, action=RiskAction.REVIEW)
    body = order_body(quantity=6000)
    before = _rows()
    dry = market.post("/risk/check", body)
    assert dry.status_code == 200, dry.content
    assert dry.json()["decision"] == "REVIEW"
    assert _rows() == before
    order = market.post("/orders", body).json()
    assert order["status"] == "PENDING_APPROVAL"
    assert [(v["rule"], v["passed"]) for v in order["risk"]] == [(v["rule"], v["passed"]) for v in dry.json()["verdicts"]]
