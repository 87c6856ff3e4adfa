"""The controller end to end through the order path: actions, scopes, recording, caching, the API."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from orders.models import Order, OrderStatus
from risk.models import RiskCounter, RiskEvent, RiskRule
from risk.rules import REGISTRY, RULE_CLASSES
from risk.rules.base import PRE_TRADE
from risk.verdicts import RiskAction
from tests import factories
from tests.risk.conftest import Env
from trading.models import Account, CashLedgerEntry


def test_reject_creates_a_rejected_order_with_every_verdict_and_an_event(env: Env) -> None:
    env.rule("max_order_amount", {"max_amount": "100000"})
    env.rule("max_daily_orders", {"max_orders": 100})
    order = env.submit(price="10.00", quantity=12000)
    assert order.status == OrderStatus.REJECTED
    assert [v["rule"] for v in order.risk_verdicts] == ["max_order_amount", "max_daily_orders"]
    failed = order.risk_verdicts[0]
    assert failed["passed"] is False and failed["action"] == "REJECT"
    assert failed["message"] == "单笔金额 120000.00 超过上限 100000.00 (order amount 120000.00 exceeds max 100000.00)"
    assert failed["values"] == {"amount": "120000.00", "max_amount": "100000"}
    assert order.risk_verdicts[1]["passed"] is True
    assert "max_order_amount" in order.status_reason
    event = RiskEvent.objects.get()
    assert (event.rule, event.level, event.action, event.order_id, event.account_id) == (
        "max_order_amount", "error", "REJECT", order.pk, env.account.pk)
    assert event.values["amount"] == "120000.00"
    assert env.refresh().frozen == 0  # a refused order freezes nothing


def test_review_holds_the_order_with_its_freeze(env: Env) -> None:
    env.rule("max_order_amount", {"max_amount": "100000"}, RiskAction.REVIEW)
    order = env.submit(price="10.00", quantity=12000)
    assert order.status == OrderStatus.PENDING_APPROVAL
    assert env.refresh().frozen == order.frozen_amount > 0
    assert RiskEvent.objects.get().level == "warning"


def test_warn_passes_and_raises_a_warning_event(env: Env) -> None:
    env.rule("max_order_amount", {"max_amount": "100000"}, RiskAction.WARN)
    order = env.submit(price="10.00", quantity=12000)
    assert order.status == OrderStatus.NEW
    assert order.risk_verdicts[0]["passed"] is False and order.risk_verdicts[0]["action"] == "WARN"
    event = RiskEvent.objects.get()
    assert (event.level, event.action) == ("warning", "WARN")


def test_reject_beats_review_beats_warn(env: Env) -> None:
    env.rule("max_order_amount", {"max_amount": "100000"}, RiskAction.WARN)
    env.rule("max_position_ratio", {"max_ratio": "0.05"}, RiskAction.REVIEW)
    assert env.submit(price="10.00", quantity=12000).status == OrderStatus.PENDING_APPROVAL
    env.rule("max_total_position_ratio", {"max_ratio": "0.05"}, RiskAction.REJECT)
    assert env.submit(price="10.00", quantity=12000).status == OrderStatus.REJECTED


def test_an_account_row_overrides_the_global_row_of_the_same_code(env: Env) -> None:
    other = factories.account("acc2", cash="1000000")
    env.rule("max_order_amount", {"max_amount": "100000"})  # global, REJECT
    env.rule("max_order_amount", {"max_amount": "200000"}, RiskAction.WARN, account=env.account)
    mine = env.submit(price="10.00", quantity=15000)
    theirs = env.submit(account="acc2", price="10.00", quantity=15000)
    assert mine.status == OrderStatus.NEW and mine.risk_verdicts[0]["values"]["max_amount"] == "200000"
    assert theirs.status == OrderStatus.REJECTED
    # A disabled account row switches the global rule off for that account only.
    env.rule("max_order_amount", {"max_amount": "200000"}, account=env.account, enabled=False)
    assert env.submit(price="10.00", quantity=30000).risk_verdicts == []
    assert env.submit(account="acc2", price="10.00", quantity=30000).status == OrderStatus.REJECTED
    del other


def test_disabled_global_rows_do_not_run(env: Env) -> None:
    env.rule("max_order_amount", {"max_amount": "1"}, enabled=False)
    assert env.submit().risk_verdicts == []


def test_with_no_rule_a_check_costs_one_query(env: Env) -> None:
    from risk.controller import risk_check_order

    order = env.build()
    risk_check_order(order)  # warm: the configuration is read once
    with CaptureQueriesContext(connection) as queries:
        outcome = risk_check_order(order)
    assert outcome.verdicts == [] and len(queries) == 1, [q["sql"] for q in queries]


def test_every_rule_enabled_costs_a_handful_of_queries(env: Env) -> None:
    """Rules share one context: 23 pre-trade rules must not cost a query each."""
    from django.core.management import call_command

    from risk.controller import risk_check_order
    from trading.services import account_lock

    call_command("risk_enable_all", "--account", "acc1", stdout=open("/dev/null", "w"))  # noqa: SIM115
    env.position("000001.SZ", 1000)
    env.submit(price="9.90", quantity=100)  # frozen cash: open buys are looked up
    with transaction.atomic():
        account = account_lock(env.account.pk)
        order = env.build(account=account, price="9.95", quantity=100)
        risk_check_order(order)
        with CaptureQueriesContext(connection) as queries:
            outcome = risk_check_order(order)
    assert len(outcome.verdicts) == sum(1 for c in RULE_CLASSES if c.phase == PRE_TRADE)
    assert all(v.passed for v in outcome.verdicts), [v for v in outcome.verdicts if not v.passed]
    # Configuration + today's counters, and holdings/control group: one round trip on PostgreSQL,
    # two elsewhere (plus the instrument's quote when the 1-second quote cache has expired).
    sqls = [q["sql"] for q in queries if 'FROM "trading_quote"' not in q["sql"]]
    assert len(sqls) == (1 if connection.vendor == "postgresql" else 2), [q["sql"] for q in queries]


def test_a_rule_change_applies_to_the_next_order_without_clearing_any_cache(env: Env) -> None:
    assert env.submit(price="10.00", quantity=12000).status == OrderStatus.NEW
    rule = env.rule("max_order_amount", {"max_amount": "100000"})
    assert env.submit(price="10.00", quantity=12000).status == OrderStatus.REJECTED
    RiskRule.objects.filter(pk=rule.pk).delete()  # even a write that bypasses the services
    assert env.submit(price="10.00", quantity=12000).status == OrderStatus.NEW


def test_writes_that_bypass_the_services_apply_to_the_next_order(env: Env) -> None:
    """Database triggers move the configuration's version on any write: a queryset update keeps
    the row count and may keep updated_at; raw SQL skips the ORM altogether."""
    from risk.models import RiskControl

    rule = env.rule("max_order_amount", {"max_amount": "200000"})
    assert env.submit(price="10.00", quantity=12000).status == OrderStatus.NEW
    RiskRule.objects.filter(pk=rule.pk).update(params={"max_amount": "100000"})
    assert env.submit(price="10.00", quantity=12000).status == OrderStatus.REJECTED
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {RiskRule._meta.db_table} SET enabled = %s WHERE id = %s", [False, rule.pk])  # noqa: S608
    assert env.submit(price="10.00", quantity=12000).status == OrderStatus.NEW
    RiskControl.objects.all().delete()  # the singleton gone: the next write brings it back
    RiskRule.objects.filter(pk=rule.pk).update(enabled=True)
    assert RiskControl.objects.get().trading_state == "ACTIVE"
    assert env.submit(price="10.00", quantity=12000).status == OrderStatus.REJECTED


def test_a_restricted_symbol_applies_at_once(env: Env) -> None:
    from risk.models import RestrictedSymbol
    from risk.services import restricted_symbol_delete, restricted_symbol_save

    env.rule("restricted_list")
    assert env.submit().status == OrderStatus.NEW
    entry = restricted_symbol_save(restriction=RestrictedSymbol(instrument=env.instrument("600000.SH"), reason="内幕名单",
                                                                side="BUY"))
    refused = env.submit()
    assert refused.status == OrderStatus.REJECTED and "内幕名单" in refused.risk_verdicts[0]["message"]
    env.position("600000.SH", 100)
    assert env.submit(side="SELL", price="10.10").status == OrderStatus.NEW  # only buys are restricted
    restricted_symbol_delete(restriction=entry)
    assert env.submit().status == OrderStatus.NEW


def test_a_row_with_invalid_parameters_fails_closed(env: Env) -> None:
    RiskRule.objects.create(code="max_order_amount", params={"max_amount": 1.5})  # bypasses validation
    order = env.submit()
    assert order.status == OrderStatus.REJECTED
    assert "invalid" in order.risk_verdicts[0]["message"]


def test_a_rule_that_raises_fails_closed(env: Env, monkeypatch) -> None:
    env.rule("max_order_amount", {"max_amount": "100000"})

    def boom(self, order, context):
        raise RuntimeError("bug")

    monkeypatch.setattr(REGISTRY["max_order_amount"], "check", boom)
    order = env.submit()
    assert order.status == OrderStatus.REJECTED
    assert "RuntimeError" in order.risk_verdicts[0]["message"]


def test_counters_follow_orders_and_cancels(env: Env) -> None:
    from orders.services import order_cancel
    from tests.risk.conftest import ACTOR

    first = env.submit(price="9.90", quantity=1000)
    env.submit(price="9.90", quantity=500)
    env.clock.advance(1)
    order_cancel(order_id=first.pk, actor=ACTOR)
    row = RiskCounter.objects.get(account=env.account, trading_day=env.today, key="")
    assert (row.orders, row.amount, row.cancels, row.second_count) == (2, Decimal("14850.00"), 1, 1)
    assert row.second == int(env.clock().timestamp())
    # A cancel never gives the amount back.
    assert RiskCounter.objects.get(account=env.account, key="600000.SH").amount == Decimal("14850.00")


def test_modify_replacement_passes_risk_control(env: Env) -> None:
    from orders.services import order_modify
    from tests.risk.conftest import ACTOR
    from trading.errors import InvalidOrder

    env.rule("max_order_amount", {"max_amount": "20000"})
    original = env.submit(price="9.90", quantity=1000)
    with pytest.raises(InvalidOrder) as refused:
        order_modify(order_id=original.pk, actor=ACTOR, quantity=3000)
    assert refused.value.problems[0].rule == "max_order_amount"
    original.refresh_from_db()
    assert original.status not in (OrderStatus.CANCELLED, OrderStatus.CANCEL_REQUESTED)
    replacement = order_modify(order_id=original.pk, actor=ACTOR, quantity=2000)
    assert replacement.risk_verdicts[0]["rule"] == "max_order_amount" and replacement.risk_verdicts[0]["passed"]


# --------------------------------------------------------------------------- over HTTP


@pytest.fixture
def quoted_api(api):
    factories.instrument("600000.SH")
    factories.quote("600000.SH", prev_close="10.00", last="10.00", bid="9.99", ask="10.00")
    return api


def test_the_api_shows_every_verdict(quoted_api) -> None:
    from risk.services import risk_rule_set

    risk_rule_set(code="max_order_amount", params={"max_amount": "100000"})
    risk_rule_set(code="max_daily_orders", params={"max_orders": 10})
    body = {"account": "acc1", "symbol": "600000.SH", "side": "BUY", "order_type": "LIMIT", "price": "10.00",
            "quantity": 12000, "client_order_id": "big-1"}
    response = quoted_api.post("/orders", body)
    assert response.status_code == 201, response.content
    data = response.json()
    assert data["status"] == "REJECTED"
    assert data["risk"] == [
        {"rule": "max_order_amount", "passed": False, "action": "REJECT",
         "message": "单笔金额 120000.00 超过上限 100000.00 (order amount 120000.00 exceeds max 100000.00)"},
        {"rule": "max_daily_orders", "passed": True, "action": "REJECT", "message": ""},
    ]


def _row_counts() -> dict[str, int]:
    from audit.models import AuditEvent
    from risk.models import RestrictedSymbol

    return {m.__name__: m.objects.count() for m in (Order, RiskEvent, RiskCounter, AuditEvent, CashLedgerEntry, RestrictedSymbol)}


def test_dry_run_reports_every_enabled_rule_and_creates_nothing(quoted_api) -> None:
    from django.core.management import call_command

    call_command("risk_enable_all", "--account", "acc1", stdout=open("/dev/null", "w"))  # noqa: SIM115
    from risk.services import risk_rule_set

    account = Account.objects.get(name="acc1")
    risk_rule_set(code="max_order_amount", account=account, params={"max_amount": "50000"}, action=RiskAction.REVIEW)
    before = _row_counts()
    body = {"account": "acc1", "symbol": "600000.SH", "side": "BUY", "order_type": "LIMIT", "price": "10.00",
            "quantity": 6000, "client_order_id": "dry-1"}
    response = quoted_api.post("/risk/check", body)
    assert response.status_code == 200, response.content
    data = response.json()
    pre_trade = [c.code for c in RULE_CLASSES if c.phase == PRE_TRADE]
    assert [v["rule"] for v in data["verdicts"]] == pre_trade
    assert data["decision"] == "REVIEW" and data["passed"] is False
    failed = [v for v in data["verdicts"] if not v["passed"]]
    assert [(v["rule"], v["action"]) for v in failed] == [("max_order_amount", "REVIEW")]
    assert _row_counts() == before
    # The same order for real does what the dry run said.
    assert quoted_api.post("/orders", body).json()["status"] == "PENDING_APPROVAL"


def test_dry_run_with_no_rules_passes(quoted_api) -> None:
    body = {"account": "acc1", "symbol": "600000.SH", "side": "BUY", "order_type": "LIMIT", "price": "10.00", "quantity": 100}
    response = quoted_api.post("/risk/check", body)
    assert response.json() == {"decision": "PASS", "passed": True, "verdicts": []}
    assert Order.objects.count() == 0


def test_dry_run_refuses_bad_input_and_foreign_accounts(quoted_api) -> None:
    bad = quoted_api.post("/risk/check", {"account": "acc1", "symbol": "600000.SH", "side": "BUY", "order_type": "LIMIT",
                                          "price": "10.005", "quantity": 100})
    assert bad.status_code == 422
    factories.account("acc9")
    foreign = quoted_api.post("/risk/check", {"account": "acc9", "symbol": "600000.SH", "side": "BUY", "order_type": "LIMIT",
                                              "price": "10.00", "quantity": 100})
    assert foreign.status_code == 403
