"""The contract suite's targets: every module in TARGET_MODULES lists its venues in ``VENUES``."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator

import pytest

from tests.brokers.contract.venue import Venue

# One line per target module (see venue.py).
TARGET_MODULES = [
    "tests.brokers.contract.targets.scripted",
    "tests.brokers.contract.targets.paper",
    "tests.brokers.contract.targets.easytrader",
    "tests.brokers.contract.targets.easytrader_remote",
    "tests.brokers.contract.targets.gateway",
    "tests.brokers.contract.targets.xtquant",
]


def _venues() -> dict[str, Callable[[], Venue]]:
    found: dict[str, Callable[[], Venue]] = {}
    for name in TARGET_MODULES:
        module = importlib.import_module(name)
        for key, factory in module.VENUES.items():
            if key in found:
                raise ValueError(f"contract venue {key!r} listed twice")
            found[key] = factory
    return found


VENUES = _venues()


@pytest.fixture(params=sorted(VENUES))
def venue(request: pytest.FixtureRequest, transactional_db: None) -> Iterator[Venue]:
    made = VENUES[request.param]()
    try:
        yield made
    finally:
        made.close()
