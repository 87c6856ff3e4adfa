"""Fixtures of the API tests: a quoted market, a trading key (``api``) and a market-data key."""

from __future__ import annotations

import pytest

from tests import factories
from tests.factories import order_body  # noqa: F401 - imported from here by the API tests


@pytest.fixture
def market(api):
    """``api`` (key ``key1`` for ``acc1``, 1,000,000 CNY) with 600000.SH quoted around 10.05."""
    factories.instrument("600000.SH")
    factories.instrument("688981.SH")
    factories.quote("600000.SH", prev_close="10.05", bid="10.00", ask="10.01", bid_volume=50000, ask_volume=50000)
    factories.quote("688981.SH", prev_close="80.00", bid="79.99", ask="80.00")
    return api


@pytest.fixture
def feeder_key(market) -> str:
    """A market-data key (may publish quotes)."""
    return factories.api_key("feeder", accounts=["acc1"], market_data=True)
