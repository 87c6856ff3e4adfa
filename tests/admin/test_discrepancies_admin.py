"""The discrepancies page (Orders > Discrepancies) and the reconcile action on accounts.

A risk manager resolves open discrepancies with a reason, audited; no other role can. Operators
may reconcile an account now (the same run as the periodic one). Labels in Chinese and English.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.messages import get_messages

from audit.models import AuditEvent
from brokers.adapters.scripted import BrokerScript, ScriptedBroker
from orders.models import Discrepancy, DiscrepancyKind, DiscrepancyStatus
from orders.services import account_reconcile
from tests import factories
from trading.models import Account

pytestmark = pytest.mark.django_db(transaction=True)
URL = "/admin/orders/discrepancy/"


def texts(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


@pytest.fixture
def found(script: BrokerScript) -> list[Discrepancy]:
    """Three open discrepancies of acc1 (cash, available, a position) and one of acc2 (a position);
    one resolved row of acc1."""
    factories.account("acc2", cash="500000", broker_kind=ScriptedBroker.kind)
    script.cash += Decimal("1000")
    script.holdings["600000.SH"] = (500, Decimal("9.00"))
    ScriptedBroker.script("acc2").holdings["600000.SH"] = (700, Decimal("9.00"))
    for name in ("acc1", "acc2"):
        account_reconcile(account_id=Account.objects.get(name=name).pk)
    script.cash -= Decimal("1000")
    account_reconcile(account_id=Account.objects.get(name="acc1").pk)  # cash agrees again: closed
    return list(Discrepancy.objects.order_by("pk"))


def ids_listed(html: str) -> set[int]:
    return {row.pk for row in Discrepancy.objects.all() if f'{URL}{row.pk}/change/' in html}


def test_the_page_opens_on_open_discrepancies_with_both_sides(role_client, found) -> None:
    response = role_client("Operator").get(URL)
    assert response.status_code == 200
    html = response.content.decode()
    open_rows = Discrepancy.objects.filter(status=DiscrepancyStatus.OPEN)
    assert ids_listed(html) == {row.pk for row in open_rows} and open_rows.count() == 2
    assert "position:600000.SH" in html and ">500<" in html and ">700<" in html
    for label in ("对账差异", "持仓数量不一致", "本地记录", "券商记录", "首次发现", "最近发现", "待处理"):
        assert label in html, label


@pytest.mark.parametrize(("query", "expected"), [
    ("status=all", {"cash", "available", "position:600000.SH"}),
    ("status=RESOLVED", {"cash", "available"}),
    ("kind__exact=CASH&status=all", {"cash", "available"}),
    ("kind__exact=POSITION_QUANTITY", {"position:600000.SH"}),
])
def test_filters_by_status_and_kind(role_client, found, query: str, expected: set[str]) -> None:
    html = role_client("Operator").get(f"{URL}?{query}").content.decode()
    assert {Discrepancy.objects.get(pk=pk).object_ref for pk in ids_listed(html)} == expected


def test_filter_by_account(role_client, found) -> None:
    acc2 = Account.objects.get(name="acc2")
    html = role_client("Operator").get(f"{URL}?account__id__exact={acc2.pk}").content.decode()
    assert ids_listed(html) == {d.pk for d in Discrepancy.objects.filter(account=acc2)}


def test_the_page_in_english(role_client, found) -> None:
    operator = role_client("Operator")
    operator.post("/staff/language/", {"language": "en"})
    html = operator.get(URL).content.decode().lower()  # column headers are capitalised
    for label in ("discrepancies", "position quantity differs", "our record", "broker&#x27;s record", "first seen"):
        assert label in html, label


def _resolve(client, rows: list[Discrepancy], reason: str):
    return client.post(URL, {"action": "resolve_selected", "_selected_action": [r.pk for r in rows], "post": "yes",
                             "reason": reason})


def test_a_risk_manager_resolves_with_a_reason_audited(role_client, found) -> None:
    manager = role_client("Risk manager")
    rows = list(Discrepancy.objects.filter(status=DiscrepancyStatus.OPEN))
    confirm = manager.post(URL, {"action": "resolve_selected", "_selected_action": [r.pk for r in rows]})
    assert confirm.status_code == 200 and 'name="reason"' in confirm.content.decode()
    assert _resolve(manager, rows, "   ").context["form"].errors  # a reason is required
    assert Discrepancy.objects.filter(status=DiscrepancyStatus.OPEN).count() == 2
    response = _resolve(manager, rows, "开户前持仓, 券商已确认")
    assert any("2" in t for t in texts(response))
    for row in rows:
        row.refresh_from_db()
        assert (row.status, row.resolved_by, row.resolution) == (DiscrepancyStatus.RESOLVED, "risk_manager",
                                                                 "开户前持仓, 券商已确认")
        event = AuditEvent.objects.get(action="discrepancy.resolved", object_id=str(row.pk))
        assert (event.actor_type, event.actor, event.reason) == ("user", "risk_manager", "开户前持仓, 券商已确认")


@pytest.mark.parametrize("role", ["Operator", "Compliance"])
def test_other_roles_cannot_resolve(role_client, found, role: str) -> None:
    client = role_client(role)
    rows = list(Discrepancy.objects.filter(status=DiscrepancyStatus.OPEN))
    html = client.get(URL).content.decode()
    assert "resolve_selected" not in html
    _resolve(client, rows, "不该生效")
    assert Discrepancy.objects.filter(status=DiscrepancyStatus.OPEN).count() == 2
    assert not AuditEvent.objects.filter(action="discrepancy.resolved").exists()


def test_nobody_edits_or_deletes_a_discrepancy(role_client, found) -> None:
    admin = role_client("Administrator")
    row = Discrepancy.objects.filter(status=DiscrepancyStatus.OPEN).first()
    assert row is not None
    admin.post(f"{URL}{row.pk}/change/", {"ours": "500", "status": "RESOLVED"})
    admin.post(f"{URL}{row.pk}/delete/", {"post": "yes"})
    row.refresh_from_db()
    assert (row.status, row.ours) == (DiscrepancyStatus.OPEN, "0")
    assert admin.get(f"{URL}add/").status_code == 403


# --------------------------------------------------------------------------- reconcile on accounts


@pytest.mark.parametrize(("role", "allowed"), [("Operator", True), ("Risk manager", True), ("Compliance", False)])
def test_the_account_action_reconciles_for_roles_that_may(script: BrokerScript, role_client, role: str,
                                                           allowed: bool) -> None:
    script.cash += Decimal("1000")
    account = Account.objects.get(name="acc1")
    response = role_client(role).post("/admin/trading/account/", {"action": "reconcile_selected",
                                                                   "_selected_action": [account.pk]}, follow=True)
    assert Discrepancy.objects.filter(kind=DiscrepancyKind.CASH).exists() == allowed
    if allowed:
        assert any(t.startswith("acc1:") and "2" in t for t in texts(response)), texts(response)
        event = AuditEvent.objects.filter(action="discrepancy.opened").first()
        assert event is not None and (event.actor_type, event.actor) == ("user", role.lower().replace(" ", "_"))


def test_the_account_action_reports_a_broker_that_cannot_be_read(script: BrokerScript, role_client) -> None:
    script.connected = False
    account = Account.objects.get(name="acc1")
    response = role_client("Operator").post("/admin/trading/account/", {"action": "reconcile_selected",
                                                                         "_selected_action": [account.pk]}, follow=True)
    assert response.status_code == 200
    assert any("券商连接已断开" in t for t in texts(response)), texts(response)
    assert not Discrepancy.objects.exists()
