"""The risk effectiveness report (compliance/reports.py) on a small fixed day, against figures
counted by hand: rule failures, holds, refusals, each operator's decisions, the overridden order's fate."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.utils import timezone

from audit.services import Actor
from brokers.adapters.scripted import BrokerScript
from compliance.reports import risk_effectiveness
from orders.models import Order, OrderStatus
from orders.review import order_approve, order_override, order_reject
from orders.services import OrderInput, account_poll, order_submit
from risk.services import risk_rule_set
from risk.verdicts import RiskAction
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)

API = Actor.api_key("reports-tests")
ALICE, BOB = Actor.user("alice"), Actor.user("bob")


def submit(client_order_id: str, quantity: int) -> Order:
    body = factories.order_body(client_order_id=client_order_id, quantity=quantity, price="10.00")
    return Order.objects.get(pk=order_submit(OrderInput(**body), actor=API).order.pk)


@pytest.fixture
def day(script: BrokerScript) -> dict[str, Order]:
    risk_rule_set(code="max_order_amount", params={"max_amount": "50000"}, action=RiskAction.REVIEW, actor=API)
    orders = {"a": submit("a", 1000)}  # 10,000 CNY: passes
    for name in "bcd":
        orders[name] = submit(name, 6000)  # 60,000 CNY: held for review
        assert orders[name].status == OrderStatus.PENDING_APPROVAL
    order_approve(order_id=orders["b"].pk, actor=ALICE)
    order_reject(order_id=orders["c"].pk, actor=BOB, reason="超出授权")
    order_override(order_id=orders["d"].pk, actor=ALICE, reason="投资经理书面确认")
    overridden = Order.objects.get(pk=orders["d"].pk)
    script.fill(overridden.broker_order_id, 6000, Decimal("10.00"))
    account_poll(account_id=overridden.account_id)
    risk_rule_set(code="max_daily_orders", params={"max_orders": 1}, action=RiskAction.REJECT, actor=API)
    orders["e"] = submit("e", 100)  # refused by risk control
    assert orders["e"].status == OrderStatus.REJECTED
    return orders


def test_the_risk_report_counts_what_happened(day: dict[str, Order]) -> None:
    # Orders count by trading day, decisions by the (Shanghai) day of their audit events: a range over both.
    days = sorted({timezone.localdate(), day["a"].trading_day})
    report = risk_effectiveness(since=days[0], until=days[-1])
    assert report.orders == 5
    rules = {rule.rule: rule for rule in report.rules}
    assert (rules["max_order_amount"].checked, rules["max_order_amount"].failed) == (5, 3)
    assert rules["max_order_amount"].by_action == {"REVIEW": 3}
    assert (rules["max_daily_orders"].checked, rules["max_daily_orders"].failed) == (1, 1)
    assert rules["max_daily_orders"].by_action == {"REJECT": 1}
    assert (report.held, report.refused) == (3, 1)
    assert report.decisions == {"alice": {"approved": 1, "overridden": 1}, "bob": {"rejected": 1}}
    [overridden] = report.overridden
    assert (overridden.order_id, overridden.operator, overridden.status, overridden.filled_quantity) == (
        day["d"].pk, "alice", OrderStatus.FILLED, 6000)
    assert overridden.rules == ["max_order_amount"] and overridden.filled_amount == Decimal("60000.00")
    assert report.overridden_outcomes == {OrderStatus.FILLED: 1}


def test_the_report_page_shows_the_figures(day: dict[str, Order]) -> None:
    from staff.roles import roles_sync
    from tests.staff_helpers import staff_member, verified_client

    roles_sync()
    client = verified_client(staff_member("li.compliance", "Compliance"))
    days = sorted({timezone.localdate(), day["a"].trading_day})
    page = client.get("/admin/compliance/compliancelog/reports/risk/",
                      {"since": days[0].isoformat(), "until": days[-1].isoformat()}).content.decode()
    assert '<span id="held">3</span>' in page and '<span id="refused">1</span>' in page
    assert "<td>bob</td><td>0</td><td>1</td><td>0</td>" in page
    assert '<meter min="0" max="5" value="3">' in page


def test_the_command_writes_the_report(day: dict[str, Order], capsys: pytest.CaptureFixture[str], tmp_path) -> None:
    trading_day = day["a"].trading_day.isoformat()
    call_command("report_risk", "--since", trading_day)
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert ["rule", "max_order_amount", "5", "3", "0.6000", "REVIEW=3"] in rows
    out = tmp_path / "risk.xlsx"
    call_command("report_risk", "--since", trading_day, "--out", str(out))
    assert out.read_bytes()[:2] == b"PK"  # a zip: the workbook
