"""Fixtures of the risk tests: an account with cash, a quoted market, helpers; the clock is the
shared ``clock`` fixture (tests/conftest.py), frozen at CLOCK_START."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest
from django.db import transaction

from audit.services import Actor
from orders.models import Order
from risk.verdicts import RiskAction, Verdict
from tests import factories
from tests.conftest import Clock
from trading.models import Account, Position
from trading.selectors import account_trading_day

ACTOR = Actor.api_key("risk-tests")


@pytest.fixture(autouse=True)
def _orders_wait_in_the_outbox(request, settings):
    """Tests in one rolled-back transaction look at intake's decision: there a passed order stays
    NEW (owed to the broker, as with the relay) instead of being claimed by the request for a
    broker call that only a commit would make. Tests that commit send their orders."""
    marker = request.node.get_closest_marker("django_db")
    if "transactional_db" not in request.fixturenames and not (marker and marker.kwargs.get("transaction")):
        settings.ORDERS_DISPATCH = "relay"


@pytest.fixture(autouse=True)
def _fresh_risk_cache():
    from risk.controller import config_cache_clear

    config_cache_clear()
    yield
    config_cache_clear()


class Env:
    """A paper account `acc1` with 1,000,000 CNY and quoted instruments; helpers for the tests."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.account = factories.account("acc1", cash="1000000")
        self.quote("600000.SH", last="10.00", prev_close="10.00", bid="9.99", ask="10.00")
        self.quote("000001.SZ", last="10.00", prev_close="10.00", bid="9.99", ask="10.00")
        self.quote("600036.SH", last="10.00", prev_close="10.00", bid="9.99", ask="10.00")

    @property
    def today(self):
        return account_trading_day(self.account, self.clock())

    def refresh(self) -> Account:
        self.account.refresh_from_db()
        return self.account

    def instrument(self, symbol: str = "600000.SH", **overrides: Any):
        """The instrument (from the reference data when first used); overrides stick until changed."""
        from trading.models import Instrument

        code, exchange = symbol.split(".")
        existing = Instrument.objects.filter(code=code, exchange=exchange).first()
        if existing is not None and not overrides:
            return existing
        from trading.selectors import instrument_cache_clear

        instrument_cache_clear()
        if existing is not None:
            for name, value in overrides.items():
                setattr(existing, name, value)
            existing.save()
            return existing
        return factories.instrument(symbol, **overrides)

    def quote(self, symbol: str, **values: Any):
        from trading.selectors import quote_cache_clear

        self.instrument(symbol)
        quote = factories.quote(symbol, **values)
        quote_cache_clear()
        return quote

    def rule(self, code: str, params: dict[str, Any] | None = None, action: str = RiskAction.REJECT, *,
             account: Account | None | str = "global", enabled: bool = True):
        from risk.services import risk_rule_set

        scope = None if account == "global" else account
        return risk_rule_set(code=code, account=scope, params=params or {}, action=action, enabled=enabled)  # type: ignore[arg-type]

    def submit(self, *, symbol: str = "600000.SH", side: str = "BUY", price: str | None = "9.90", quantity: int = 100,
               order_type: str = "LIMIT", account: str = "acc1", protection_price: str | None = None,
               client_order_id: str | None = None) -> Order:
        from orders.services import OrderInput, order_submit

        data = OrderInput(account=account, symbol=symbol, side=side, order_type=order_type, quantity=quantity, price=price,
                          client_order_id=client_order_id, protection_price=protection_price)
        return order_submit(data, actor=ACTOR).order

    def build(self, *, symbol: str = "600000.SH", side: str = "BUY", price: str | None = "10.00", quantity: int = 100,
              order_type: str = "LIMIT", protection_price: str | None = None, account: Account | None = None) -> Order:
        return Order(account=account or self.account, instrument=self.instrument(symbol), client_order_id="probe",
                     side=side, order_type=order_type, price=Decimal(price) if price else None,
                     protection_price=Decimal(protection_price) if protection_price else None, quantity=quantity,
                     trading_day=self.today, source="api")

    def outcome(self, **order_kwargs: Any):
        """Run risk control for an unsaved order under the account lock (as the order path does)."""
        from risk.controller import risk_check_order
        from trading.services import account_lock

        account = order_kwargs.pop("account", None) or self.account
        with transaction.atomic():
            locked = account_lock(account.pk)
            order = self.build(account=locked, **order_kwargs)
            return risk_check_order(order)

    def verdict(self, code: str, **order_kwargs: Any) -> Verdict:
        outcome = self.outcome(**order_kwargs)
        found = [v for v in outcome.verdicts if v.rule == code]
        assert len(found) == 1, outcome.verdicts
        return found[0]

    def position(self, symbol: str, quantity: int, *, cost: str | None = None, frozen: int = 0, account: Account | None = None) -> Position:
        instrument = self.instrument(symbol)
        cost_amount = Decimal(cost) if cost is not None else Decimal("10.00") * quantity
        position, _ = Position.objects.update_or_create(
            account=account or self.account, instrument=instrument,
            defaults={"quantity": quantity, "frozen_quantity": frozen, "cost_amount": cost_amount},
        )
        return position

    def counter(self, key: str = "", **fields: Any):
        from risk.models import RiskCounter

        row, _ = RiskCounter.objects.update_or_create(account=self.account, trading_day=self.today, key=key, defaults=fields)
        return row


@pytest.fixture
def env(db, clock) -> Env:
    return Env(clock)


class RealClock(Clock):
    def __init__(self) -> None:
        pass

    def __call__(self) -> datetime:
        from trading.clock import now

        return now()

    def advance(self, seconds: float) -> None:
        raise NotImplementedError("the real clock cannot be moved")


@pytest.fixture
def live_env(transactional_db) -> Env:
    """Committed transactions, real clock: on-commit hooks run, the paper broker fills in-process."""
    return Env(RealClock())


def blocks(verdict: Verdict) -> bool:
    return not verdict.passed and verdict.action != RiskAction.WARN


def outcome_of(verdict: Verdict) -> str:
    if verdict.passed:
        return "pass"
    return "warn" if verdict.action == RiskAction.WARN else "fail"
