"""Alerts in admin: who may acknowledge, route, and configure channels; secrets never shown."""

from __future__ import annotations

import pytest

from audit.models import AuditEvent
from monitoring.alerts import alert_raise
from monitoring.models import Alert, AlertStatus, Channel, RoutingRule
from tests.monitoring.conftest import make_channel
from tests.staff_helpers import staff_member, verified_client

pytestmark = pytest.mark.django_db


@pytest.fixture
def client_of(db):
    from staff.roles import roles_sync

    roles_sync()
    made = {}

    def make(role: str):
        if role not in made:
            made[role] = verified_client(staff_member(role.lower().replace(" ", "_"), role))
        return made[role]

    return make


def act(client, action: str, *alerts: Alert):
    return client.post("/admin/monitoring/alert/", {"action": action, "_selected_action": [a.pk for a in alerts]})


def test_an_operator_acknowledges_and_resolves_from_admin_audited(client_of, clock) -> None:
    alert = alert_raise(code="broker.disconnected", level="CRITICAL", title="down", account="acc1")
    operator = client_of("Operator")
    assert act(operator, "acknowledge_selected", alert).status_code == 302
    alert.refresh_from_db()
    assert (alert.status, alert.acknowledged_by) == (AlertStatus.ACKNOWLEDGED, "operator")
    act(operator, "resolve_selected", alert)
    alert.refresh_from_db()
    assert (alert.status, alert.resolved_by) == (AlertStatus.RESOLVED, "operator")
    assert list(AuditEvent.objects.filter(object_type="alert", object_id=str(alert.pk)).order_by("id")
                .values_list("action", "actor")) == [("alert.acknowledged", "operator"), ("alert.resolved", "operator")]


def test_compliance_reads_alerts_but_cannot_acknowledge_them(client_of, clock) -> None:
    alert = alert_raise(code="broker.disconnected", level="CRITICAL", title="down", account="acc1")
    compliance = client_of("Compliance")
    page = compliance.get("/admin/monitoring/alert/")
    assert page.status_code == 200 and "down" in page.content.decode()
    act(compliance, "acknowledge_selected", alert)
    alert.refresh_from_db()
    assert alert.status == AlertStatus.OPEN


def test_a_risk_manager_edits_routing_rules_but_not_channels(client_of) -> None:
    channel = make_channel("mail", "email", options={"host": "127.0.0.1"})
    risk = client_of("Risk manager")
    answer = risk.post("/admin/monitoring/routingrule/add/", {
        "name": "critical", "enabled": "on", "min_level": "CRITICAL", "codes": "broker.*", "accounts": "",
        "channels": [channel.pk], "recipients": "ops@example.com", "group_seconds": 0, "renotify_seconds": 600,
        "escalate_after_seconds": 120, "max_escalations": 3, "escalation_recipients": ""})
    assert answer.status_code == 302, answer.content.decode()[:2000]
    assert RoutingRule.objects.get().escalate_after_seconds == 120
    assert risk.get(f"/admin/monitoring/channel/{channel.pk}/change/").content.decode().count('name="name"') == 0
    assert client_of("Operator").get("/admin/monitoring/routingrule/add/").status_code == 403


def test_the_administrator_sets_channel_secrets_that_no_page_shows(client_of) -> None:
    admin = client_of("Administrator")
    answer = admin.post("/admin/monitoring/channel/add/", {
        "name": "ding", "kind": "dingtalk", "enabled": "on", "options": "{}", "rate_per_minute": 0,
        "max_attempts": 5, "new_secrets": '{"webhook": "https://oapi.dingtalk.com/robot/send?access_token=TOKEN123",'
                                          ' "secret": "SECabc987"}'})
    assert answer.status_code == 302, answer.content.decode()[:2000]
    channel = Channel.objects.get()
    assert channel.secrets["secret"] == "SECabc987"
    for page in ("/admin/monitoring/channel/", f"/admin/monitoring/channel/{channel.pk}/change/"):
        text = admin.get(page).content.decode() + client_of("Operator").get(page).content.decode()
        assert "TOKEN123" not in text and "SECabc987" not in text
        assert "secret=••••••" in text
    # saving other fields without new secrets keeps the stored ones
    admin.post(f"/admin/monitoring/channel/{channel.pk}/change/", {
        "name": "ding", "kind": "dingtalk", "enabled": "", "options": "{}", "rate_per_minute": 0, "max_attempts": 3,
        "new_secrets": ""})
    channel.refresh_from_db()
    assert channel.max_attempts == 3 and channel.secrets["secret"] == "SECabc987"
