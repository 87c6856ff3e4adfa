"""Each action that changes an account or the configuration, each login and each failure of a
worker or a broker call writes its audit event (issue 12, item 1)."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from audit.models import AuditEvent
from audit.services import Actor
from brokers.adapters.scripted import Reply
from orders.services import OrderInput, account_poll, order_submit
from tests import factories
from tests.staff_helpers import PASSWORD, staff_member
from trading.models import Account

ACTOR = Actor.user("tester")


def _only(action: str, **filters) -> AuditEvent:
    return AuditEvent.objects.filter(action=action, **filters).get()


# --------------------------------------------------------------------------- account changes


@pytest.mark.django_db(transaction=True)
def test_a_fill_records_the_positions_before_and_after_in_its_event(script, clock):
    body = factories.order_body(quantity=1000, price="9.90", client_order_id="f-1")
    order = order_submit(OrderInput(**body), actor=ACTOR).order
    script.fill(script.order_of(order.pk).broker_order_id, 400, Decimal("9.90"))
    account_poll(account_id=Account.objects.get(name="acc1").pk)
    event = _only("order.filled", object_id=str(order.pk))
    assert event.before["position"]["quantity"] == 0
    assert event.after["position"] == {"symbol": "600000.SH", "quantity": 400, "cost_amount": event.after["position"]["cost_amount"],
                                       "realized_pnl": "0"}
    assert Decimal(event.after["position"]["cost_amount"]) >= Decimal("3960.00")


def test_broker_settings_changes_are_audited_by_name_never_by_value(db):
    from brokers.services import account_broker_settings_set

    account = factories.account("acc1")
    account_broker_settings_set(account_id=account.pk, settings={"user": "880001", "password": "s3cret-pw"},
                                actor=ACTOR, reason="new client")
    account_broker_settings_set(account_id=account.pk, settings={"user": "880001", "password": "n3w-pw"}, actor=ACTOR)
    first, second = AuditEvent.objects.filter(action="account.broker_settings_changed").order_by("id")
    assert first.after["settings"] == ["password", "user"] and first.reason == "new client"
    assert second.after["changed"] == ["password"]
    text = json.dumps([first.before, first.after, second.before, second.after])
    assert "s3cret-pw" not in text and "n3w-pw" not in text and "880001" not in text
    account.refresh_from_db()
    assert account.broker_settings["password"] == "n3w-pw"


def test_editing_a_restricted_symbol_records_before_and_after(db):
    from risk.models import RestrictedSymbol
    from risk.services import restricted_symbol_save

    restriction = restricted_symbol_save(restriction=RestrictedSymbol(instrument=factories.instrument("600000.SH"),
                                                                      reason="insider list"), actor=ACTOR)
    restriction.reason = "insider list, updated"
    restricted_symbol_save(restriction=restriction, actor=ACTOR)
    edited = AuditEvent.objects.filter(action="risk.restriction_saved").order_by("id").last()
    assert (edited.before["reason"], edited.after["reason"]) == ("insider list", "insider list, updated")


# --------------------------------------------------------------------------- logins and roles


def test_a_login_and_a_failed_login_are_audited_with_the_client_address(db):
    from django.test import Client

    member = staff_member("ops1", "Operator")
    client = Client()
    client.post("/admin/login/", {"username": "ops1", "password": "wrong-password", "otp_token": member.token()},
                REMOTE_ADDR="10.9.8.7")
    failed = _only("staff.login_failed")
    assert (failed.after["address"], failed.after["username"]) == ("10.9.8.7", "ops1")
    assert "wrong-password" not in json.dumps(failed.after)
    response = client.post("/admin/login/?next=/admin/", {"username": "ops1", "password": PASSWORD, "otp_token": member.token()},
                           REMOTE_ADDR="10.9.8.7")
    assert response.status_code == 302
    logged_in = _only("staff.logged_in")
    assert (logged_in.actor, logged_in.after["address"]) == ("ops1", "10.9.8.7")


def test_a_failed_api_authentication_is_audited_with_the_address_and_prefix_only(api):
    response = api.get("/accounts/acc1/balance", key="tbo_deadbeef_not-the-real-secret")
    assert response.status_code == 401
    event = _only("api.auth_failed")
    assert event.after["prefix"] == "deadbeef" and event.after["address"] == "127.0.0.1"
    assert "not-the-real-secret" not in json.dumps(event.after) + event.actor


def test_role_changes_are_audited_and_the_roles_table_sync_is_not(db):
    from django.contrib.auth.models import Group, Permission

    from staff.roles import roles_sync

    member = staff_member("ops2", "Operator")
    member.user.groups.add(Group.objects.get(name="Compliance"))
    added = AuditEvent.objects.filter(action="staff.roles_changed", object_id=str(member.user.pk)).order_by("id").last()
    assert added.before["roles"] == ["Operator"] and added.after["roles"] == ["Compliance", "Operator"]
    group = Group.objects.get(name="Operator")
    group.permissions.add(Permission.objects.get(codename="manage_risk_rules"))
    changed = _only("staff.role_permissions_changed")
    assert changed.after["permissions"] == ["risk.manage_risk_rules"] and changed.after["role"] == "Operator"
    roles_sync()  # puts the table back: not an operator's change
    assert AuditEvent.objects.filter(action="staff.role_permissions_changed").count() == 1
    member.user.is_superuser = True
    member.user.save()
    flags = AuditEvent.objects.filter(action="staff.user_changed", object_id=str(member.user.pk)).order_by("id").last()
    assert (flags.before["is_superuser"], flags.after["is_superuser"]) == (False, True)


# --------------------------------------------------------------------------- failures


def test_a_failing_worker_task_is_audited(db):
    from trading.celery import app

    @app.task(name="tests.audit.always_fails")
    def always_fails(order_id: int) -> None:
        raise RuntimeError(f"cannot handle order {order_id}")

    result = always_fails.apply(args=(42,))
    assert result.failed()
    event = _only("worker.task_failed")
    assert event.after["task"] == "tests.audit.always_fails" and event.after["error_type"] == "RuntimeError"
    assert "42" in event.after["args"] and "cannot handle order 42" in event.reason


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("reply", "error_type"), [(Reply.TIMEOUT, "BrokerTimeout"), (Reply.CRASH, "WorkerCrashed")])
def test_a_broker_call_that_times_out_or_raises_is_audited(script, clock, reply, error_type):
    script.on_place(reply, "no answer")
    body = factories.order_body(quantity=100, price="9.90", client_order_id=f"x-{reply}")
    try:
        order_submit(OrderInput(**body), actor=ACTOR)
    except Exception:  # the in-process worker may let a crash through; reconciliation resolves it
        pass
    event = AuditEvent.objects.filter(action="broker.call_failed").order_by("id").last()
    assert event is not None, "no broker.call_failed event"
    assert (event.after["method"], event.after["error_type"], event.account) == ("place_order", error_type, "acc1")
    # a refusal is an answer, recorded with its order, not as a failed call
    script.on_place(Reply.REFUSE, "资金不足")
    before = AuditEvent.objects.filter(action="broker.call_failed").count()
    refused = order_submit(OrderInput(**{**body, "client_order_id": f"r-{reply}"}), actor=ACTOR).order
    refused.refresh_from_db()
    assert refused.status == "REJECTED"
    assert AuditEvent.objects.filter(action="broker.call_failed").count() == before
