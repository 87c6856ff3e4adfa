"""Intake prepares an order before it takes the account lock and reads what risk control needs in
the lock's own round trip. Whatever it prepared from the account as last seen must give way to
the account as locked: settings changed in between apply to the very next order."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from orders.models import OrderStatus
from orders.services import OrderInput, order_submit
from tests import factories
from tests.risk.conftest import ACTOR, Env
from trading.errors import InvalidOrder
from trading.models import Account, SessionMode


def _statements(queries: CaptureQueriesContext) -> list[str]:
    # Not the order path's own: the instrument's quote, re-read when the 1-second quote cache
    # expires, and the savepoints of the test's own transaction.
    return [q["sql"] for q in queries.captured_queries
            if 'FROM "trading_quote"' not in q["sql"] and "SAVEPOINT" not in q["sql"]]


def test_on_postgresql_an_order_with_every_rule_costs_two_statements_and_the_commit(env: Env, require_postgres) -> None:
    call_command("risk_enable_all", "--account", "acc1", stdout=open("/dev/null", "w"))  # noqa: SIM115
    env.position("000001.SZ", 1000)
    env.submit(price="9.90", quantity=100)  # the account is seen and the configuration read once
    with CaptureQueriesContext(connection) as queries:
        order = env.submit(price="9.95", quantity=100)
    assert order.status == OrderStatus.NEW and order.risk_verdicts and all(v["passed"] for v in order.risk_verdicts)
    lock, writes, *after = _statements(queries)
    assert all(s.startswith('SELECT "orders_order"') for s in after), after  # after the commit: in-process tasks ran
    # The lock, the idempotency lookup, the new order's id, the configuration check with today's
    # counters and the holdings: one round trip. Every write: one statement.
    assert "FOR UPDATE" in lock and "nextval" in lock and "risk_riskcounter" in lock and "trading_position" in lock
    assert writes.startswith("WITH") and 'INSERT INTO "orders_order"' in writes and 'INSERT INTO "audit_auditevent"' in writes
    assert order.pk == order.__class__.objects.get(client_order_id=order.client_order_id).pk


def test_a_session_mode_changed_since_the_last_order_applies_to_the_next(env: Env) -> None:
    env.clock.at = env.clock.at.replace(hour=20)  # after the close
    assert env.submit().status == OrderStatus.NEW  # simulated all-day session: accepted
    Account.objects.filter(pk=env.account.pk).update(session_mode=SessionMode.REAL)
    with pytest.raises(InvalidOrder) as refused:
        env.submit()
    assert refused.value.problems[0].rule == "session_closed"


def test_a_retried_order_is_answered_after_the_session_closed(env: Env) -> None:
    Account.objects.filter(pk=env.account.pk).update(session_mode=SessionMode.REAL)
    first = order_submit(OrderInput(account="acc1", symbol="600000.SH", side="BUY", order_type="LIMIT", quantity=100,
                                    price="9.90", client_order_id="retry-1"), actor=ACTOR)
    env.clock.at = env.clock.at.replace(hour=20)
    again = order_submit(OrderInput(account="acc1", symbol="600000.SH", side="BUY", order_type="LIMIT", quantity=100,
                                    price="9.90", client_order_id="retry-1"), actor=ACTOR)
    assert first.created and not again.created and again.order.pk == first.order.pk


def test_a_control_group_joined_since_the_last_order_applies_to_the_next(env: Env) -> None:
    env.rule("self_trade")
    env.position("600000.SH", 1000)
    assert env.submit(side="SELL", price="10.50", quantity=100).status == OrderStatus.NEW  # acc1 seen, no group
    other = factories.account("acc2", cash="1000000")
    Account.objects.filter(pk__in=[env.account.pk, other.pk]).update(control_group="fund-manager-A")
    assert env.submit(account="acc2", price="9.95", quantity=1000).status == OrderStatus.NEW  # rests
    order = env.submit(side="SELL", price="9.95", quantity=100)  # could trade with the group's own buy
    assert order.status == OrderStatus.REJECTED
    assert [v["rule"] for v in order.risk_verdicts if not v["passed"]] == ["self_trade"]
