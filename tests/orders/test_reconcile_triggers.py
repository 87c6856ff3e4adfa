"""When reconciliation runs: at start-up, periodically, and on demand (command, REST; the admin
action is in tests/admin/test_discrepancies_admin.py).

The run itself is tested in test_reconciliation.py; here each trigger must reach it for the
right accounts, with the right actor, and answer as documented (docs/api.md).
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command

from audit.models import AuditEvent
from brokers.adapters.scripted import BrokerScript, ScriptedBroker
from orders.models import Discrepancy
from tests import factories
from tests.conftest import ApiClient

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def differing(script: BrokerScript) -> BrokerScript:
    """acc1 at the scripted broker, whose cash the broker says is 1,000 CNY more than ours."""
    script.cash += Decimal("1000")
    return script


def cash_rows() -> list[tuple[str, str, str]]:
    return sorted(Discrepancy.objects.values_list("account__name", "object_ref", "theirs"))


# --------------------------------------------------------------------------- start-up and periodic


def test_the_beat_schedule_reconciles_every_account_periodically(settings) -> None:
    from orders import tasks

    entry = settings.CELERY_BEAT_SCHEDULE["orders-reconcile"]
    assert entry["task"] == tasks.reconcile_accounts.name == "orders.tasks.reconcile_accounts"
    assert entry["schedule"] == settings.ORDERS_RECONCILE_INTERVAL_SECONDS == 300


def test_a_worker_that_starts_reconciles_every_account(differing: BrokerScript) -> None:
    """Celery sends worker_ready once a worker is up: the receiver runs a reconciliation of all."""
    from celery.signals import worker_ready

    from orders import tasks

    assert any(receiver() is tasks.reconcile_on_worker_start for _, receiver in worker_ready.receivers)
    worker_ready.send(sender=None)  # tasks run in-process in tests
    assert cash_rows() == [("acc1", "available", "1001000.00"), ("acc1", "cash", "1001000.00")]
    assert AuditEvent.objects.get(action="discrepancy.opened", after__object_ref="cash").actor == "reconciliation"


def test_the_embedded_scheduler_reconciles_on_its_first_pass(differing: BrokerScript, monkeypatch) -> None:
    from orders import services
    from trading.management.commands import run_scheduler

    factories.account("acc2", cash="500000", broker_kind=ScriptedBroker.kind)
    for job in ("accounts_poll_all", "outbox_sweep", "orders_expire_day"):
        monkeypatch.setattr(services, job, lambda: 0)
    monkeypatch.setattr(run_scheduler.review, "orders_expire_reviews", lambda: 0)
    call_command("run_scheduler", "--once")
    assert cash_rows() == [("acc1", "available", "1001000.00"), ("acc1", "cash", "1001000.00")]


def test_disabled_accounts_are_left_out_of_the_periodic_run(differing: BrokerScript) -> None:
    from orders.services import accounts_reconcile_all
    from trading.models import Account

    Account.objects.filter(name="acc1").update(status=Account.Status.DISABLED)
    assert accounts_reconcile_all() == []
    assert not Discrepancy.objects.exists()


# --------------------------------------------------------------------------- the command


def test_the_command_reconciles_one_account_and_says_what_it_found(differing: BrokerScript, capsys) -> None:
    factories.account("acc2", cash="500000", broker_kind=ScriptedBroker.kind)
    ScriptedBroker.script("acc2").cash += Decimal("5")
    call_command("reconcile", "--account", "acc1")
    out = capsys.readouterr().out
    assert "acc1: 0 orders brought in line, 2 new discrepancies, 0 seen again, 0 closed, 2 open" in out
    assert {name for name, _, _ in cash_rows()} == {"acc1"}
    assert AuditEvent.objects.filter(action="discrepancy.opened", actor__startswith="manage.py reconcile").count() == 2
    call_command("reconcile")  # every active account
    assert "acc2: 0 orders brought in line, 2 new discrepancies" in capsys.readouterr().out
    assert {name for name, _, _ in cash_rows()} == {"acc1", "acc2"}
    assert Discrepancy.objects.get(account__name="acc1", object_ref="cash").times_seen == 2


def test_the_command_refuses_an_unknown_account_and_fails_on_an_unreadable_broker(differing: BrokerScript) -> None:
    with pytest.raises(CommandError, match="unknown account 'nope'"):
        call_command("reconcile", "--account", "nope")
    differing.connected = False
    with pytest.raises(CommandError, match="not reconciled: acc1"):
        call_command("reconcile")
    assert not Discrepancy.objects.exists()


# --------------------------------------------------------------------------- the REST endpoint


@pytest.fixture
def client(differing: BrokerScript) -> ApiClient:
    from django.test import Client

    factories.account("acc2", cash="500000", broker_kind=ScriptedBroker.kind)
    return ApiClient(Client(), factories.api_key("key1", accounts=["acc1"]))


def test_post_reconcile_answers_200_with_what_it_found(client: ApiClient) -> None:
    response = client.post("/accounts/acc1/reconcile")
    assert response.status_code == 200, response.content
    assert response.json() == {"account": "acc1", "orders_changed": 0, "discrepancies_opened": 2,
                               "discrepancies_seen_again": 0, "discrepancies_closed": 0, "discrepancies_open": 2}
    again = client.post("/accounts/acc1/reconcile").json()
    assert (again["discrepancies_opened"], again["discrepancies_seen_again"], again["discrepancies_open"]) == (0, 2, 2)
    assert Discrepancy.objects.count() == 2
    opened = AuditEvent.objects.filter(action="discrepancy.opened")
    assert {(e.actor_type, e.actor) for e in opened} == {("api_key", "key1")}


@pytest.mark.parametrize("name", ["acc2", "nope"], ids=["another-key-s-account", "missing-account"])
def test_post_reconcile_of_an_account_the_key_may_not_use_is_403_alike(client: ApiClient, name: str) -> None:
    response = client.post(f"/accounts/{name}/reconcile")
    assert response.status_code == 403
    assert response.json()["code"] == "forbidden" and name in response.json()["detail"]
    assert not Discrepancy.objects.exists()


def test_post_reconcile_needs_a_trading_key_and_a_key_at_all(client: ApiClient) -> None:
    read_only = factories.api_key("reader", accounts=["acc1"], can_trade=False)
    assert client.post("/accounts/acc1/reconcile", key=read_only).status_code == 403
    assert client.post("/accounts/acc1/reconcile", key="").status_code == 401
    assert not Discrepancy.objects.exists()


def test_post_reconcile_with_the_broker_down_is_503_and_records_nothing(client: ApiClient, differing: BrokerScript) -> None:
    differing.connected = False
    response = client.post("/accounts/acc1/reconcile")
    assert response.status_code == 503 and response.json()["code"] == "broker_unavailable"
    assert not Discrepancy.objects.exists()


def test_the_endpoint_is_in_the_openapi_schema_with_its_statuses() -> None:
    from trading.urls import api

    operation = api.get_openapi_schema()["paths"]["/api/v1/accounts/{name}/reconcile"]["post"]
    assert {str(status) for status in operation["responses"]} == {"200", "401", "403", "422", "429", "502", "503"}


# --------------------------------------------------------------------------- the paper broker


def test_a_paper_account_that_traded_is_in_line_with_its_broker() -> None:
    """The demo's broker: after a fill, a partial fill and an open order, the periodic run finds nothing."""
    from audit.services import Actor
    from orders.models import Order, OrderStatus
    from orders.services import OrderInput, account_reconcile, order_submit
    from trading.models import Account

    factories.account("acc1")
    factories.instrument("600000.SH")
    factories.quote("600000.SH", prev_close="10.05", bid="10.00", ask="10.01", bid_volume=50000, ask_volume=600)
    for index, (price, quantity) in enumerate([("10.05", 300), ("10.05", 1000), ("9.90", 2000)]):
        order_submit(OrderInput(account="acc1", symbol="600000.SH", side="BUY", order_type="LIMIT", price=price,
                                quantity=quantity, client_order_id=f"p-{index}"), actor=Actor.api_key("key1"))
    statuses = sorted(Order.objects.values_list("status", flat=True))
    assert statuses == sorted([OrderStatus.FILLED, OrderStatus.PARTIALLY_FILLED, OrderStatus.SUBMITTED])
    account_id = Account.objects.get(name="acc1").pk
    account_reconcile(account_id=account_id)
    result = account_reconcile(account_id=account_id)
    assert (result.opened, result.open_total) == (0, 0), list(Discrepancy.objects.values_list("object_ref", "ours", "theirs"))
