"""Suitability in admin: the risk disclosure before first use, trading permissions and risk
assessments edited by risk managers (audited), refused to other roles (compliance reads them)."""

from __future__ import annotations

from datetime import date

import pytest
from django.urls import reverse

from audit.models import AuditEvent
from tests import factories
from tests.staff_helpers import staff_member, verified_client
from trading.models import Account, RiskAssessment
from trading.suitability import RISK_DISCLOSURE_VERSION


def test_a_staff_member_must_acknowledge_the_disclosure_before_using_the_admin(db):
    member = staff_member("newbie", "Operator", acknowledged=False)
    client = verified_client(member)
    first = client.get("/admin/trading/account/")
    assert first.status_code == 302 and first["Location"].startswith(reverse("admin:staff_disclosure"))
    page = client.get(first["Location"])
    assert page.status_code == 200 and "风险揭示书" in page.content.decode()  # the text itself is bilingual
    unticked = client.post(first["Location"], {"version": RISK_DISCLOSURE_VERSION})
    assert unticked.status_code == 200 and not AuditEvent.objects.filter(action="disclosure.acknowledged").exists()
    done = client.post(first["Location"], {"version": RISK_DISCLOSURE_VERSION, "accept": "yes",
                                           "next": "/admin/trading/account/"}, REMOTE_ADDR="10.1.2.3")
    assert done.status_code == 302 and done["Location"] == "/admin/trading/account/"
    event = AuditEvent.objects.get(action="disclosure.acknowledged", object_type="staff")
    assert (event.actor, event.object_id, event.after["address"]) == ("newbie", str(member.user.pk), "10.1.2.3")
    assert client.get("/admin/trading/account/").status_code == 200


def test_a_risk_manager_edits_an_accounts_trading_permissions_audited(db, role_client):
    account = factories.account("acc1", permissions=["STAR"])
    client = role_client("Risk manager")
    url = reverse("admin:trading_account_permissions", args=[account.pk])
    assert client.get(url).status_code == 200
    response = client.post(url, {"owner": "zhang", "perm_STAR": "", "perm_BSE": "2025-06-30", "reason": "broker letter 12"})
    assert response.status_code == 302
    account.refresh_from_db()
    assert account.trading_permissions == {"BSE": "2025-06-30"} and account.owner == "zhang"
    event = AuditEvent.objects.get(action="account.permissions_changed", account="acc1")
    assert event.actor == "risk_manager" and event.reason == "broker letter 12"
    assert "STAR" in event.before["trading_permissions"] and event.after["owner"] == "zhang"


@pytest.mark.parametrize("role", ["Operator", "Compliance"])
def test_other_roles_may_not_edit_permissions_or_record_assessments(db, role_client, role):
    account = factories.account("acc1", permissions=["STAR"])
    client = role_client(role)
    client.post(reverse("admin:trading_account_permissions", args=[account.pk]),
                {"owner": "", "perm_BSE": "2025-06-30", "reason": "try"})
    account.refresh_from_db()
    assert list(account.trading_permissions) == ["STAR"]
    assert client.get(reverse("admin:trading_riskassessment_add")).status_code == 403


def test_a_risk_manager_records_an_assessment_that_becomes_current_on_the_owners_accounts(db, role_client):
    factories.account("acc1", owner="li")
    client = role_client("Risk manager")
    response = client.post(reverse("admin:trading_riskassessment_add"), {
        "owner": "li", "level": "C2", "score": "35", "questionnaire": '{"version": "2024"}',
        "assessed_on": "2026-11-01", "expires_on": "2028-10-31"})
    assert response.status_code == 302, response.content
    assessment = RiskAssessment.objects.get(owner="li")
    assert (assessment.level, assessment.recorded_by) == ("C2", "risk_manager")
    account = Account.objects.get(name="acc1")
    assert (account.risk_tolerance, account.risk_tolerance_expires_on) == ("C2", date(2028, 10, 31))
    assert AuditEvent.objects.filter(action="risk_assessment.recorded", actor="risk_manager").exists()
    assert AuditEvent.objects.filter(action="account.risk_tolerance_changed", account="acc1").exists()
