"""Fixtures of the conditional-order tests: account acc1 at the paper broker, 600000.SH at 10.00."""

from __future__ import annotations

from typing import Any

import pytest

from audit.services import Actor
from tests import factories

OPERATOR = Actor.api_key("key1")


@pytest.fixture
def market(transactional_db, clock):
    """acc1 (paper broker, 1,000,000 CNY, all-day session) and 600000.SH last 10.00, bid 9.99, ask 10.00."""
    factories.instrument("600000.SH")
    factories.quote("600000.SH", last="10.00", prev_close="10.00", bid="9.99", ask="10.00")
    return factories.account("acc1")


def publish(symbol: str = "600000.SH", *, last: str, bid: str | None = None, ask: str | None = None,
            prev_close: str | None = None, **extra: Any):
    """Publish one quote through the market data path (stored, matched, then conditional orders evaluated)."""
    from decimal import Decimal

    from brokers.services import quotes_publish
    from orders.services import accounts_poll_later

    price = Decimal(last)
    quote: dict[str, Any] = {"symbol": symbol, "last": last, "bid": bid if bid is not None else str(price - Decimal("0.01")),
                             "ask": ask if ask is not None else last, **extra}
    if prev_close is not None:
        quote["prev_close"] = prev_close
    result = quotes_publish([quote])
    accounts_poll_later(sorted(result.accounts_with_fills))  # as the market's publishers do: pick up the fills
    return result


def create(**overrides: Any):
    """A conditional order of acc1 (a price trigger: buy 1,000 600000.SH at 10.50 when last >= 10.50)."""
    from conditions.services import ParentInput, conditional_create

    values: dict[str, Any] = {"account": "acc1", "symbol": "600000.SH", "kind": "price", "side": "BUY", "quantity": 1000,
                              "params": {"direction": "AT_OR_ABOVE", "level": "10.50"}, "price_type": "LIMIT",
                              "limit_price": "10.60", "client_order_id": "c-1"}
    values.update(overrides)
    return conditional_create(ParentInput(**values), actor=OPERATOR).parent
